//! PostgreSQL wake-ups: `LISTEN durable_wakeup` on a connection of the
//! worker's own. A hint only: the worker polls as well, so a lost
//! notification or a lost listener costs latency, never work.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgListener;
use tokio::sync::Notify;

use crate::store::sql::PG_WAKEUP_CHANNEL;

/// Wake the worker on every notification, reconnecting after errors.
pub(super) async fn listen(db: DatabaseConnection, wake: Arc<Notify>) {
    let pool = db.get_postgres_connection_pool().clone();
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(err) = listener.listen(PG_WAKEUP_CHANNEL).await {
                    tracing::warn!(error = %err, "LISTEN failed");
                } else {
                    while listener.recv().await.is_ok() {
                        wake.notify_one();
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot open the LISTEN connection"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
