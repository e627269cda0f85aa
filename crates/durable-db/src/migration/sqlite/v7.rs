//! Schema v7 on SQLite: the schedules and debounce tables (see
//! `tables_v7`). New tables only; no existing row or index touched.

use crate::migration::Migration;
use crate::migration::tables_v7::tables_v7;

const TABLES: [&str; 3] = tables_v7!(uuid = "TEXT");

pub(in crate::migration) const V7: Migration = Migration {
    version: 7,
    parts: &[&TABLES],
};
