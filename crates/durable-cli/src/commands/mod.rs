//! One folder per command, and what they share: where the database is,
//! and how results are printed (`output`).

use std::path::Path;

use durable::Client;
use durable::sea_orm::DatabaseConnection;

use crate::error::{CliError, Result};

pub(crate) mod completions;
pub(crate) mod events;
pub(crate) mod migrate;
pub(crate) mod output;
pub(crate) mod queues;
pub(crate) mod schedules;
pub(crate) mod send;
pub(crate) mod serve;
pub(crate) mod workflows;

/// The SQLite file the showcase (`cargo run --bin ingest`) writes.
const SHOWCASE_DB: &str = "durable-ingest.db";

/// Where to read: `--database`, else `DATABASE_URL`, else the showcase's file.
#[derive(Debug, clap::Args)]
pub(crate) struct Database {
    /// Database URL (`postgres://...`, `sqlite://file.db`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database: Option<String>,
}

/// The arguments of a `list` command: where, and whether as JSON.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) database: Database,
    /// A JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

impl Database {
    /// A client on the database, or a usage error naming where to look.
    pub(crate) async fn client(&self) -> Result<Client> {
        Ok(Client::new(&self.connect().await?))
    }

    /// A connection to the database, or a usage error naming where to look.
    pub(crate) async fn connect(&self) -> Result<DatabaseConnection> {
        let url = match &self.database {
            Some(url) => url.clone(),
            None if Path::new(SHOWCASE_DB).exists() => format!("sqlite://{SHOWCASE_DB}"),
            None => {
                return Err(CliError::Usage(format!(
                    "no database: pass --database URL or set DATABASE_URL (and no {SHOWCASE_DB} here)"
                )));
            }
        };
        Ok(durable::connect(&url).await?)
    }
}
