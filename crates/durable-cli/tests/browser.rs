//! The web UI end to end: `durable serve` as a process, Debian's Chromium
//! driven headless through chromedriver, on a SQLite database the SDK
//! wrote. A hostile workflow name renders as text (no element, no script
//! run); counts and the status filter; the workflow page with its step
//! tree, timeline and an action behind the confirmation and the token;
//! live updates of a running workflow; the queue page. Screenshots land
//! in `target/tmp/browser/` (`docs/images/ui-*.png` are copies).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/run` and
//! `scripts/test` install them): without them the test fails, it never
//! skips.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use durable::{Client, Status, Uuid};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{Value, json};

const TOKEN: &str = "browser-test-token";
/// Would run script if it were ever written into the page as HTML.
const HOSTILE: &str = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `durable serve` on a free port; its base URL once it listens.
fn serve(url: &str) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_durable"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token",
            TOKEN,
            "--database",
            url,
        ])
        .env_remove("DATABASE_URL")
        .env_remove("DURABLE_TOKEN")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start durable serve");
    let stderr = child.stderr.take().unwrap();
    let guard = Killed(child);
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("durable serve: http://") {
            let addr = rest.split('/').next().unwrap();
            return (guard, format!("http://{addr}"));
        }
    }
    panic!("durable serve ended before it listened");
}

/// chromedriver on a free port, once it answers.
async fn chromedriver() -> (Killed, String) {
    assert!(
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists(),
        "the browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
    );
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let guard = Killed(child);
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (guard, format!("http://127.0.0.1:{port}"))
}

/// A headless Chromium with no network of its own and a fresh profile.
async fn browser(driver: &str, profile: &std::path::Path) -> Browser {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a Chromium session")
}

/// Wait until `script` (a JavaScript expression) is true in the page.
async fn until(b: &Browser, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let value = b
            .execute(&format!("return !!({script});"), vec![])
            .await
            .unwrap();
        if value == json!(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} ({script})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn eval(b: &Browser, script: &str) -> Value {
    b.execute(&format!("return ({script});"), vec![])
        .await
        .unwrap()
}

async fn click(b: &Browser, css: &str) {
    b.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn screenshot(b: &Browser, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, b.screenshot().await.unwrap()).unwrap();
    path
}

#[tokio::test]
async fn the_ui_end_to_end() {
    let file = std::env::temp_dir().join(format!("durable-ui-{}.db", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", file.display());
    let db = durable::connect(&url).await.unwrap();
    let support::seed::Seeded { failed: bad, live } = support::seed::seed(&db, HOSTILE).await;
    let (_server, base) = serve(&url);
    let (_driver, driver_url) = chromedriver().await;
    let profile =
        std::env::temp_dir().join(format!("durable-ui-profile-{}", Uuid::new_v4().simple()));
    let b = browser(&driver_url, &profile).await;

    // The list: every root, the hostile name as text, counts by status.
    b.goto(&format!("{base}/")).await.unwrap();
    until(&b, "the list", "document.body.dataset.loaded === 'true' && document.querySelectorAll('[data-testid=workflow-row]').length >= 7").await;
    let names = eval(
        &b,
        "[...document.querySelectorAll('[data-testid=workflow-name]')].map(e => e.textContent)",
    )
    .await;
    assert!(
        names
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains(HOSTILE)),
        "{names}"
    );
    assert_eq!(
        eval(
            &b,
            "document.querySelectorAll('img, script:not([src])').length"
        )
        .await,
        json!(0),
        "no element from the data"
    );
    assert_eq!(
        eval(&b, "window.__pwned === undefined").await,
        json!(true),
        "no script from the data ran"
    );
    until(
        &b,
        "the counts",
        "document.querySelector('[data-testid=count-FAILED]').textContent.trim() === '1'",
    )
    .await;
    assert_eq!(
        eval(
            &b,
            "document.querySelector('[data-testid=count-RUNNING]').textContent.trim()"
        )
        .await,
        json!("1")
    );
    screenshot(&b, "ui-list.png").await;

    // The status filter, then the failed workflow's page.
    click(&b, "[data-testid=status-chip-FAILED]").await;
    until(
        &b,
        "the filtered list",
        "document.querySelectorAll('[data-testid=workflow-row]').length === 1",
    )
    .await;
    assert_eq!(
        eval(
            &b,
            "document.querySelector('[data-testid=workflow-row]').dataset.id"
        )
        .await,
        json!(bad.to_string())
    );
    click(
        &b,
        "[data-testid=workflow-row] a, [data-testid=workflow-row]",
    )
    .await;
    until(&b, "the step tree", "document.body.dataset.loaded === 'true' && document.querySelector('[data-testid=step-tree]')").await;
    let kinds = eval(&b, "[...document.querySelectorAll('[data-testid=step-row]')].map(e => e.dataset.kind + ':' + e.dataset.position)").await;
    for call in ["STEP:0", "WORKFLOW:1", "STEP:2"] {
        assert!(
            kinds.as_array().unwrap().contains(&json!(call)),
            "{call} in {kinds}"
        );
    }
    let bars = eval(
        &b,
        "document.querySelectorAll('[data-testid=timeline-bar]').length",
    )
    .await;
    assert!(bars.as_u64().unwrap() >= 3, "timeline bars: {bars}");
    assert_eq!(eval(&b, "document.querySelector('[data-testid=step-tree]').textContent.includes('card declined <b>bold</b>')").await, json!(true));
    assert_eq!(
        eval(&b, "document.querySelectorAll('b').length").await,
        json!(0)
    );
    let shot = screenshot(&b, "ui-workflow.png").await;

    // An action: confirmation first, the token when asked, then it is done.
    click(&b, "[data-testid=action-retry]").await;
    click(&b, "[data-testid=confirm-yes]").await;
    until(&b, "the token box", "document.querySelector('[data-testid=token-input]') && !document.querySelector('[data-testid=token-input]').closest('form').hidden").await;
    assert_eq!(
        Client::new(&db).workflow(bad).await.unwrap().status,
        Status::Failed,
        "nothing changed without the token"
    );
    b.find(Locator::Css("[data-testid=token-input]"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    click(&b, "[data-testid=token-save]").await;
    until(&b, "the page again", "document.body.dataset.loaded === 'true' && document.querySelector('[data-testid=action-retry]')").await;
    click(&b, "[data-testid=action-retry]").await;
    until(&b, "the dialog", "document.querySelector('[data-testid=confirm-dialog]') && document.querySelector('[data-testid=confirm-dialog]').open").await;
    click(&b, "[data-testid=confirm-yes]").await;
    until(&b, "the notice", "document.querySelector('[data-testid=notice]') && document.querySelector('[data-testid=notice]').textContent.includes('Retry')").await;
    assert_eq!(
        Client::new(&db).workflow(bad).await.unwrap().status,
        Status::Pending,
        "retried"
    );

    // Live updates: the running workflow finishes while its page is open.
    b.goto(&format!("{base}/#/workflows/{}", live.task_id()))
        .await
        .unwrap();
    until(&b, "the running workflow", "document.querySelector('[data-testid=workflow-status]') && document.querySelector('[data-testid=workflow-status]').textContent.includes('RUNNING')").await;
    let _: u32 = live.step("decide", || async { Ok(2) }).await.unwrap();
    live.complete(&"approved").await.unwrap();
    until(&b, "the live update", "document.querySelector('[data-testid=workflow-status]').textContent.includes('COMPLETED') && document.querySelectorAll('[data-testid=step-row]').length === 3").await;

    // The queue page.
    click(&b, "[data-testid=nav-queues]").await;
    until(
        &b,
        "the mail queue",
        "document.querySelector('[data-testid=queue-row][data-name=mail]')",
    )
    .await;
    let cells = eval(
        &b,
        "[...document.querySelectorAll('[data-testid=queue-row][data-name=mail] td')].map(td => td.textContent.trim())",
    )
    .await;
    // name, running / limit, limit, per key, queued, waiting, rate
    assert_eq!(
        cells,
        json!(["mail", "0 / 4", "4", "none", "1", "0", "none"]),
        "the mail queue's row"
    );
    screenshot(&b, "ui-queues.png").await;

    b.close().await.unwrap();
    eprintln!("screenshots beside {}", shot.display());
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_dir_all(profile);
}
