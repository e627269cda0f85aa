//! `durable migrate`: create the `durable` tables, or bring them to this
//! build's schema (`durable::init`, idempotent; what every process does at
//! start-up, here on its own, e.g. before a deploy).

use super::Database;
use crate::error::Result;

/// `durable migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    database: Database,
}

/// Run `durable migrate`.
///
/// # Errors
/// The database cannot be reached, or its schema is newer than this build.
pub(crate) async fn run(args: MigrateArgs) -> Result<()> {
    let db = args.database.connect().await?;
    durable::init(&db).await?;
    println!("schema up to date");
    Ok(())
}
