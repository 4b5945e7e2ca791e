//! When the next reconciliation runs: at once for a change after a quiet time (a single edit
//! propagates in milliseconds), else once the watched objects have been quiet for a moment (a
//! burst of changes gives a write of the state it settles on, not one per change); after a
//! failure with backoff; or at a time a reconciliation asked for (the end of the Setting's
//! re-creation grace period).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

/// How long the watched objects must be quiet before a reconciliation. Watch events of one burst
/// of edits (a script, `kubectl apply` of several objects, the job's own write coming back)
/// arrive within a few milliseconds of each other on a healthy API server.
pub const QUIET_PERIOD: Duration = Duration::from_millis(50);

/// A reconciliation runs at the latest this long after the first change it has not seen, even if
/// changes keep coming.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

/// The backoff after a failed reconciliation, reset by a successful one. Watch events still bring
/// a reconciliation earlier (after the quiet period): a relist after an API-server restart does.
fn retry_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
}

pub struct Schedule {
    /// When the changes seen so far count as settled.
    settle_at: Option<Instant>,
    /// The first change since the last reconciliation.
    first_change: Option<Instant>,
    /// A retry, or a time a reconciliation asked for; a change brings the reconciliation sooner.
    wake_at: Option<Instant>,
    /// When the last reconciliation ended.
    last_run: Option<Instant>,
    retries: ExponentialBackoff,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            settle_at: None,
            first_change: None,
            wake_at: None,
            last_run: None,
            retries: retry_backoff().build(),
        }
    }
}

impl Schedule {
    /// A watched object changed at `now`. The first change after a quiet time is reconciled at
    /// once; the next ones wait for the quiet period.
    pub fn changed(&mut self, now: Instant) {
        let quiet = self
            .last_run
            .is_none_or(|last| now.duration_since(last) >= QUIET_PERIOD);
        if self.first_change.is_none() && quiet {
            self.first_change = Some(now);
            self.settle_at = Some(now);
            return;
        }
        let first = *self.first_change.get_or_insert(now);
        self.settle_at = Some((now + QUIET_PERIOD).min(first + MAX_DELAY));
    }

    /// A reconciliation ended successfully at `now`; it may ask to run again at `wake_at`.
    pub fn succeeded(&mut self, now: Instant, wake_at: Option<Instant>) {
        self.retries = retry_backoff().build();
        self.clear();
        self.last_run = Some(now);
        self.wake_at = wake_at;
    }

    /// A reconciliation failed at `now`: returns the delay until the retry.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let delay = self.retries.next().unwrap_or(Duration::from_secs(5));
        self.clear();
        self.last_run = Some(now);
        self.wake_at = Some(now + delay);
        delay
    }

    /// Nothing to do until the next change (the watches are not listed yet).
    pub fn clear(&mut self) {
        self.settle_at = None;
        self.first_change = None;
        self.wake_at = None;
    }

    /// When the next reconciliation is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        match (self.settle_at, self.wake_at) {
            (Some(settle), Some(wake)) => Some(settle.min(wake)),
            (settle, wake) => settle.or(wake),
        }
    }

    /// Completes when a reconciliation is due; never when none is.
    pub async fn wait(&self) {
        match self.due() {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_change_after_a_quiet_time_runs_at_once_and_the_next_ones_wait() {
        let start = Instant::now();
        let mut schedule = Schedule::default();
        assert_eq!(schedule.due(), None);
        schedule.changed(start);
        assert_eq!(schedule.due(), Some(start), "the first change: at once");
        // More changes before it ran: they wait for the quiet period.
        schedule.changed(start + MS);
        assert_eq!(schedule.due(), Some(start + MS + QUIET_PERIOD));
        schedule.succeeded(start + 2 * MS, None);
        // Changes right after a reconciliation (its own write coming back, the rest of a burst).
        schedule.changed(start + 3 * MS);
        assert_eq!(schedule.due(), Some(start + 3 * MS + QUIET_PERIOD));
        schedule.changed(start + 10 * MS);
        assert_eq!(schedule.due(), Some(start + 10 * MS + QUIET_PERIOD));
        schedule.succeeded(start + 70 * MS, None);
        // Quiet again: the next change runs at once.
        let later = start + 70 * MS + QUIET_PERIOD;
        schedule.changed(later);
        assert_eq!(schedule.due(), Some(later));
    }

    #[test]
    fn a_steady_stream_of_changes_still_reconciles_within_max_delay() {
        let start = Instant::now();
        let mut schedule = Schedule::default();
        schedule.succeeded(start, None);
        for step in 0..200 {
            schedule.changed(start + step * 10 * MS);
        }
        assert_eq!(schedule.due(), Some(start + MAX_DELAY));
        schedule.succeeded(start + MAX_DELAY, None);
        assert_eq!(schedule.due(), None);
        // The rest of the stream counts from its own first change.
        schedule.changed(start + 1010 * MS);
        assert_eq!(schedule.due(), Some(start + 1010 * MS + QUIET_PERIOD));
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let now = Instant::now();
        let mut schedule = Schedule::default();
        let delays: Vec<Duration> = (0..8).map(|_| schedule.failed(now)).collect();
        assert!(delays[0] >= 100 * MS && delays[0] <= 200 * MS, "{delays:?}");
        assert!(
            delays.iter().all(|delay| *delay <= 10_000 * MS),
            "{delays:?}"
        );
        assert!(delays[7] >= 5000 * MS, "grows to the cap: {delays:?}");
        schedule.succeeded(now, None);
        assert!(schedule.failed(now) <= 200 * MS);
    }

    #[test]
    fn a_change_does_not_postpone_an_earlier_wake_up() {
        let now = Instant::now();
        let mut schedule = Schedule::default();
        schedule.succeeded(now, Some(now + 10 * MS));
        schedule.changed(now);
        assert_eq!(schedule.due(), Some(now + 10 * MS));
        // But a wake-up far away is brought forward by a change.
        schedule.succeeded(now, Some(now + 30_000 * MS));
        schedule.changed(now);
        assert_eq!(schedule.due(), Some(now + QUIET_PERIOD));
    }
}
