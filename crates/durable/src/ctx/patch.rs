//! Versioning: `ctx.patched`, a marker that lets workflow code change while
//! runs recorded by the old code replay the old path.

use super::Ctx;
use crate::call::Prepared;
use crate::codec;
use crate::error::DurableError;
use crate::history::PatchPoint;
use crate::status::StepKind;

impl Ctx {
    /// Whether this run takes the new path of the code change `name`.
    ///
    /// Wrap changed code in `if ctx.patched("name").await? { new } else
    /// { old }`. A run that reaches this point fresh records a marker here
    /// and gets `true`, now and on every replay. A run recorded by the old
    /// code, which has another call (or a later one) at this point, gets
    /// `false` and replays the old path; nothing is recorded and the next
    /// call takes this position. Once no run of the old code is left
    /// (list them with [`crate::Client::list`] by creation time), drop the
    /// old branch and keep the call, or see `docs/versioning.md`.
    ///
    /// Call it in sequence with the workflow's other calls, not
    /// concurrently with them: it decides by the position it would take.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a bad name; the errors of a step
    /// when the marker is recorded (a lost lease, the database).
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let total: u64 = ctx.step("sum", || async { Ok(42) }).await?;
    /// if ctx.patched("tax-included").await? {
    ///     ctx.step("add_tax", || async move { Ok(total * 120 / 100) }).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn patched(&self, name: &str) -> Result<bool, DurableError> {
        codec::check_name("patch", name)?;
        let position = self.calls.peek_position();
        match self.history.patch_at(self.store.as_ref(), position).await? {
            PatchPoint::Marker(found) if found == name => {}
            PatchPoint::Marker(_) | PatchPoint::Other => return Ok(false),
            // A finished run that never got here keeps to the old path.
            PatchPoint::Nothing if self.lease.is_none() => return Ok(false),
            PatchPoint::Nothing => {}
        }
        let call = self.take(name, StepKind::Patch)?;
        let run = match self.prepare(&call).await? {
            Prepared::Replay(entry) => return self.replay(&call, entry),
            Prepared::Run(run) => run,
        };
        self.settle(&call, Ok(true), &run, 0).await
    }
}
