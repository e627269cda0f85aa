//! What every API call passes before its handler: the `Host` it was sent
//! to, a deadline, and after a change, the counts it made stale. (The
//! token is `auth.rs`.)

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// The longest a call may take before it is answered 503.
pub(crate) const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// Refuse a call sent to a host name this server does not answer to.
///
/// A web page can point a name of its own at 127.0.0.1 (DNS rebinding)
/// and read what a loopback server answers, since the browser sees the
/// same origin. The page cannot choose the `Host` header, which stays its
/// own name, so only names known to be this server's pass: `localhost`,
/// any IP address, and the names given with `--allowed-host`. A request
/// without `Host` (no browser sends one) passes.
pub(crate) async fn known_host(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_name);
    match host {
        Some(name) if !allowed(&name, &app.allowed_hosts) => ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this server does not answer to the host name {name:?}: start it with \
                 --allowed-host {name} if that name is its own"
            ),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// The name of a `Host` value, without its port, lowercase.
fn host_name(value: &str) -> String {
    let value = value.trim();
    let name = match value.strip_prefix('[') {
        // [::1]:7070
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => value.rsplit_once(':').map_or(value, |(name, _)| name),
    };
    name.to_ascii_lowercase()
}

fn allowed(name: &str, extra: &[String]) -> bool {
    name == "localhost"
        || name.parse::<IpAddr>().is_ok()
        || extra
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// Answer 503 when the handler takes longer than [`CALL_DEADLINE`] (the
/// SDK bounds each statement; this bounds the sum).
pub(crate) async fn deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(CALL_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the call took longer than {} s", CALL_DEADLINE.as_secs()),
        )
        .into_response(),
    }
}

/// After a change went through, counts by status may be stale: forget
/// them, so the page that made the change shows its effect.
pub(crate) async fn fresh_counts(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    let response = next.run(request).await;
    if changes && response.status().is_success() {
        app.counts.clear();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{allowed, host_name};

    #[test]
    fn host_names_are_read_without_ports() {
        assert_eq!(host_name("127.0.0.1:7070"), "127.0.0.1");
        assert_eq!(host_name("[::1]:7070"), "::1");
        assert_eq!(host_name("LocalHost"), "localhost");
        assert_eq!(host_name("evil.example:80"), "evil.example");
    }

    #[test]
    fn only_this_servers_names_pass() {
        let extra = vec!["ops.internal".to_string()];
        for name in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "10.0.0.7",
            "ops.internal",
            "OPS.internal",
        ] {
            assert!(allowed(&host_name(name), &extra), "{name}");
        }
        for name in ["evil.example", "localhost.evil.example", "127.0.0.1.nip.io"] {
            assert!(!allowed(&host_name(name), &extra), "{name}");
        }
    }
}
