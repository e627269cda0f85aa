//! `ingest`: the showcase pipeline, fetch → parse → chunk → embed → upsert,
//! durable from end to end.
//!
//! It generates a small corpus itself (24 pseudo-documents from a seeded
//! generator: no network, no files) and runs it through the pipeline as one
//! workflow. What it shows:
//!
//! - every step is checkpointed: kill the program at any moment (Ctrl-C,
//!   `kill -9`) and run it again; it resumes where it stopped, and each step
//!   prints whether it EXECUTED or REPLAYED its saved output;
//! - one child workflow per batch embeds its chunks and writes them with
//!   `ctx.transaction`: the rows and the step's checkpoint commit together,
//!   so every chunk is inserted exactly once (a plain `INSERT` on a primary
//!   key: a second insert would be an error, not a silent no-op);
//! - a flaky call retried with exponential backoff by `step_with_retry`;
//! - the same summary on every run, however often it was interrupted.
//!
//! ```text
//! cargo run --release --bin ingest                    # SQLite file durable-ingest.db here
//! DATABASE_URL=postgres://... cargo run --release --bin ingest
//! INGEST_STEP_DELAY_MS=50 cargo run --release --bin ingest   # slow: time to kill it
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use durable::{Ctx, DurableError, RetryPolicy};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

const DOCS: u64 = 24;
const DOCS_PER_BATCH: u64 = 4;
const CHUNK_WORDS: usize = 24;
const DIM: u64 = 8;
const SEED: u64 = 0x5EED_2026;

const CREATE_TABLES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS ingest_chunk (doc_id BIGINT NOT NULL, chunk_no BIGINT NOT NULL, \
     body TEXT NOT NULL, vector TEXT NOT NULL, PRIMARY KEY (doc_id, chunk_no))",
    // The request log of the simulated search-index service (see `publish`).
    "CREATE TABLE IF NOT EXISTS ingest_index_request (chunks BIGINT NOT NULL)",
];

/// One chunk of a document, as the `chunk` step returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Chunk {
    doc_id: i64,
    chunk_no: i64,
    text: String,
}

/// The workflow's output: identical on every run.
#[derive(Debug, Serialize)]
struct Summary {
    docs: u64,
    chunks: usize,
    rows: u64,
    checksum: String,
    index: String,
}

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://durable-ingest.db".into());
    let delay_ms = std::env::var("INGEST_STEP_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    let log = Log {
        delay: Duration::from_millis(delay_ms.unwrap_or(0)),
        ..Log::default()
    };

    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    for sql in CREATE_TABLES {
        db.execute_unprepared(sql).await?;
    }

    let input = json!({"corpus": "synthetic", "docs": DOCS, "seed": SEED});
    let ctx = Ctx::start(&db, "ingest", Some(input)).await?;

    // Fetch, parse and chunk every document: three checkpointed steps each.
    let mut chunks: Vec<Chunk> = Vec::new();
    for doc in 0..DOCS {
        let text: String = log
            .step(&ctx, "fetch", format!("doc {doc:02}"), || fetch(doc))
            .await?;
        let words: Vec<String> = log
            .step(&ctx, "parse", format!("doc {doc:02}"), || parse(&text))
            .await?;
        let doc_chunks: Vec<Chunk> = log
            .step(&ctx, "chunk", format!("doc {doc:02}"), || {
                chunk(doc, &words)
            })
            .await?;
        chunks.extend(doc_chunks);
    }

    // One child workflow per batch of documents: embed, then write in one transaction.
    let (mut rows, mut checksum) = (0u64, Fnv::new());
    for batch in 0..DOCS.div_ceil(DOCS_PER_BATCH) {
        let docs = batch * DOCS_PER_BATCH..(batch + 1) * DOCS_PER_BATCH;
        let mine: Vec<Chunk> = chunks
            .iter()
            .filter(|c| docs.contains(&(c.doc_id as u64)))
            .cloned()
            .collect();
        let child = ctx
            .child("embed_batch", Some(json!({"batch": batch})))
            .await?;
        println!(
            "child embed_batch {batch} (docs {}-{})",
            docs.start,
            docs.end - 1
        );

        let vectors: Vec<Vec<f32>> = log
            .step(&child, "embed", format!("batch {batch}"), || {
                mine.iter().map(|c| embed(&c.text)).collect()
            })
            .await?;
        for bits in vectors.iter().flatten().map(|x| x.to_bits()) {
            checksum.write(&bits.to_le_bytes());
        }

        let ran = Arc::new(AtomicBool::new(false));
        let (flag, delay) = (ran.clone(), log.delay);
        let pairs: Vec<(Chunk, Vec<f32>)> = mine.into_iter().zip(vectors).collect();
        let inserted: u64 = child
            .transaction("upsert", move |tx| {
                Box::pin(async move {
                    flag.store(true, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    for (c, vector) in &pairs {
                        let stmt = Statement::from_sql_and_values(
                            tx.get_database_backend(),
                            "INSERT INTO ingest_chunk (doc_id, chunk_no, body, vector) VALUES ($1, $2, $3, $4)",
                            [c.doc_id.into(), c.chunk_no.into(), c.text.clone().into(), serde_json::to_string(vector)?.into()],
                        );
                        tx.execute_raw(stmt).await?;
                    }
                    Ok(pairs.len() as u64)
                })
            })
            .await?;
        log.report(
            "upsert",
            &format!("batch {batch}: {inserted} rows"),
            ran.load(Ordering::SeqCst),
        );
        child.complete(&json!({"rows": inserted})).await?;
        rows += inserted;
    }

    // A flaky call: the search index turns the first requests away.
    let ran = AtomicBool::new(false);
    let policy = RetryPolicy::exponential(5, Duration::from_millis(10));
    let index: String = ctx
        .step_with_retry("publish", policy, || async {
            ran.store(true, Ordering::SeqCst);
            tokio::time::sleep(log.delay).await;
            publish(&db, chunks.len()).await
        })
        .await?;
    log.report("publish", &index, ran.load(Ordering::SeqCst));

    let summary = Summary {
        docs: DOCS,
        chunks: chunks.len(),
        rows,
        checksum: checksum.hex(),
        index,
    };
    ctx.complete(&summary).await?;

    // Read back what the table holds: exactly one row per chunk, never more.
    let in_table = count(&db, "SELECT COUNT(*) FROM ingest_chunk").await?;
    if in_table != summary.rows as i64 || summary.rows != summary.chunks as u64 {
        return Err(DurableError::custom(format!(
            "ingest_chunk holds {in_table} rows for {} chunks",
            summary.chunks
        )));
    }
    println!(
        "ingest complete: {} docs, {} chunks, {in_table} rows, checksum {} (executed {} steps, replayed {})",
        summary.docs,
        summary.chunks,
        summary.checksum,
        log.executed.load(Ordering::SeqCst),
        log.replayed.load(Ordering::SeqCst),
    );
    Ok(())
}

/// Runs steps and prints, for each, whether its closure ran in this process
/// (EXECUTED) or its saved output came back from the database (REPLAYED).
#[derive(Default)]
struct Log {
    delay: Duration,
    executed: AtomicU32,
    replayed: AtomicU32,
}

impl Log {
    /// `ctx.step(name, ...)` around a plain function, slowed by the step delay.
    async fn step<T: Serialize + DeserializeOwned>(
        &self,
        ctx: &Ctx,
        name: &str,
        what: String,
        f: impl FnOnce() -> T,
    ) -> Result<T, DurableError> {
        let ran = AtomicBool::new(false);
        let out = ctx
            .step(name, || async {
                ran.store(true, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                Ok(f())
            })
            .await?;
        self.report(name, &what, ran.load(Ordering::SeqCst));
        Ok(out)
    }

    fn report(&self, name: &str, what: &str, ran: bool) {
        let (counter, verdict) = if ran {
            (&self.executed, "EXECUTED")
        } else {
            (&self.replayed, "REPLAYED")
        };
        counter.fetch_add(1, Ordering::SeqCst);
        println!("  {name:<8} {what:<24} {verdict}");
    }
}

/// "Download" a document: deterministic pseudo-text from a seeded generator.
fn fetch(doc: u64) -> String {
    const WORDS: &str = "durable workflow step replay crash lease commit vector \
                         index batch chunk query Postgres SQLite resume exactly-once";
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut rng = SplitMix(SEED ^ doc.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut text = format!("Document {doc}:");
    for _ in 0..30 + rng.next() % 70 {
        text.push(' ');
        text.push_str(words[(rng.next() % words.len() as u64) as usize]);
        if rng.next().is_multiple_of(8) {
            text.push('.');
        }
    }
    text
}

/// Lowercase words without punctuation.
fn parse(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn chunk(doc: u64, words: &[String]) -> Vec<Chunk> {
    let chunks = words.chunks(CHUNK_WORDS).enumerate();
    chunks
        .map(|(n, w)| Chunk {
            doc_id: doc as i64,
            chunk_no: n as i64,
            text: w.join(" "),
        })
        .collect()
}

/// A stand-in for an embedding model: 8 hash-based components in [-1, 1),
/// each exact in `f32`, so they survive the JSON round trip bit for bit.
fn embed(text: &str) -> Vec<f32> {
    let component = |d: u64| {
        let mut h = Fnv::new();
        h.write(&d.to_le_bytes());
        h.write(text.as_bytes());
        (h.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    (0..DIM).map(component).collect()
}

/// A flaky remote service: the search index refuses the first two requests
/// it ever receives. Its request log is a table of its own, as a real
/// service's state would be, so a restarted run does not meet the same
/// failures again and the retry budget is never exhausted by restarts.
async fn publish(db: &DatabaseConnection, chunks: usize) -> Result<String, DurableError> {
    let sql = "INSERT INTO ingest_index_request (chunks) VALUES ($1)";
    let stmt =
        Statement::from_sql_and_values(db.get_database_backend(), sql, [(chunks as i64).into()]);
    db.execute_raw(stmt).await?;
    let requests = count(db, "SELECT COUNT(*) FROM ingest_index_request").await?;
    let ok = requests >= 3;
    println!(
        "  publish  request {requests} to the search index {}",
        if ok { "ok" } else { "failed" }
    );
    if !ok {
        return Err(DurableError::custom(format!(
            "search index unavailable (request {requests})"
        )));
    }
    Ok(format!("index-v1 ({chunks} chunks)"))
}

async fn count(db: &DatabaseConnection, sql: &str) -> Result<i64, DurableError> {
    let stmt = Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(stmt).await?;
    Ok(row.map(|r| r.try_get_by_index(0)).transpose()?.unwrap_or(0))
}

/// SplitMix64: a tiny deterministic generator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// FNV-1a, 64 bits: the checksum of all vectors and the embedding hash.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xCBF2_9CE4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}
