//! A PostgreSQL 15 server the suite owns: its own `initdb` in a temporary
//! directory on a random loopback port. Never the shared `DATABASE_URL`
//! server, because the suite crash-restarts it, terminates its backends
//! and stops their processes.
//!
//! Binaries come from `/usr/lib/postgresql/15/bin` (or `PG_BIN`). The
//! server refuses to run as root, so as root every server command runs as
//! the `postgres` OS user (`runuser -u postgres --`), as
//! `scripts/with-postgres` does. Missing binaries are an error, never a
//! skip. The server is stopped and its files removed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use durable::sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::workload::{Rng, now_ms};

/// Where the PostgreSQL 15 binaries are unless `PG_BIN` says otherwise.
pub const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// One server backend as `pg_stat_activity` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The server process.
    pub pid: u32,
    /// The client's `application_name`.
    pub application_name: String,
    /// `active`, `idle`, `idle in transaction`, ...
    pub state: String,
    /// Whether it is inside a transaction (`xact_start` is set).
    pub in_transaction: bool,
}

/// A running server and its data directory.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
    /// When each crash-restart's server accepted connections again (Unix ms).
    restarts: Vec<i64>,
}

impl Cluster {
    /// `initdb` and start a server on a free loopback port.
    ///
    /// # Panics
    /// If the binaries are missing or the server does not start: the suite
    /// fails rather than skips.
    pub async fn start() -> Cluster {
        let bin = PathBuf::from(std::env::var("PG_BIN").unwrap_or_else(|_| DEFAULT_PG_BIN.into()));
        assert!(
            bin.join("initdb").exists() && bin.join("pg_ctl").exists(),
            "PostgreSQL 15 binaries not found in {} (install postgresql-15 or set PG_BIN); \
             the fault suite needs a server of its own",
            bin.display()
        );
        let as_root = run_plain("id", &["-u"]).trim() == "0";
        let dir = std::env::temp_dir().join(format!(
            "durable-faults-pg-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        if as_root {
            run_plain("chown", &["postgres:", &dir.display().to_string()]);
        }
        let mut cluster = Cluster {
            bin,
            dir,
            port: 0,
            as_root,
            restarts: Vec::new(),
        };
        let data = cluster.data();
        let out = cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 300\nshared_buffers = 128MB\n",
            cluster.dir.display()
        );
        append(&cluster.dir.join("data/postgresql.conf"), &conf);

        // A random free port; if another process takes it first, the start
        // fails and we try another.
        let mut rng = Rng::new(now_ms().unsigned_abs() ^ u64::from(std::process::id()));
        let mut started = false;
        for _ in 0..8 {
            let port = 15_000 + (rng.next_u64() % 17_000) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            cluster.port = port;
            if cluster.pg_ctl_start() {
                started = true;
                break;
            }
        }
        assert!(
            started,
            "PostgreSQL did not start: {}",
            cluster.server_log()
        );
        cluster.wait_ready(Duration::from_secs(60)).await;
        cluster
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of database `db` as the user `postgres`, with an
    /// `application_name` when given (so its backends can be found).
    pub fn url(&self, db: &str, application_name: Option<&str>) -> String {
        let mut url = format!("postgres://postgres@127.0.0.1:{}/{db}", self.port);
        if let Some(name) = application_name {
            url.push_str("?application_name=");
            url.push_str(name);
        }
        url
    }

    /// Create database `name` (an identifier the suite chose).
    pub async fn create_database(&self, name: &str) {
        self.admin().await.close().await.ok(); // the server accepts connections
        let url = self.url("postgres", Some("fault-suite-admin"));
        durable::scratch::create_database(&url, name)
            .await
            .expect("create database");
    }

    /// When each crash-restart's server accepted connections again (Unix ms).
    pub fn restarts(&self) -> &[i64] {
        &self.restarts
    }

    /// Crash the server (`pg_ctl stop -m immediate`: no shutdown checkpoint,
    /// every session dropped, crash recovery at the next start) and start it
    /// again on the same port. Returns when a query succeeds again: the
    /// instant (Unix ms) it accepts connections, also recorded in
    /// [`Cluster::restarts`], and the instant the crash began.
    pub async fn crash_restart(&mut self) -> (i64, i64) {
        let crashed = now_ms();
        let out = self.pg(
            "pg_ctl",
            &[
                "stop",
                "-D",
                &self.data(),
                "-m",
                "immediate",
                "-w",
                "-t",
                "60",
            ],
        );
        assert!(out.status.success(), "pg_ctl stop failed: {}", text(&out));
        assert!(
            self.pg_ctl_start(),
            "PostgreSQL did not restart: {}",
            self.server_log()
        );
        let ready = self.wait_ready(Duration::from_secs(60)).await;
        self.restarts.push(ready);
        (crashed, ready)
    }

    /// Backends whose `application_name` is `name` (or starts with it when
    /// `prefix` is set).
    pub async fn backends(&self, name: &str, prefix: bool) -> Vec<Backend> {
        let admin = self.admin().await;
        let backends = Self::backends_via(&admin, name, prefix).await;
        admin.close().await.ok();
        backends
    }

    /// [`Cluster::backends`] on a connection of the caller's (from
    /// [`Cluster::admin_session`]), for polling without a connect each time.
    pub async fn backends_via(
        admin: &DatabaseConnection,
        name: &str,
        prefix: bool,
    ) -> Vec<Backend> {
        let pattern = if prefix {
            format!("{}%", like_escape(name))
        } else {
            like_escape(name)
        };
        let stmt = Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT a.pid, a.application_name, COALESCE(a.state, ''), a.xact_start IS NOT NULL \
             FROM pg_stat_activity a WHERE a.application_name LIKE $1 AND a.pid <> pg_backend_pid()",
            [pattern.into()],
        );
        let rows = admin
            .query_all_raw(stmt)
            .await
            .expect("read pg_stat_activity");
        rows.iter()
            .map(|r| Backend {
                pid: r.try_get_by_index::<i32>(0).expect("pid") as u32,
                application_name: r.try_get_by_index(1).expect("application_name"),
                state: r.try_get_by_index(2).expect("state"),
                in_transaction: r.try_get_by_index(3).expect("in transaction"),
            })
            .collect()
    }

    /// `pg_terminate_backend` of the backend `pid`; whether it existed.
    pub async fn terminate_backend(&self, pid: u32) -> bool {
        let admin = self.admin().await;
        let stmt = Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT pg_terminate_backend($1)",
            [i32::try_from(pid).expect("a pid").into()],
        );
        let row = admin
            .query_one_raw(stmt)
            .await
            .expect("pg_terminate_backend");
        admin.close().await.ok();
        row.and_then(|r| r.try_get_by_index::<bool>(0).ok())
            .unwrap_or(false)
    }

    /// Terminate every backend whose `application_name` starts with
    /// `prefix`; how many there were.
    pub async fn terminate_backends(&self, prefix: &str) -> usize {
        let mut n = 0;
        for b in self.backends(prefix, true).await {
            if self.terminate_backend(b.pid).await {
                n += 1;
            }
        }
        n
    }

    /// Stop a server backend's process (SIGSTOP): to its client the
    /// connection is black-holed, it neither answers nor closes.
    pub fn stop_backend(&self, pid: u32) {
        signal("STOP", pid);
    }

    /// Let a stopped backend go on (SIGCONT).
    pub fn cont_backend(&self, pid: u32) {
        signal("CONT", pid);
    }

    /// SIGCONT every stopped process of this server (its postmaster's
    /// children): whatever a scenario stopped and lost track of (a backend
    /// that was starting up when it was stopped and never showed in
    /// `pg_stat_activity`) must not stay stopped, or the locks it holds
    /// would freeze the server for good. Returns how many it continued.
    pub fn cont_all_stopped(&self) -> usize {
        let Ok(text) = std::fs::read_to_string(self.dir.join("data/postmaster.pid")) else {
            return 0;
        };
        let Some(postmaster) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
        else {
            return 0;
        };
        let mut continued = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces: split after ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let mut fields = rest.split_whitespace();
            let (state, ppid) = (
                fields.next(),
                fields.next().and_then(|p| p.parse::<u32>().ok()),
            );
            if state == Some("T") && ppid == Some(postmaster) {
                signal("CONT", pid);
                continued += 1;
            }
        }
        continued
    }

    /// Stall a backend for `dur`: SIGSTOP, wait, SIGCONT.
    pub async fn stall_backend(&self, pid: u32, dur: Duration) {
        self.stop_backend(pid);
        tokio::time::sleep(dur).await;
        self.cont_backend(pid);
    }

    /// A connection to the `postgres` database as the superuser (not one
    /// of the workers' `application_name`s), retried while the server is
    /// (re)starting.
    pub async fn admin_session(&self) -> DatabaseConnection {
        self.admin().await
    }

    async fn admin(&self) -> DatabaseConnection {
        let url = self.url("postgres", Some("fault-suite-admin"));
        let started = Instant::now();
        loop {
            match Database::connect(url.as_str()).await {
                Ok(db) => return db,
                Err(err) if started.elapsed() < Duration::from_secs(60) => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("cannot reach the suite's server: {err}"),
            }
        }
    }

    /// Wait until a query succeeds; the instant it did (Unix ms).
    async fn wait_ready(&self, limit: Duration) -> i64 {
        let url = self.url("postgres", Some("fault-suite-admin"));
        let started = Instant::now();
        loop {
            if let Ok(db) = Database::connect(url.as_str()).await {
                let ok = db.execute_unprepared("SELECT 1").await.is_ok();
                let at = now_ms();
                db.close().await.ok();
                if ok {
                    return at;
                }
            }
            assert!(
                started.elapsed() < limit,
                "the server did not accept connections within {limit:?}: {}",
                self.server_log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn pg_ctl_start(&self) -> bool {
        let log = self.dir.join("server.log").display().to_string();
        let port = format!("-p {}", self.port);
        self.pg(
            "pg_ctl",
            &[
                "start",
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &port,
                "-w",
                "-t",
                "60",
            ],
        )
        .status
        .success()
    }

    /// Run a server binary, as `postgres` when we are root.
    fn pg(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", path.display()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.dir.join("data/postmaster.pid").exists() {
            let _ = self.pg(
                "pg_ctl",
                &["stop", "-D", &self.data(), "-m", "immediate", "-w"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Send `kill -<sig>` to `pid`; panics if `kill` cannot be run.
pub(crate) fn signal(sig: &str, pid: u32) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("run kill: {e}"))
        .success()
}

/// A `LIKE` pattern matching `s` literally.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn run_plain(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(out.status.success(), "{program} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open postgresql.conf");
    f.write_all(text.as_bytes()).expect("write postgresql.conf");
}
