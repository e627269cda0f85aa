//! Every route of the API against a router (`oneshot`, no socket), on
//! both backends, on a database the SDK wrote: reads with their filters
//! and errors, each change with and without the token, refused
//! transitions, bodies that are not JSON or too large, the OpenAPI
//! document, metrics and the UI's headers.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use durable::{Client, Uuid};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";
const HOSTILE: &str = "<img src=x onerror=alert(1)> '; DROP TABLE durable_workflow; --";

/// One request and its status and body (JSON, or text as a JSON string).
async fn call(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body)),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    call(app, "GET", path, None, None).await
}

async fn post(app: &Router, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    call(app, "POST", path, Some(TOKEN), body.map(|b| b.to_string())).await
}

/// An error response: its status, its code, and its message.
fn error(reply: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "{}", reply.1);
    reply.1["error"]["message"].as_str().unwrap().to_string()
}

/// The seed the browser test uses too.
#[path = "../../../tests/support/seed.rs"]
mod seed;

async fn every_route(url: String) {
    let db = durable::connect(&url).await.unwrap();
    let seed::Seeded { failed: bad, live } = seed::seed(&db, HOSTILE).await;
    let app = super::app(Client::new(&db), TOKEN, false, &[]);

    // Reads: lists with filters and pages, counts, by key, one, tree.
    let (status, all) = get(&app, "/api/v1/workflows?roots=true").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["workflows"].as_array().unwrap().len(), 7, "{all}");
    let (_, failed) = get(&app, "/api/v1/workflows?status=FAILED&status=CANCELLED").await;
    let keys: Vec<&str> = failed["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["order-bad"]);
    let (_, page) = get(&app, "/api/v1/workflows?name=order&limit=2&direction=asc").await;
    assert_eq!(page["workflows"][0]["key"], "order-0");
    let next = page["next"].as_str().unwrap().to_string();
    let (_, rest) = get(
        &app,
        &format!("/api/v1/workflows?name=order&limit=2&direction=asc&after={next}"),
    )
    .await;
    assert_eq!(rest["workflows"][0]["key"], "order-2", "{rest}");
    let (_, counts) = get(&app, "/api/v1/workflows/counts?roots=true").await;
    assert_eq!(counts["counts"]["COMPLETED"], 4, "{counts}");
    assert_eq!(
        (
            &counts["counts"]["FAILED"],
            &counts["counts"]["RUNNING"],
            &counts["total"]
        ),
        (&json!(1), &json!(1), &json!(7))
    );
    let by_key = get(
        &app,
        &format!("/api/v1/workflows/by-key?key={}", urlencode(HOSTILE)),
    )
    .await;
    assert_eq!(by_key.1["name"], HOSTILE, "{}", by_key.1);
    let (_, one) = get(&app, &format!("/api/v1/workflows/{bad}")).await;
    assert_eq!(
        (&one["status"], &one["error"]),
        (&json!("FAILED"), &json!("charge failed"))
    );
    let (_, tree) = get(&app, &format!("/api/v1/workflows/{bad}/tree")).await;
    assert_eq!(tree["steps"][1]["child"]["workflow"]["name"], "receipt");
    assert_eq!(tree["steps"][2]["error"], "card declined <b>bold</b>");
    // Read errors: unknown and malformed ids, bad filters, unknown keys and routes.
    let unknown = Uuid::new_v4();
    assert!(
        error(
            &get(&app, &format!("/api/v1/workflows/{unknown}")).await,
            StatusCode::NOT_FOUND,
            "not_found"
        )
        .contains(&unknown.to_string())
    );
    error(
        &get(&app, "/api/v1/workflows/not-a-uuid/tree").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    error(
        &get(&app, "/api/v1/workflows/by-key?key=nobody").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    error(
        &get(&app, "/api/v1/workflows?limit=5000").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    error(
        &get(&app, "/api/v1/workflows?limit=0").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    error(
        &get(&app, "/api/v1/workflows?status=SLEEPY").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    error(
        &get(&app, "/api/v1/workflows?after=zz").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    error(
        &get(&app, "/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Changes need the token: none, or a wrong one, is 401 and changes nothing.
    let pause = format!("/api/v1/workflows/{}/pause", live.task_id());
    error(
        &call(&app, "POST", &pause, None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    error(
        &call(&app, "POST", &pause, Some("wrong"), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    error(
        &call(&app, "POST", &pause, Some(&format!("{TOKEN}x")), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        get(&app, &format!("/api/v1/workflows/{}", live.task_id()))
            .await
            .1["status"],
        "RUNNING"
    );
    // Lifecycle with the token; refused transitions are 409.
    assert_eq!(
        post(&app, &pause, None).await,
        (StatusCode::OK, json!({"ok": true}))
    );
    assert_eq!(
        get(&app, &format!("/api/v1/workflows/{}", live.task_id()))
            .await
            .1["status"],
        "PAUSED"
    );
    error(
        &post(&app, &pause, None).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(
        post(
            &app,
            &format!("/api/v1/workflows/{}/resume", live.task_id()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let done = get(&app, "/api/v1/workflows/by-key?key=order-0").await.1["id"]
        .as_str()
        .unwrap()
        .to_string();
    error(
        &post(&app, &format!("/api/v1/workflows/{done}/cancel"), None).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    error(
        &post(&app, &format!("/api/v1/workflows/{unknown}/pause"), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(
        post(&app, &format!("/api/v1/workflows/{bad}/retry"), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, &format!("/api/v1/workflows/{bad}")).await.1["status"],
        "PENDING"
    );
    error(
        &post(
            &app,
            &format!("/api/v1/workflows/{bad}/retry"),
            Some(json!({"cancelled": true})),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    error(
        &call(
            &app,
            "POST",
            &format!("/api/v1/workflows/{bad}/retry"),
            Some(TOKEN),
            Some("{oops".into()),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let (status, forked) = post(
        &app,
        &format!("/api/v1/workflows/{done}/fork"),
        Some(json!({"from": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{forked}");
    let fork_id = forked["id"].as_str().unwrap();
    assert_eq!(
        get(&app, &format!("/api/v1/workflows/{fork_id}/tree"))
            .await
            .1["steps"][0]["key"],
        "reserve#0"
    );
    error(
        &post(
            &app,
            &format!("/api/v1/workflows/{done}/fork"),
            Some(json!({"from": 9})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    error(
        &post(
            &app,
            &format!("/api/v1/workflows/{done}/fork"),
            Some(json!({"from": "one"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_request",
    );
    error(
        &call(
            &app,
            "POST",
            &format!("/api/v1/workflows/{done}/fork"),
            Some(TOKEN),
            Some("not json".into()),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );

    // Messages and events.
    let messages = format!("/api/v1/workflows/{}/messages", live.task_id());
    assert_eq!(
        post(
            &app,
            &messages,
            Some(json!({"topic": "decision", "payload": {"ok": true}}))
        )
        .await,
        (StatusCode::OK, json!({"sent": true}))
    );
    let got: Option<Value> = live
        .recv("decision", std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got, Some(json!({"ok": true})));
    let keyed = json!({"topic": "note", "payload": 1, "key": "k"});
    assert_eq!(
        post(&app, &messages, Some(keyed.clone())).await.1,
        json!({"sent": true})
    );
    assert_eq!(
        post(&app, &messages, Some(keyed)).await.1,
        json!({"sent": false})
    );
    error(
        &post(
            &app,
            &format!("/api/v1/workflows/{unknown}/messages"),
            Some(json!({"topic": "t", "payload": 1})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    error(
        &post(&app, &messages, Some(json!({"topic": "", "payload": 1}))).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    error(
        &post(
            &app,
            &format!("/api/v1/workflows/{done}/messages"),
            Some(json!({"topic": "t", "payload": 1})),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let huge = json!({"topic": "t", "payload": "x".repeat(3 * 1024 * 1024)}).to_string();
    error(
        &call(&app, "POST", &messages, Some(TOKEN), Some(huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let over_sdk_limit = json!({"topic": "t", "payload": "x".repeat(1024 * 1024 + 10)});
    error(
        &post(&app, &messages, Some(over_sdk_limit)).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let event = get(
        &app,
        &format!("/api/v1/workflows/{}/events/progress", live.task_id()),
    )
    .await;
    assert_eq!(
        event,
        (
            StatusCode::OK,
            json!({"key": "progress", "value": {"done": 2}})
        )
    );
    error(
        &get(
            &app,
            &format!("/api/v1/workflows/{}/events/eta", live.task_id()),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Queues and schedules.
    let (_, queues) = get(&app, "/api/v1/queues").await;
    let mail = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "mail")
        .unwrap()
        .clone();
    assert_eq!(
        (&mail["concurrency"], &mail["queued"]),
        (&json!(4), &json!(1)),
        "{mail}"
    );
    let (_, schedules) = get(&app, "/api/v1/schedules").await;
    assert_eq!(schedules["schedules"][0]["name"], "nightly");
    error(
        &call(&app, "POST", "/api/v1/schedules/nightly/pause", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        post(&app, "/api/v1/schedules/nightly/pause", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "/api/v1/schedules").await.1["schedules"][0]["paused"],
        true
    );
    assert_eq!(
        post(&app, "/api/v1/schedules/nightly/resume", None).await.0,
        StatusCode::OK
    );
    let (status, triggered) = post(&app, "/api/v1/schedules/nightly/trigger", None).await;
    assert_eq!(status, StatusCode::OK, "{triggered}");
    assert!(
        triggered["key"]
            .as_str()
            .unwrap()
            .starts_with("schedule:nightly@manual:")
    );
    error(
        &call(&app, "DELETE", "/api/v1/schedules/nightly", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        call(
            &app,
            "DELETE",
            "/api/v1/schedules/nightly",
            Some(TOKEN),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    error(
        &post(&app, "/api/v1/schedules/nightly/trigger", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Metrics: queue gauges from the database.
    let (status, metrics) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("durable_queue_queued{queue=\"mail\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("durable_queue_concurrency_limit{queue=\"mail\"} 4"),
        "{metrics}"
    );

    // Every change needs the token; a method a route does not take is a
    // JSON 405 (after the token, for changes); a NUL byte is a 400.
    let some = Uuid::new_v4();
    for (method, path) in [
        ("POST", format!("/api/v1/workflows/{some}/pause")),
        ("POST", format!("/api/v1/workflows/{some}/resume")),
        ("POST", format!("/api/v1/workflows/{some}/cancel")),
        ("POST", format!("/api/v1/workflows/{some}/retry")),
        ("POST", format!("/api/v1/workflows/{some}/fork")),
        ("POST", format!("/api/v1/workflows/{some}/messages")),
        ("POST", "/api/v1/schedules/x/pause".to_string()),
        ("POST", "/api/v1/schedules/x/resume".to_string()),
        ("POST", "/api/v1/schedules/x/trigger".to_string()),
        ("DELETE", "/api/v1/schedules/x".to_string()),
        ("OPTIONS", format!("/api/v1/workflows/{some}/pause")),
        ("PUT", "/api/v1/workflows".to_string()),
    ] {
        let reply = call(&app, method, &path, None, None).await;
        error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    error(
        &get(&app, &format!("/api/v1/workflows/{some}/pause")).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    error(
        &call(&app, "PUT", "/api/v1/workflows", Some(TOKEN), None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    error(
        &get(&app, "/api/v1/workflows/by-key?key=a%00b").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    error(
        &get(&app, "/api/v1/schedules/a%00b/trigger").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    error(
        &post(&app, "/api/v1/schedules/a%00b/pause", None).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let huge_retry = "x".repeat(3 * 1024 * 1024);
    error(
        &call(
            &app,
            "POST",
            &format!("/api/v1/workflows/{bad}/retry"),
            Some(TOKEN),
            Some(huge_retry),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    // Counts are kept a while, but a change forgets them.
    let paused_before = get(&app, "/api/v1/workflows/counts").await.1["counts"]["PAUSED"].clone();
    assert_eq!(paused_before, 0);
    let (status, _) = post(
        &app,
        &format!("/api/v1/workflows/{}/pause", live.task_id()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        get(&app, "/api/v1/workflows/counts").await.1["counts"]["PAUSED"],
        1
    );
    assert_eq!(
        post(
            &app,
            &format!("/api/v1/workflows/{}/resume", live.task_id()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );

    // Only this server's host names: another is refused (DNS rebinding).
    for (host, allowed) in [
        ("localhost:7070", true),
        ("127.0.0.1:7070", true),
        ("[::1]:7070", true),
        ("evil.example", false),
        ("ops.internal:7070", false),
    ] {
        let request = Request::builder()
            .uri("/api/v1/queues")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        let status = app.clone().oneshot(request).await.unwrap().status();
        let expected = if allowed {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(status, expected, "{host}");
    }
    let named = super::app(
        Client::new(&db),
        TOKEN,
        false,
        &["ops.internal".to_string()],
    );
    let request = Request::builder()
        .uri("/api/v1/queues")
        .header(header::HOST, "ops.internal:7070")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        named.oneshot(request).await.unwrap().status(),
        StatusCode::OK
    );

    // Reads protected on demand.
    let guarded = super::app(Client::new(&db), TOKEN, true, &[]);
    error(
        &get(&guarded, "/api/v1/workflows").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    error(
        &get(&guarded, "/metrics").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        call(&guarded, "GET", "/api/v1/workflows", Some(TOKEN), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&guarded, "/").await.0,
        StatusCode::OK,
        "the page loads to ask for the token"
    );
    live.complete(&1).await.unwrap();
}

/// `text` as a URL query value.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn sqlite_every_route() {
    let file = std::env::temp_dir().join(format!("durable-serve-{}.db", Uuid::new_v4().simple()));
    every_route(format!("sqlite://{}", file.display())).await;
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn postgres_every_route() {
    let base = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at PostgreSQL (scripts/test starts one)");
    let schema = format!("serve_{}", Uuid::new_v4().simple());
    let url = durable::scratch::create_schema(&base, &schema)
        .await
        .unwrap();
    every_route(url).await;
    durable::scratch::drop_schema(&base, &schema).await.unwrap();
}

#[tokio::test]
async fn the_document_names_every_route_and_the_page_its_policy() {
    let db = durable::connect("sqlite::memory:").await.unwrap();
    let app = super::app(Client::new(&db), TOKEN, false, &[]);
    let (status, doc) = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for path in [
        "/api/v1/workflows",
        "/api/v1/workflows/counts",
        "/api/v1/workflows/by-key",
        "/api/v1/workflows/{id}",
        "/api/v1/workflows/{id}/tree",
        "/api/v1/workflows/{id}/pause",
        "/api/v1/workflows/{id}/resume",
        "/api/v1/workflows/{id}/cancel",
        "/api/v1/workflows/{id}/retry",
        "/api/v1/workflows/{id}/fork",
        "/api/v1/workflows/{id}/messages",
        "/api/v1/workflows/{id}/events/{key}",
        "/api/v1/queues",
        "/api/v1/schedules",
        "/api/v1/schedules/{name}",
        "/api/v1/schedules/{name}/pause",
        "/api/v1/schedules/{name}/resume",
        "/api/v1/schedules/{name}/trigger",
    ] {
        assert!(
            paths.iter().any(|p| p.as_str() == path),
            "{path} missing from {paths:?}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["WorkflowTree"].is_object());
    let response = app
        .clone()
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let response = app
            .clone()
            .oneshot(Request::builder().uri(asset).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
}
