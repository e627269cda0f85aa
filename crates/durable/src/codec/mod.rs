//! Checks on what users hand in: names, and values that must survive a JSON
//! round trip. Everything is rejected at the first run, never at replay.

mod finite;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DurableError;

/// Longest accepted workflow or step name, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 1024;

/// Names are stored as text: PostgreSQL rejects NUL, and keys must stay short.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), DurableError> {
    if name.is_empty() {
        return Err(DurableError::InvalidInput(format!("{what} name is empty")));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(DurableError::InvalidInput(format!(
            "{what} name is {} bytes long; the limit is {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(DurableError::InvalidInput(format!(
            "{what} name {name:?} contains a NUL byte"
        )));
    }
    Ok(())
}

/// Serialize a step output and prove it reads back as the same type and the
/// same JSON, so replay can never fail or differ (e.g. `f64::NAN` becomes
/// `null`, which does not read back as a float).
pub(crate) fn encode_output<T: Serialize + DeserializeOwned>(
    step: &str,
    value: &T,
) -> Result<String, DurableError> {
    let text = serde_json::to_string(value).map_err(|e| {
        DurableError::InvalidInput(format!("output of step '{step}' cannot be serialized: {e}"))
    })?;
    let back: T = serde_json::from_str(&text).map_err(|e| {
        DurableError::InvalidInput(format!(
            "output of step '{step}' does not survive a JSON round trip ({e}); \
             NaN and infinite floats, for example, are stored as null"
        ))
    })?;
    let again = serde_json::to_string(&back)?;
    if again != text {
        return Err(DurableError::InvalidInput(format!(
            "output of step '{step}' changes in a JSON round trip: {text:.200} became {again:.200}"
        )));
    }
    Ok(text)
}

/// Serialize a workflow input or output (no type to read back into, so
/// non-finite floats, which JSON would store as `null`, are looked for).
pub(crate) fn encode_value<T: Serialize + ?Sized>(
    what: &str,
    value: &T,
) -> Result<String, DurableError> {
    finite::check(value).map_err(|e| DurableError::InvalidInput(format!("{what}: {e}")))?;
    serde_json::to_string(value)
        .map_err(|e| DurableError::InvalidInput(format!("{what} cannot be serialized: {e}")))
}

/// Largest message, event value or stream item, in bytes of JSON: these
/// are read by pollers and kept with the workflow; large data belongs in
/// a table of the application, its key in the message.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Serialize a message, event value or stream item: JSON that reads back
/// the same (as [`encode_value`]), at most [`MAX_PAYLOAD_BYTES`].
pub(crate) fn encode_payload<T: Serialize + ?Sized>(
    what: &str,
    value: &T,
) -> Result<String, DurableError> {
    let text = encode_value(what, value)?;
    if text.len() > MAX_PAYLOAD_BYTES {
        return Err(DurableError::InvalidInput(format!(
            "{what} is {} bytes of JSON; the limit is {MAX_PAYLOAD_BYTES}",
            text.len()
        )));
    }
    Ok(text)
}

/// How the error of a workflow failed for too many recoveries begins, as
/// stored (so a handle reads it back as `MaxRecoveryExceeded`).
pub(crate) const MAX_RECOVERIES_ERROR: &str = "max recoveries exceeded";

/// The stored error of a workflow failed after `recoveries` takeovers.
pub(crate) fn max_recoveries_error(recoveries: i32, limit: u32) -> String {
    format!(
        "{MAX_RECOVERIES_ERROR}: taken over {recoveries} times from executors that died; the limit is {limit}"
    )
}

/// An error message as stored: PostgreSQL text cannot hold NUL, and an
/// error message is prose, so NUL becomes U+FFFD instead of failing the write.
pub(crate) fn error_text(message: impl std::fmt::Display) -> String {
    message.to_string().replace('\0', "\u{FFFD}")
}

/// Read a saved output back into the requested type.
pub(crate) fn decode_output<T: DeserializeOwned>(
    step: &str,
    text: &str,
) -> Result<T, DurableError> {
    serde_json::from_str(text).map_err(|e| {
        DurableError::InvalidInput(format!(
            "saved output of step '{step}' does not deserialize into the requested type: {e}; \
             the type changed since it was recorded: read it as the recorded type (a serde \
             alias or an enum of both), or put the change behind ctx.patched(...) so recorded \
             runs keep the old code (docs/versioning.md)"
        ))
    })
}

/// Compare two JSON texts by value (key order and spacing aside).
pub(crate) fn same_json(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a == b
                || matches!(
                    (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)),
                    (Ok(x), Ok(y)) if x == y
                )
        }
        (a, b) => a == b,
    }
}
