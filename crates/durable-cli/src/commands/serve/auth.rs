//! The admin token: every call that changes something (any method but
//! GET and HEAD) must carry `Authorization: Bearer <token>`, and reads
//! too when the server protects them. A header, not a cookie, so another
//! site cannot make a browser send it (no CSRF).

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;

/// Let the request through if it may pass; 401 otherwise.
pub(crate) async fn require_token(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if (reads && !app.protect_reads) || carries(&request, &app.token) {
        return next.run(request).await;
    }
    ApiError::unauthorized().into_response()
}

/// Whether the request carries the token, compared in constant time.
fn carries(request: &Request, token: &str) -> bool {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}
