//! How the commands print: JSON documents, aligned tables, times and
//! one-line cuts of long values.

use std::fmt::Write;

use crate::error::{CliError, Result};

/// Pretty JSON of any read-model value.
pub(crate) fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Internal(format!("cannot encode as JSON: {e}")))
}

/// One line of at most 120 characters.
pub(crate) fn cut(text: &str) -> String {
    let line: String = text.replace('\n', "\\n");
    match line.char_indices().nth(120) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

/// Epoch milliseconds as UTC date and time.
pub(crate) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Left-aligned columns.
pub(crate) fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
