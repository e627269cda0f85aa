//! `/api/v1/queues` and `/api/v1/schedules...`: queues with their limits
//! and work, and the cron schedules with their controls.

use axum::Json;
use axum::extract::State;
use durable::{QueueInfo, ScheduleInfo, Uuid};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiPath, ApiResult, ErrorBody};

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queues))
        .routes(routes!(schedules))
        .routes(routes!(pause_schedule))
        .routes(routes!(resume_schedule))
        .routes(routes!(trigger_schedule))
        .routes(routes!(delete_schedule))
}

/// Every queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Queues {
    queues: Vec<QueueInfo>,
}

/// Every declared queue and every queue with unfinished work: limits,
/// and how many run, are queued, wait for a time, or are paused.
#[utoipa::path(get, path = "/api/v1/queues", tag = "queues",
    responses((status = 200, body = Queues)))]
async fn queues(State(app): State<AppState>) -> ApiResult<Queues> {
    Ok(Json(Queues {
        queues: app.client.queues().await?,
    }))
}

/// Every schedule.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Schedules {
    schedules: Vec<ScheduleInfo>,
}

/// Every cron schedule, by name.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules",
    responses((status = 200, body = Schedules)))]
async fn schedules(State(app): State<AppState>) -> ApiResult<Schedules> {
    Ok(Json(Schedules {
        schedules: app.client.schedules().await?,
    }))
}

/// Done.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Done {
    ok: bool,
}

/// Stop a schedule's ticks until it is resumed.
#[utoipa::path(post, path = "/api/v1/schedules/{name}/pause", tag = "schedules",
    params(("name" = String, Path, description = "the schedule")),
    security(("token" = [])),
    responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
async fn pause_schedule(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Done> {
    app.client.pause_schedule(&name).await?;
    Ok(Json(Done { ok: true }))
}

/// Fire a paused schedule again, from its next tick after now.
#[utoipa::path(post, path = "/api/v1/schedules/{name}/resume", tag = "schedules",
    params(("name" = String, Path, description = "the schedule")),
    security(("token" = [])),
    responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
async fn resume_schedule(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Done> {
    app.client.resume_schedule(&name).await?;
    Ok(Json(Done { ok: true }))
}

/// The workflow a trigger started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Triggered {
    id: Uuid,
    key: String,
}

/// Start the schedule's workflow now, outside its ticks.
#[utoipa::path(post, path = "/api/v1/schedules/{name}/trigger", tag = "schedules",
    params(("name" = String, Path, description = "the schedule")),
    security(("token" = [])),
    responses((status = 200, body = Triggered), (status = 404, body = ErrorBody)))]
async fn trigger_schedule(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Triggered> {
    let handle = app.client.trigger_schedule(&name).await?;
    Ok(Json(Triggered {
        id: handle.id(),
        key: handle.key().to_string(),
    }))
}

/// Delete a schedule (the workflows it started stay).
#[utoipa::path(delete, path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "the schedule")),
    security(("token" = [])),
    responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
async fn delete_schedule(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Done> {
    app.client.delete_schedule(&name).await?;
    Ok(Json(Done { ok: true }))
}
