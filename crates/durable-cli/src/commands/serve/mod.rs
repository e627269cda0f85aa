//! `durable serve`: the admin HTTP API (JSON, with its OpenAPI document
//! at `/api/v1/openapi.json`), the web UI at `/`, and Prometheus metrics
//! at `/metrics`, on one loopback port by default.
//!
//! Every call that changes something needs the admin token
//! (`Authorization: Bearer`); `--protect-reads` asks it of reads too.
//! Bodies are limited to 2 MiB (the SDK takes payloads up to 1 MiB),
//! pages to 1,000 workflows.

mod assets;
mod auth;
mod error;
mod guard;
mod metrics;
mod queues;
#[cfg(test)]
mod tests;
mod workflows;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use durable::Client;
use metrics_exporter_prometheus::PrometheusHandle;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use super::Database;
use crate::error::{CliError, Result};

/// The largest request body taken.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// `durable serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    database: Database,
    /// Address to listen on. Loopback by default: put a TLS proxy in front
    /// before opening it to a network.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// The admin token calls that change something must carry; without
    /// one a random token is made and printed on stderr.
    #[arg(long, env = "DURABLE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Ask the token of reads too (the UI asks for it once).
    #[arg(long)]
    protect_reads: bool,
    /// A host name this server answers to besides localhost and IP
    /// addresses (repeat for more): calls sent to other names are refused,
    /// so a web page cannot reach the API through a name of its own.
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    client: Client,
    token: Arc<str>,
    protect_reads: bool,
    metrics: PrometheusHandle,
    counts: Arc<workflows::CountsCache>,
    allowed_hosts: Arc<[String]>,
}

/// The OpenAPI document's frame: the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "durable admin API", description = "Workflows, queues and schedules of a durable database."),
    modifiers(&BearerToken)
)]
struct ApiDoc;

/// The `token` security scheme the mutating paths name.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole application: API, OpenAPI document, metrics and UI.
pub(crate) fn app(
    client: Client,
    token: &str,
    protect_reads: bool,
    allowed_hosts: &[String],
) -> Router {
    let state = AppState {
        client,
        token: Arc::from(token),
        protect_reads,
        metrics: metrics::recorder(),
        counts: Arc::default(),
        allowed_hosts: Arc::from(allowed_hosts),
    };
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(workflows::routes())
        .merge(queues::routes())
        .split_for_parts();
    let doc = Arc::new(doc);
    let guarded = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/metrics", get(metrics::scrape))
        .fallback(|| async { error::ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::fresh_counts,
        ))
        .layer(axum::middleware::from_fn(guard::deadline))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/app.js", get(assets::app_js))
        .route("/assets/app.css", get(assets::app_css))
        .merge(guarded)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::known_host,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers on every response: the UI's content policy, no sniffing of
/// types, no referrer.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(assets::CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A token for a server started without one: 32 random hex characters.
fn random_token() -> String {
    durable::Uuid::new_v4().simple().to_string()
}

/// Run `durable serve` until Ctrl-C or SIGTERM.
///
/// # Errors
/// The database cannot be reached; the address cannot be bound.
pub(crate) async fn run(args: ServeArgs) -> Result<()> {
    let client = args.database.client().await?;
    let token = match args.token {
        Some(token) if !token.trim().is_empty() => token.trim().to_string(),
        Some(_) => return Err(CliError::Usage("--token is empty".into())),
        None => {
            let token = random_token();
            eprintln!(
                "durable serve: admin token (pass --token or DURABLE_TOKEN to choose one): {token}"
            );
            token
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::io(format!("cannot listen on {}", args.listen), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::io("the bound address", e))?;
    eprintln!("durable serve: http://{local}/ (API at /api/v1, metrics at /metrics)");
    axum::serve(
        listener,
        app(client, &token, args.protect_reads, &args.allowed_hosts),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(|e| CliError::io("serving HTTP", e))
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
