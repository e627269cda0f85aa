//! Fresh databases for the crate's own tests: a SQLite file in the temp
//! directory, or a schema of its own in the PostgreSQL of `DATABASE_URL`
//! (without `DATABASE_URL` a PostgreSQL test fails; it never skips). Both
//! come with the tables.

use sea_orm::DatabaseConnection;
use uuid::Uuid;

/// A fresh SQLite file with the tables; `what` names the file.
pub(crate) async fn sqlite(what: &str) -> DatabaseConnection {
    let file = std::env::temp_dir().join(format!("durable-{what}-{}.db", Uuid::new_v4().simple()));
    let db = crate::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("open a SQLite file");
    crate::init(&db).await.expect("create the tables");
    db
}

/// A fresh schema of `DATABASE_URL` with the tables.
pub(crate) async fn postgres() -> DatabaseConnection {
    let base = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must point at PostgreSQL for the PostgreSQL tests \
         (scripts/test and .ci/run start a throwaway server)",
    );
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let url = crate::scratch::create_schema(&base, &schema)
        .await
        .expect("create the test schema");
    let db = crate::connect(&url).await.expect("connect to the schema");
    crate::init(&db).await.expect("create the tables");
    db
}
