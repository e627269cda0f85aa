//! What goes over the wire to PostgreSQL, counted by a loopback proxy in
//! front of the server: the round trips (the client messages after which
//! it waits for the server: `Sync`, which ends each extended-protocol
//! exchange, and the simple `Query`), the statements executed (`Bind` and
//! `Query`, transaction control apart), which of them write, the
//! transactions that ended (the server's `ReadyForQuery` says when a
//! session is idle again), and how long each kind of statement took from
//! its `Sync` to the server's `ReadyForQuery`.
//!
//! Counters in the client (SeaORM's metric callback) see only what passes
//! through them; this sees what every connection of a process sends,
//! pings, prepares and durable's own connections included. Tests pin the
//! engine's cost with it; `durable bench` reports it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), durable::DurableError> {
//! use durable::sea_orm::{ConnectOptions, Database};
//! let url = "postgres://postgres@127.0.0.1:5432/postgres";
//! let proxy = durable::scratch::wire::WireProxy::start(url).await?.expect("a TCP server");
//! let mut options = ConnectOptions::new(url);
//! let through = proxy.clone();
//! options.map_sqlx_postgres_opts(move |o| through.apply(o));
//! let db = Database::connect(options).await?;
//! // ... run something on `db` ...
//! println!("{} round trips", proxy.counts().round_trips);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};

use crate::error::DurableError;

/// Counts at one moment, over every connection of the proxy; subtract two
/// with [`WireCounts::since`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WireCounts {
    /// Messages after which the client waits for the server.
    pub round_trips: u64,
    /// Statements executed, `BEGIN`, `COMMIT`, `ROLLBACK` and savepoints
    /// apart.
    pub statements: u64,
    /// Statements other than reads (`SELECT`, `WITH`, `SHOW`).
    pub writes: u64,
    /// Transaction-control statements (`BEGIN`, `COMMIT`, ...).
    pub transaction_control: u64,
    /// Transactions that ended, committed or not: each autocommitted
    /// statement, and each block from `BEGIN` to its end.
    pub transactions: u64,
}

impl WireCounts {
    /// What happened between `before` and `self`.
    pub fn since(self, before: WireCounts) -> WireCounts {
        WireCounts {
            round_trips: self.round_trips - before.round_trips,
            statements: self.statements - before.statements,
            writes: self.writes - before.writes,
            transaction_control: self.transaction_control - before.transaction_control,
            transactions: self.transactions - before.transactions,
        }
    }
}

/// The time the server took for one kind of statement (its first words).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WireTiming {
    /// The statement's first words, whitespace collapsed.
    pub sql: String,
    /// Exchanges that ended with it.
    pub count: u64,
    /// Their total time from the client's `Sync` (or `Query`) to the
    /// server's `ReadyForQuery`, as the proxy saw it.
    pub total: Duration,
}

#[derive(Debug, Default)]
struct Shared {
    counts: WireCounts,
    timings: BTreeMap<String, (u64, Duration)>,
}

/// A running proxy; clones share it. It runs until the process ends.
#[derive(Debug, Clone)]
pub struct WireProxy {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl WireProxy {
    /// Start a proxy to the server of a PostgreSQL URL. `None` when the
    /// server is reached through a Unix socket (nothing to proxy).
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a URL that does not parse, or
    /// when no loopback port can be bound.
    pub async fn start(url: &str) -> Result<Option<WireProxy>, DurableError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            DurableError::InvalidInput(format!("cannot parse the PostgreSQL URL: {e}"))
        })?;
        let host = options.get_host().to_string();
        if host.starts_with('/') {
            return Ok(None);
        }
        let upstream = format!("{host}:{}", options.get_port());
        let bind_err = |e: std::io::Error| {
            DurableError::InvalidInput(format!("cannot bind the wire-counting proxy: {e}"))
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(bind_err)?;
        let port = listener.local_addr().map_err(bind_err)?.port();
        let proxy = WireProxy {
            port,
            shared: Arc::default(),
        };
        let shared = proxy.shared.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, shared.clone()));
            }
        });
        Ok(Some(proxy))
    }

    /// Point connect options at the proxy, in plain text (the proxy must
    /// read the messages).
    pub fn apply(&self, options: PgConnectOptions) -> PgConnectOptions {
        options
            .host("127.0.0.1")
            .port(self.port)
            .ssl_mode(PgSslMode::Disable)
    }

    /// The counts so far.
    pub fn counts(&self) -> WireCounts {
        self.lock().counts
    }

    /// Time per kind of statement since the last [`WireProxy::reset_timings`],
    /// most frequent first.
    pub fn timings(&self) -> Vec<WireTiming> {
        let mut out: Vec<WireTiming> = self
            .lock()
            .timings
            .iter()
            .map(|(sql, (count, total))| WireTiming {
                sql: sql.clone(),
                count: *count,
                total: *total,
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.sql.cmp(&b.sql)));
        out
    }

    /// Forget the timings so far (the counts stay).
    pub fn reset_timings(&self) {
        self.lock().timings.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Exchanges of one connection sent and not yet answered, oldest first:
/// the statement's label (`(sync)` when none ran), and when it was sent.
type Pending = Arc<Mutex<VecDeque<(String, Instant)>>>;

/// The label of an exchange that executed no statement.
const NO_STATEMENT: &str = "(sync)";

/// Forward both directions; read the messages as they pass.
async fn relay(client: TcpStream, server: TcpStream, shared: Arc<Mutex<Shared>>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, client_tx) = client.into_split();
    let (server_rx, mut server_tx) = server.into_split();
    let pending = Pending::default();
    let down = tokio::spawn(answers(
        server_rx,
        client_tx,
        pending.clone(),
        shared.clone(),
    ));
    let mut framer = Framer::new(true);
    let mut session = Session::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        for (kind, body) in framer.feed(&buf[..n]) {
            session.client_message(kind, &body, now, &pending, &shared);
        }
        if server_tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = server_tx.shutdown().await;
    let _ = down.await;
}

/// Forward the server's messages; each `ReadyForQuery` ends the oldest
/// exchange sent.
async fn answers(
    mut server_rx: OwnedReadHalf,
    mut client_tx: tokio::net::tcp::OwnedWriteHalf,
    pending: Pending,
    shared: Arc<Mutex<Shared>>,
) {
    // The proxy turns TLS off, so the server's side is typed messages from
    // the first byte.
    let mut framer = Framer::new(false);
    let mut in_block = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        for (kind, body) in framer.feed(&buf[..n]) {
            if kind != b'Z' {
                continue;
            }
            let done = pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            let Some((sql, sent)) = done else {
                continue; // the end of the start-up
            };
            // `I`: idle, no transaction open; `T` or `E`: inside a block.
            let idle = body.first() == Some(&b'I');
            let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
            if idle && (in_block || sql != NO_STATEMENT) {
                shared.counts.transactions += 1;
            }
            in_block = !idle;
            let entry = shared.timings.entry(sql).or_default();
            entry.0 += 1;
            entry.1 += now - sent;
        }
        if client_tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = client_tx.shutdown().await;
}

/// What one connection has prepared, and the statement of its exchange
/// in progress.
#[derive(Debug, Default)]
struct Session {
    /// Prepared statement name -> its SQL (`""` is the unnamed one).
    prepared: HashMap<String, String>,
    /// The last statement bound since the last `Sync`.
    current: Option<String>,
}

impl Session {
    fn client_message(
        &mut self,
        kind: u8,
        body: &[u8],
        now: Instant,
        pending: &Pending,
        shared: &Mutex<Shared>,
    ) {
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        match kind {
            b'P' => {
                let mut fields = cstrings(body);
                let name = fields.next().unwrap_or_default();
                let sql = fields.next().unwrap_or_default();
                self.prepared.insert(name, sql);
            }
            b'B' => {
                let mut fields = cstrings(body);
                let _portal = fields.next();
                let name = fields.next().unwrap_or_default();
                let sql = self.prepared.get(&name).cloned().unwrap_or_default();
                count(&mut shared.counts, &sql);
                self.current = Some(sql);
            }
            b'S' | b'Q' => {
                shared.counts.round_trips += 1;
                let sql = if kind == b'Q' {
                    let sql = cstrings(body).next().unwrap_or_default();
                    count(&mut shared.counts, &sql);
                    sql
                } else {
                    // A `Sync` without a `Bind`: a prepare, or a ping.
                    self.current.take().unwrap_or_else(|| NO_STATEMENT.into())
                };
                let label = label(&sql);
                pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_back((label, now));
            }
            _ => {}
        }
    }
}

/// Count one executed statement.
fn count(counts: &mut WireCounts, sql: &str) {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => {
            counts.transaction_control += 1;
        }
        "SELECT" | "WITH" | "SHOW" | "" => counts.statements += 1,
        _ => {
            counts.statements += 1;
            counts.writes += 1;
        }
    }
}

/// The NUL-terminated strings at the start of a message body.
fn cstrings(body: &[u8]) -> impl Iterator<Item = String> + '_ {
    body.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

/// The first words of a statement, whitespace collapsed, at most 60 bytes:
/// how [`WireTiming::sql`] names a kind of statement.
///
/// ```
/// let label = durable::scratch::wire::label("SELECT  id\n FROM t WHERE x = $1");
/// assert_eq!(label, "SELECT id FROM t WHERE x = $1");
/// ```
pub fn label(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(8).collect();
    let mut text = words.join(" ");
    if text.len() > 60 {
        let cut = (0..=60)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
    }
    text
}

/// Splits one direction of the protocol into messages: on the client's
/// side untyped start-up messages first (length, then a code), then typed
/// ones (a type byte, then a length that counts itself).
#[derive(Debug)]
struct Framer {
    started: bool,
    /// The current message's header bytes read so far.
    header: Vec<u8>,
    /// Its body, when kept.
    body: Vec<u8>,
    keep_body: bool,
    /// Body bytes still to come.
    body_left: usize,
}

/// Bodies longer than this are not kept (only their kind is needed):
/// statements are short, row data may not be.
const KEEP_BODY: usize = 64 * 1024;

impl Framer {
    /// `client`: this direction starts with start-up messages.
    fn new(client: bool) -> Self {
        Self {
            started: !client,
            header: Vec::new(),
            body: Vec::new(),
            keep_body: false,
            body_left: 0,
        }
    }

    /// Consume bytes; return the typed messages completed (kind, body;
    /// the body is left empty when longer than [`KEEP_BODY`]).
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let header_len = if self.started { 5 } else { 8 };
            if self.header.len() < header_len {
                let take = (header_len - self.header.len()).min(bytes.len());
                self.header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.header.len() < header_len {
                    break;
                }
                let h = &self.header;
                self.body_left = if self.started {
                    (u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize).saturating_sub(4)
                } else {
                    (u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize).saturating_sub(8)
                };
                self.keep_body = self.started && self.body_left <= KEEP_BODY;
                self.body.clear();
            }
            let take = self.body_left.min(bytes.len());
            if self.keep_body {
                self.body.extend_from_slice(&bytes[..take]);
            }
            self.body_left -= take;
            bytes = &bytes[take..];
            if self.body_left > 0 {
                break;
            }
            let header = std::mem::take(&mut self.header);
            if self.started {
                out.push((header[0], std::mem::take(&mut self.body)));
            } else {
                let code = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                // SSL and GSS encryption requests are followed by another
                // start-up message; the start-up message proper (protocol
                // 3.x) by typed messages.
                if code >> 16 == 3 {
                    self.started = true;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(u32::try_from(body.len()).unwrap() + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn client_stream() -> Vec<u8> {
        let mut stream = Vec::new();
        stream.extend_from_slice(&8u32.to_be_bytes());
        stream.extend_from_slice(&80_877_103u32.to_be_bytes()); // SSLRequest
        stream.extend_from_slice(&13u32.to_be_bytes());
        stream.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
        stream.extend_from_slice(b"user\0");
        stream.extend(typed(b'P', b"s1\0INSERT INTO t VALUES ($1)\0\0\0"));
        stream.extend(typed(b'S', b"")); // the prepare's exchange
        stream.extend(typed(b'B', b"\0s1\0\0\0\0\0\0\0"));
        stream.extend(typed(b'E', b"\0\0\0\0\0"));
        stream.extend(typed(b'S', b""));
        stream.extend(typed(b'Q', b"SELECT 'S'\0"));
        stream.extend(typed(b'Q', b"BEGIN\0"));
        stream
    }

    fn run(chunks: usize) -> (WireCounts, Vec<String>) {
        let shared = Mutex::new(Shared::default());
        let pending = Pending::default();
        let mut framer = Framer::new(true);
        let mut session = Session::default();
        for chunk in client_stream().chunks(chunks) {
            for (kind, body) in framer.feed(chunk) {
                session.client_message(kind, &body, Instant::now(), &pending, &shared);
            }
        }
        let labels = pending
            .lock()
            .unwrap()
            .iter()
            .map(|(l, _)| l.clone())
            .collect();
        let counts = shared.lock().unwrap().counts;
        (counts, labels)
    }

    #[test]
    fn counts_exchanges_statements_and_writes_across_split_reads() {
        for chunks in [1, 3, 7, 1000] {
            let (counts, labels) = run(chunks);
            assert_eq!(counts.round_trips, 4, "split in {chunks}");
            assert_eq!(counts.statements, 2, "split in {chunks}");
            assert_eq!(counts.writes, 1, "split in {chunks}");
            assert_eq!(counts.transaction_control, 1, "split in {chunks}");
            assert_eq!(
                labels,
                ["(sync)", "INSERT INTO t VALUES ($1)", "SELECT 'S'", "BEGIN"],
                "split in {chunks}"
            );
        }
    }

    #[test]
    fn long_bodies_are_skipped_not_kept() {
        let mut framer = Framer::new(false);
        let big = vec![7u8; KEEP_BODY * 2];
        let mut stream = typed(b'D', &big);
        stream.extend(typed(b'Z', b"I"));
        let kinds: Vec<(u8, usize)> = stream
            .chunks(4096)
            .flat_map(|c| framer.feed(c))
            .map(|(k, body)| (k, body.len()))
            .collect();
        assert_eq!(kinds, [(b'D', 0), (b'Z', 1)]);
    }
}
