//! Schema v3 on SQLite: messages, events, streams, and the run unit of
//! spawned children (see `tables_v3`). Only new tables and a nullable
//! column: no row of v2 is rewritten.

use crate::migration::Migration;
use crate::migration::tables_v3::tables_v3;

const TABLES: [&str; 12] = tables_v3!(uuid = "TEXT", serial = "INTEGER PRIMARY KEY AUTOINCREMENT");

pub(in crate::migration) const V3: Migration = Migration {
    version: 3,
    parts: &[&TABLES],
};
