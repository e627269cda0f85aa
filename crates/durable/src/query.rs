//! Listing workflows: what [`crate::Client::list`] and
//! [`crate::Client::count`] select, in which order, one page at a time.
//!
//! Pages are keyset pages: a [`Cursor`] holds the sort key of the last
//! workflow of a page, and the next page starts after it. A page costs
//! the same at the millionth row as at the first, and work that starts
//! or finishes while you page neither repeats nor shifts a row that was
//! already listed (a workflow whose sort key changes, such as its status
//! under [`SortBy::Status`], may of course move).

use std::ops::{Bound, RangeBounds};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{MAX_NAME_BYTES, check_name};
use crate::error::DurableError;
use crate::read::WorkflowSummary;
use crate::status::Status;
use crate::store::Store;

/// Workflows per page unless [`WorkflowQuery::limit`] says otherwise.
pub const DEFAULT_PAGE: u32 = 100;
/// The most workflows one page may hold.
pub const MAX_PAGE: u32 = 1000;

/// What a list is sorted by. Every sort ends in the workflow's id, so the
/// order is total and pages never overlap.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SortBy {
    /// Creation time (the default).
    #[default]
    Created,
    /// First start; lists only workflows that have started.
    Started,
    /// Finish time; lists only finished workflows.
    Finished,
    /// Name, then creation time.
    Name,
    /// Status (by its stored name), then creation time.
    Status,
}

impl SortBy {
    fn as_str(self) -> &'static str {
        match self {
            SortBy::Created => "created",
            SortBy::Started => "started",
            SortBy::Finished => "finished",
            SortBy::Name => "name",
            SortBy::Status => "status",
        }
    }

    /// Whether the sort key begins with a text column before the time.
    pub(crate) fn has_text(self) -> bool {
        matches!(self, SortBy::Name | SortBy::Status)
    }
}

impl FromStr for SortBy {
    type Err = DurableError;

    /// `created`, `started`, `finished`, `name` or `status`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            SortBy::Created,
            SortBy::Started,
            SortBy::Finished,
            SortBy::Name,
            SortBy::Status,
        ]
        .into_iter()
        .find(|sort| sort.as_str() == s)
        .ok_or_else(|| {
            DurableError::InvalidInput(format!(
                "unknown sort {s:?}: one of created, started, finished, name, status"
            ))
        })
    }
}

/// Which way a list runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smallest first (oldest first for a time).
    #[serde(alias = "asc")]
    Ascending,
    /// Largest first (newest first for a time): the default.
    #[default]
    #[serde(alias = "desc")]
    Descending,
}

/// A time range in milliseconds since the Unix epoch, from (inclusive)
/// until (exclusive); either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub(crate) from_ms: Option<i64>,
    pub(crate) until_ms: Option<i64>,
}

impl TimeRange {
    fn of(range: impl RangeBounds<i64>) -> Self {
        let from_ms = match range.start_bound() {
            Bound::Included(t) => Some(*t),
            Bound::Excluded(t) => Some(t.saturating_add(1)),
            Bound::Unbounded => None,
        };
        let until_ms = match range.end_bound() {
            Bound::Included(t) => Some(t.saturating_add(1)),
            Bound::Excluded(t) => Some(*t),
            Bound::Unbounded => None,
        };
        Self { from_ms, until_ms }
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn contains(&self, t: Option<i64>) -> bool {
        match t {
            Some(t) => {
                self.from_ms.is_none_or(|from| t >= from)
                    && self.until_ms.is_none_or(|until| t < until)
            }
            None => self.from_ms.is_none() && self.until_ms.is_none(),
        }
    }

    fn check(&self, what: &str) -> Result<(), DurableError> {
        match (self.from_ms, self.until_ms) {
            (Some(from), Some(until)) if from > until => Err(DurableError::InvalidInput(format!(
                "{what} range starts at {from} ms, after its end at {until} ms"
            ))),
            _ => Ok(()),
        }
    }
}

/// Which workflows to list or count, sorted how, and which page.
///
/// Filters combine with AND; a filter not set selects everything. The
/// default lists the newest 100 workflows of every status, roots and
/// children, without their inputs and outputs (ask with
/// [`WorkflowQuery::with_payloads`]: a page of large payloads is costly).
///
/// ```
/// use durable::{SortBy, Direction, Status, WorkflowQuery};
///
/// let failed_today = WorkflowQuery::new()
///     .status(Status::Failed)
///     .name("send_invoice")
///     .roots_only()
///     .created(1_767_225_600_000..)
///     .sort(SortBy::Finished, Direction::Descending)
///     .limit(50);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowQuery {
    pub(crate) statuses: Vec<Status>,
    pub(crate) name: Option<String>,
    pub(crate) key_prefix: Option<String>,
    pub(crate) queue: Option<String>,
    pub(crate) parent: Option<Uuid>,
    pub(crate) roots_only: bool,
    pub(crate) created: TimeRange,
    pub(crate) finished: TimeRange,
    pub(crate) app_version: Option<String>,
    pub(crate) sort: SortBy,
    pub(crate) direction: Direction,
    pub(crate) limit: Option<u32>,
    pub(crate) after: Option<Cursor>,
    pub(crate) payloads: bool,
}

impl WorkflowQuery {
    /// Every workflow, newest first, 100 a page.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let newest = client.list(&durable::WorkflowQuery::new()).await?;
    /// # Ok(()) }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Only workflows in this status; call again to add more statuses.
    ///
    /// ```
    /// use durable::{Status, WorkflowQuery};
    /// let stuck = WorkflowQuery::new().status(Status::Paused).status(Status::Failed);
    /// ```
    pub fn status(mut self, status: Status) -> Self {
        if !self.statuses.contains(&status) {
            self.statuses.push(status);
        }
        self
    }

    /// Only workflows of this name (their registered function).
    ///
    /// ```
    /// let charges = durable::WorkflowQuery::new().name("charge");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only workflows whose key starts with this text (case-sensitive).
    ///
    /// ```
    /// let orders = durable::WorkflowQuery::new().key_prefix("order-");
    /// ```
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Only workflows of this queue.
    ///
    /// ```
    /// let payments = durable::WorkflowQuery::new().queue("payments");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only the children of this workflow.
    ///
    /// ```
    /// # fn demo(root: durable::Uuid) {
    /// let children = durable::WorkflowQuery::new().parent(root);
    /// # }
    /// ```
    pub fn parent(mut self, parent: Uuid) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Only root workflows (no parent).
    ///
    /// ```
    /// let roots = durable::WorkflowQuery::new().roots_only();
    /// ```
    pub fn roots_only(mut self) -> Self {
        self.roots_only = true;
        self
    }

    /// Only workflows created in this range of epoch milliseconds
    /// (`from..until`, `from..`, `..=until`, ...).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// let day_ago = SystemTime::now() - Duration::from_secs(86_400);
    /// let since_ms = day_ago.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    /// let last_day = durable::WorkflowQuery::new().created(since_ms..);
    /// ```
    pub fn created(mut self, range: impl RangeBounds<i64>) -> Self {
        self.created = TimeRange::of(range);
        self
    }

    /// Only workflows that finished in this range of epoch milliseconds.
    ///
    /// ```
    /// // Finished in the first hour of 2026-01-01 (UTC).
    /// let start = 1_767_225_600_000_i64;
    /// let first_hour = durable::WorkflowQuery::new().finished(start..start + 3_600_000);
    /// ```
    pub fn finished(mut self, range: impl RangeBounds<i64>) -> Self {
        self.finished = TimeRange::of(range);
        self
    }

    /// Only workflows of this application version.
    ///
    /// ```
    /// let old_code = durable::WorkflowQuery::new().app_version("v1");
    /// ```
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        self.app_version = Some(version.into());
        self
    }

    /// The order (default: created, descending).
    ///
    /// ```
    /// use durable::{Direction, SortBy, WorkflowQuery};
    /// let by_name = WorkflowQuery::new().sort(SortBy::Name, Direction::Ascending);
    /// ```
    pub fn sort(mut self, sort: SortBy, direction: Direction) -> Self {
        self.sort = sort;
        self.direction = direction;
        self
    }

    /// At most this many workflows a page: 1 to [`MAX_PAGE`] (default
    /// [`DEFAULT_PAGE`]).
    ///
    /// ```
    /// let small_pages = durable::WorkflowQuery::new().limit(20);
    /// ```
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The page after this cursor (a [`WorkflowPage::next`] of the same
    /// sort and direction).
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let query = durable::WorkflowQuery::new().limit(50);
    /// let first = client.list(&query).await?;
    /// if let Some(next) = first.next {
    ///     let second = client.list(&query.after(next)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Fill in each workflow's input and output (left out by default).
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let query = durable::WorkflowQuery::new().name("charge").limit(10).with_payloads();
    /// for w in client.list(&query).await?.workflows {
    ///     println!("{} {:?} -> {:?}", w.key, w.input, w.output);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_payloads(mut self) -> Self {
        self.payloads = true;
        self
    }

    /// The page size this query asks for.
    pub(crate) fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE)
    }

    /// Every value a user handed in, checked before anything is read.
    pub(crate) fn check(&self) -> Result<(), DurableError> {
        let limit = self.page_size();
        if limit == 0 || limit > MAX_PAGE {
            return Err(DurableError::InvalidInput(format!(
                "page limit {limit}: it must be 1 to {MAX_PAGE}"
            )));
        }
        for (what, text) in [
            ("workflow", &self.name),
            ("queue", &self.queue),
            ("app version", &self.app_version),
        ] {
            if let Some(text) = text {
                check_name(what, text)?;
            }
        }
        if let Some(prefix) = &self.key_prefix
            && (prefix.len() > MAX_NAME_BYTES || prefix.contains('\0'))
        {
            return Err(DurableError::InvalidInput(format!(
                "key prefix must be at most {MAX_NAME_BYTES} bytes without NUL"
            )));
        }
        if self.roots_only && self.parent.is_some() {
            return Err(DurableError::InvalidInput(
                "roots_only and parent exclude each other: a root has no parent".into(),
            ));
        }
        self.created.check("created")?;
        self.finished.check("finished")?;
        if let Some(cursor) = self.after.as_ref().map(Cursor::fields)
            && (cursor.sort != self.sort || cursor.direction != self.direction)
        {
            return Err(DurableError::InvalidInput(format!(
                "the cursor belongs to a list by {} {:?}, this one is by {} {:?}",
                cursor.sort.as_str(),
                cursor.direction,
                self.sort.as_str(),
                self.direction
            )));
        }
        Ok(())
    }
}

/// Where a page ended: pass it to [`WorkflowQuery::after`] for the next.
///
/// It prints as an opaque token (for a URL or a command line) and parses
/// back with [`str::parse`].
///
/// ```
/// # fn demo(page: durable::WorkflowPage) -> Result<(), durable::DurableError> {
/// if let Some(next) = page.next {
///     let token = next.to_string();
///     let again: durable::Cursor = token.parse()?;
///     assert_eq!(again, next);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Cursor {
    fields: CursorFields,
}

/// What a cursor holds, as its token's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CursorFields {
    pub(crate) sort: SortBy,
    pub(crate) direction: Direction,
    /// The text column of a name or status sort.
    pub(crate) text: Option<String>,
    /// The sort's time (creation time under a name or status sort).
    pub(crate) time_ms: i64,
    pub(crate) id: Uuid,
}

impl Cursor {
    pub(crate) fn fields(&self) -> &CursorFields {
        &self.fields
    }

    /// The cursor just past `w` in a list by `sort` and `direction`.
    pub(crate) fn at(w: &WorkflowSummary, sort: SortBy, direction: Direction) -> Self {
        let (text, time_ms) = match sort {
            SortBy::Created => (None, w.created_at_ms),
            SortBy::Started => (None, w.started_at_ms.unwrap_or_default()),
            SortBy::Finished => (None, w.finished_at_ms.unwrap_or_default()),
            SortBy::Name => (Some(w.name.clone()), w.created_at_ms),
            SortBy::Status => (Some(w.status.as_str().to_string()), w.created_at_ms),
        };
        Self {
            fields: CursorFields {
                sort,
                direction,
                text,
                time_ms,
                id: w.id,
            },
        }
    }
}

impl From<Cursor> for String {
    fn from(cursor: Cursor) -> String {
        cursor.to_string()
    }
}

impl TryFrom<String> for Cursor {
    type Error = DurableError;

    fn try_from(token: String) -> Result<Self, Self::Error> {
        token.parse()
    }
}

/// Tokens are the cursor's JSON in hexadecimal: opaque, safe in a URL and
/// a shell, and read back exactly. (Nothing in the dependencies does
/// hexadecimal; the five lines are not worth a crate.)
impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_vec(&self.fields).map_err(|_| std::fmt::Error)?;
        json.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl FromStr for Cursor {
    type Err = DurableError;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        let bad = || DurableError::InvalidInput("not a cursor of Client::list".into());
        if !token.len().is_multiple_of(2) || token.len() > 8 * MAX_NAME_BYTES {
            return Err(bad());
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| {
                token
                    .get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        let fields: CursorFields = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if fields.sort.has_text() != fields.text.is_some() {
            return Err(bad());
        }
        Ok(Cursor { fields })
    }
}

/// One page of a list: its workflows, and the cursor of the next page
/// (`None` on the last page).
///
/// ```no_run
/// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
/// use durable::WorkflowQuery;
///
/// let mut query = WorkflowQuery::new().limit(500);
/// loop {
///     let page = client.list(&query).await?;
///     for w in &page.workflows {
///         println!("{} {} {}", w.id, w.key, w.status);
///     }
///     match page.next {
///         Some(next) => query = query.after(next),
///         None => break,
///     }
/// }
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowPage {
    /// The workflows, in the query's order.
    pub workflows: Vec<WorkflowSummary>,
    /// The cursor after the last of them, if more may follow.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub next: Option<Cursor>,
}

impl WorkflowPage {
    /// The page `query` selects from `store`, checked first.
    pub(crate) async fn read(
        store: &dyn Store,
        query: &WorkflowQuery,
    ) -> Result<WorkflowPage, DurableError> {
        query.check()?;
        let limit = query.page_size();
        // One more than the page: whether another page follows.
        let mut rows = store.list(query, limit + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let workflows: Vec<WorkflowSummary> = rows.iter().map(WorkflowSummary::from_row).collect();
        let next = workflows
            .last()
            .filter(|_| more)
            .map(|w| Cursor::at(w, query.sort, query.direction));
        Ok(WorkflowPage { workflows, next })
    }
}
