//! The one error type of the HTTP API: every failure, the SDK's and the
//! request's own (a bad id in the path, a body that is not JSON, a body
//! too large), becomes a status code and a JSON body
//! `{"error": {"code": ..., "message": ...}}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::QueryRejection;
use durable::DurableError;
use serde::Serialize;
use utoipa::ToSchema;

/// A refused or failed request.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong: a stable code for programs, a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`,
    /// `unavailable` or `internal`.
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "this call needs the admin token: send the header `Authorization: Bearer <token>`",
        )
    }

    fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ if self.status.is_client_error() => "bad_request",
            _ => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// The SDK's typed errors, by what they mean to a caller.
impl From<DurableError> for ApiError {
    fn from(err: DurableError) -> Self {
        let status = match &err {
            DurableError::NotFound(_)
            | DurableError::KeyNotFound(_)
            | DurableError::ScheduleNotFound(_)
            | DurableError::UnknownQueue(_) => StatusCode::NOT_FOUND,
            DurableError::InvalidInput(_) | DurableError::Serialization(_) => {
                StatusCode::BAD_REQUEST
            }
            DurableError::InvalidTransition { .. } | DurableError::Conflict { .. } => {
                StatusCode::CONFLICT
            }
            e if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, err.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        // A malformed id is a bad request for a resource that cannot
        // exist: a 404, as an unknown id.
        Self::new(StatusCode::NOT_FOUND, rejection.body_text())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, rejection.body_text())
    }
}

/// The extractors every handler uses: axum's, with [`ApiError`] as the
/// rejection so a malformed request gets the same JSON error body.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct ApiJson<T>(pub(crate) T);

/// A path parameter, rejected as [`ApiError`].
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct ApiPath<T>(pub(crate) T);

/// Query parameters (repeatable), rejected as [`ApiError`].
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum_extra::extract::Query), rejection(ApiError))]
pub(crate) struct ApiQuery<T>(pub(crate) T);

/// What handlers return.
pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;
