//! `RetryPolicy`: how often and how patiently `step_with_retry` tries again.

use std::time::Duration;

/// Policy for retrying a step on failure.
///
/// The n-th retry (1-based) waits `initial_backoff * backoff_multiplier^(n-1)`.
///
/// ```
/// use durable::RetryPolicy;
/// use std::time::Duration;
///
/// let policy = RetryPolicy::exponential(3, Duration::from_millis(100));
/// assert_eq!(policy.backoff(1), Duration::from_millis(100));
/// assert_eq!(policy.backoff(3), Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Factor applied to the wait after each retry (values below 1 count as 1).
    pub backoff_multiplier: f64,
}

impl RetryPolicy {
    /// No retries: fails on the first error.
    ///
    /// ```
    /// assert_eq!(durable::RetryPolicy::none().max_retries, 0);
    /// ```
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            initial_backoff: Duration::ZERO,
            backoff_multiplier: 1.0,
        }
    }

    /// Exponential backoff: the wait doubles after each retry.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = durable::RetryPolicy::exponential(5, Duration::from_secs(1));
    /// assert_eq!(p.backoff(2), Duration::from_secs(2));
    /// ```
    pub fn exponential(max_retries: u32, initial_backoff: Duration) -> Self {
        Self {
            max_retries,
            initial_backoff,
            backoff_multiplier: 2.0,
        }
    }

    /// Fixed backoff: the same wait before every retry.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = durable::RetryPolicy::fixed(2, Duration::from_millis(50));
    /// assert_eq!(p.backoff(2), Duration::from_millis(50));
    /// ```
    pub fn fixed(max_retries: u32, backoff: Duration) -> Self {
        Self {
            max_retries,
            initial_backoff: backoff,
            backoff_multiplier: 1.0,
        }
    }

    /// The wait before retry number `retry` (1-based), capped at one day.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = durable::RetryPolicy::exponential(10, Duration::from_secs(1));
    /// assert_eq!(p.backoff(4), Duration::from_secs(8));
    /// assert_eq!(p.backoff(0), Duration::ZERO);
    /// ```
    pub fn backoff(&self, retry: u32) -> Duration {
        if self.initial_backoff.is_zero() || retry == 0 {
            return Duration::ZERO;
        }
        let factor = if self.backoff_multiplier.is_finite() {
            self.backoff_multiplier.max(1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(retry - 1).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * factor.powi(exponent);
        Duration::from_secs_f64(secs.min(86_400.0))
    }
}

impl Default for RetryPolicy {
    /// Three retries with exponential backoff from one second.
    ///
    /// ```
    /// use durable::RetryPolicy;
    /// use std::time::Duration;
    /// assert_eq!(RetryPolicy::default(), RetryPolicy::exponential(3, Duration::from_secs(1)));
    /// ```
    fn default() -> Self {
        Self::exponential(3, Duration::from_secs(1))
    }
}
