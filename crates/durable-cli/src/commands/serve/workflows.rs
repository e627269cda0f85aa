//! `/api/v1/workflows...`: the read model (`Client::list`, `count`,
//! `workflow`, `tree`), the lifecycle (`pause`, `resume`, `cancel`,
//! `retry`, `fork`) and messages and events, one `Client` call a route.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use durable::{
    Direction, SortBy, Status, Uuid, WorkflowPage, WorkflowQuery, WorkflowSummary, WorkflowTree,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(counts))
        .routes(routes!(by_key))
        .routes(routes!(one))
        .routes(routes!(tree))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(cancel))
        .routes(routes!(retry))
        .routes(routes!(fork))
        .routes(routes!(send))
        .routes(routes!(event))
}

/// Filters shared by the list and the counts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Filters {
    /// Only these statuses (repeat the parameter for more).
    #[serde(default)]
    #[param(inline)]
    status: Vec<Status>,
    /// Only this workflow name.
    name: Option<String>,
    /// Only keys that start with this.
    key_prefix: Option<String>,
    /// Only this queue.
    queue: Option<String>,
    /// Only root workflows.
    #[serde(default)]
    roots: bool,
    /// Created at or after (epoch ms).
    created_after: Option<i64>,
    /// Created before (epoch ms).
    created_before: Option<i64>,
}

impl Filters {
    fn query(&self) -> WorkflowQuery {
        let mut query = WorkflowQuery::new();
        for status in &self.status {
            query = query.status(*status);
        }
        if let Some(name) = &self.name {
            query = query.name(name.clone());
        }
        if let Some(prefix) = &self.key_prefix {
            query = query.key_prefix(prefix.clone());
        }
        if let Some(queue) = &self.queue {
            query = query.queue(queue.clone());
        }
        if self.roots {
            query = query.roots_only();
        }
        match (self.created_after, self.created_before) {
            (Some(a), Some(b)) => query.created(a..b),
            (Some(a), None) => query.created(a..),
            (None, Some(b)) => query.created(..b),
            (None, None) => query,
        }
    }
}

/// Sort and page of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Paging {
    /// `created` (default), `started`, `finished`, `name` or `status`.
    #[param(inline)]
    sort: Option<SortBy>,
    /// `desc` (default: newest first) or `asc`.
    #[param(inline)]
    direction: Option<Direction>,
    /// Workflows per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// The `next` cursor of the page before.
    after: Option<String>,
}

/// A page of workflows, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows",
    params(Filters, Paging),
    responses((status = 200, body = WorkflowPage), (status = 400, body = ErrorBody)))]
async fn list(
    State(app): State<AppState>,
    ApiQuery(filters): ApiQuery<Filters>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> ApiResult<WorkflowPage> {
    let mut query = filters.query().sort(
        paging.sort.unwrap_or_default(),
        paging.direction.unwrap_or_default(),
    );
    if let Some(limit) = paging.limit {
        query = query.limit(limit);
    }
    if let Some(after) = &paging.after {
        query = query.after(after.parse()?);
    }
    Ok(Json(app.client.list(&query).await?))
}

/// How many workflows each status holds under the filters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Counts {
    /// By status: every status is present.
    counts: BTreeMap<String, u64>,
    /// All of them.
    total: u64,
}

/// Counts by status of the workflows the filters select (the status
/// filter itself is ignored): one count per status. A count reads every
/// matching index entry, and every open list page asks every few seconds,
/// so the answer for a set of filters is kept for [`COUNTS_FRESH`]: the
/// database does the work once per period, however many pages are open.
#[utoipa::path(get, path = "/api/v1/workflows/counts", tag = "workflows",
    params(Filters),
    responses((status = 200, body = Counts), (status = 400, body = ErrorBody)))]
async fn counts(
    State(app): State<AppState>,
    ApiQuery(filters): ApiQuery<Filters>,
) -> ApiResult<Counts> {
    let base = Filters {
        status: Vec::new(),
        ..filters
    };
    let cache_key = format!("{base:?}");
    if let Some(fresh) = app.counts.fresh(&cache_key) {
        return Ok(Json(fresh));
    }
    let mut counts = BTreeMap::new();
    let mut total = 0;
    for status in [
        Status::Pending,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Paused,
        Status::Cancelled,
    ] {
        let n = app.client.count(&base.query().status(status)).await?;
        total += n;
        counts.insert(status.to_string(), n);
    }
    let counts = Counts { counts, total };
    app.counts.keep(cache_key, counts.clone());
    Ok(Json(counts))
}

/// How long counts are served from memory.
pub(crate) const COUNTS_FRESH: Duration = Duration::from_secs(10);

/// Counts by filters, each kept for [`COUNTS_FRESH`].
#[derive(Debug, Default)]
pub(crate) struct CountsCache(Mutex<HashMap<String, (Instant, Counts)>>);

impl CountsCache {
    fn fresh(&self, key: &str) -> Option<Counts> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(key)
            .filter(|(at, _)| at.elapsed() < COUNTS_FRESH)
            .map(|(_, counts)| counts.clone())
    }

    /// Forget every count: a change went through.
    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn keep(&self, key: String, counts: Counts) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Filters typed by hand make many keys: drop the stale ones.
        kept.retain(|_, (at, _)| at.elapsed() < COUNTS_FRESH);
        kept.insert(key, (Instant::now(), counts));
    }
}

/// The key of a root workflow.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct KeyParam {
    /// The root workflow's key.
    key: String,
}

/// A root workflow by its key.
#[utoipa::path(get, path = "/api/v1/workflows/by-key", tag = "workflows",
    params(KeyParam),
    responses((status = 200, body = WorkflowSummary), (status = 404, body = ErrorBody)))]
async fn by_key(
    State(app): State<AppState>,
    ApiQuery(param): ApiQuery<KeyParam>,
) -> ApiResult<WorkflowSummary> {
    Ok(Json(app.client.workflow_by_key(&param.key).await?))
}

/// One workflow.
#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = Uuid, Path, description = "the workflow's id")),
    responses((status = 200, body = WorkflowSummary), (status = 404, body = ErrorBody)))]
async fn one(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<WorkflowSummary> {
    Ok(Json(app.client.workflow(id).await?))
}

/// A workflow with its steps, child workflows nested in the calls that
/// started them, and the calls retries set aside.
#[utoipa::path(get, path = "/api/v1/workflows/{id}/tree", tag = "workflows",
    params(("id" = Uuid, Path, description = "the workflow's id")),
    responses((status = 200, body = WorkflowTree), (status = 404, body = ErrorBody)))]
async fn tree(State(app): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<WorkflowTree> {
    Ok(Json(app.client.tree(id).await?))
}

/// What a transition changed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Changed {
    /// Always true: a refused transition is an error.
    ok: bool,
}

const CHANGED: Changed = Changed { ok: true };

/// Pause a workflow and its running descendants: no step starts in them
/// until they are resumed.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/pause", tag = "lifecycle",
    params(("id" = Uuid, Path, description = "the workflow's id")),
    security(("token" = [])),
    responses((status = 200, body = Changed), (status = 404, body = ErrorBody),
        (status = 409, description = "its status does not allow it", body = ErrorBody)))]
async fn pause(State(app): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Changed> {
    app.client.pause(id).await?;
    Ok(Json(CHANGED))
}

/// Resume a paused workflow and its paused descendants.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/resume", tag = "lifecycle",
    params(("id" = Uuid, Path, description = "the workflow's id")),
    security(("token" = [])),
    responses((status = 200, body = Changed), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume(State(app): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Changed> {
    app.client.resume(id).await?;
    Ok(Json(CHANGED))
}

/// Cancel a workflow and its unfinished descendants (terminal).
#[utoipa::path(post, path = "/api/v1/workflows/{id}/cancel", tag = "lifecycle",
    params(("id" = Uuid, Path, description = "the workflow's id")),
    security(("token" = [])),
    responses((status = 200, body = Changed), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(State(app): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Changed> {
    app.client.cancel(id).await?;
    Ok(Json(CHANGED))
}

/// Options of a retry.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct RetryBody {
    /// Retry a cancelled workflow too (default: failed only).
    #[serde(default)]
    cancelled: bool,
}

/// Run a failed (or, with `cancelled`, a cancelled) root again from its
/// failed calls; completed calls replay.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/retry", tag = "lifecycle",
    params(("id" = Uuid, Path, description = "the root workflow's id")),
    request_body(content = Option<RetryBody>, description = "optional"),
    security(("token" = [])),
    responses((status = 200, body = Changed), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Changed> {
    let body = body?;
    // The body is optional: none means the defaults.
    let options: RetryBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetryBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("the body is not a retry's options: {e}"),
            )
        })?
    };
    match options.cancelled {
        true => app.client.retry_cancelled(id).await?,
        false => app.client.retry(id).await?,
    }
    Ok(Json(CHANGED))
}

/// Where a fork starts.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ForkBody {
    /// The first call position that runs anew; the calls before it are
    /// copied.
    from: i32,
}

/// The new workflow a fork started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Forked {
    id: Uuid,
}

/// Start a new root with the history of this one before a position.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/fork", tag = "lifecycle",
    params(("id" = Uuid, Path, description = "the root workflow's id")),
    request_body = ForkBody,
    security(("token" = [])),
    responses((status = 200, body = Forked), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn fork(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ForkBody>,
) -> ApiResult<Forked> {
    let id = app.client.fork(id, body.from).await?;
    Ok(Json(Forked { id }))
}

/// A message for a workflow's `ctx.recv`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct MessageBody {
    /// The topic the workflow receives on.
    topic: String,
    /// Any JSON value (at most 1 MiB).
    payload: serde_json::Value,
    /// Send at most once per key.
    key: Option<String>,
}

/// Whether the message was stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Sent {
    /// False when a message with the same key was sent before.
    sent: bool,
}

/// Send a message to a workflow.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/messages", tag = "messages",
    params(("id" = Uuid, Path, description = "the recipient")),
    request_body = MessageBody,
    security(("token" = [])),
    responses((status = 200, body = Sent), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "the workflow finished", body = ErrorBody)))]
async fn send(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<MessageBody>,
) -> ApiResult<Sent> {
    let sent = match &body.key {
        Some(key) => {
            app.client
                .send_with_key(id, &body.topic, key, &body.payload)
                .await?
        }
        None => {
            app.client.send(id, &body.topic, &body.payload).await?;
            true
        }
    };
    Ok(Json(Sent { sent }))
}

/// The latest value of an event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventValue {
    key: String,
    value: serde_json::Value,
}

/// The latest value a workflow published under a key (`ctx.set_event`).
#[utoipa::path(get, path = "/api/v1/workflows/{id}/events/{key}", tag = "messages",
    params(("id" = Uuid, Path, description = "the workflow"), ("key" = String, Path, description = "the event's key")),
    responses((status = 200, body = EventValue), (status = 404, description = "unknown workflow, or no value", body = ErrorBody)))]
async fn event(
    State(app): State<AppState>,
    ApiPath((id, key)): ApiPath<(Uuid, String)>,
) -> ApiResult<EventValue> {
    match app
        .client
        .get_event::<serde_json::Value>(id, &key, Duration::ZERO)
        .await?
    {
        Some(value) => Ok(Json(EventValue { key, value })),
        None => Err(ApiError::not_found(format!(
            "workflow {id} has no value for event {key:?}"
        ))),
    }
}
