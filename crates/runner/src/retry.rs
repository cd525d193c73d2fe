//! Attempts: an asset is tried until it succeeds, its retries are spent, or it
//! fails in a way retrying cannot mend; between attempts the run waits an
//! exponentially growing, fully jittered delay (AWS's "full jitter": uniform
//! in `[0, min(max_delay, retry_delay * 2^(n-1))]`), so that many assets
//! failing on one shared cause do not all come back at the same moment.

use std::future::Future;
use std::time::Duration;

use sluice_core::{AssetStatus, ErrorClass};
use sluice_project::{RetryOn, RunPolicy};

use crate::outcome::AssetOutcome;

/// The longest wait before retry `n` (1 for the first retry): the backoff's cap.
pub(crate) fn backoff_cap(policy: &RunPolicy, n: u32) -> Duration {
    let doubling = 2u32.saturating_pow(n.saturating_sub(1));
    policy
        .retry_delay
        .saturating_mul(doubling)
        .min(policy.max_delay)
}

/// The wait before retry `n`, for a `fraction` drawn uniformly from `[0, 1)`.
pub(crate) fn backoff(policy: &RunPolicy, n: u32, fraction: f64) -> Duration {
    backoff_cap(policy, n).mul_f64(fraction.clamp(0.0, 1.0))
}

/// A fraction drawn uniformly from `[0, 1)` (53 random bits).
pub(crate) fn random_fraction() -> f64 {
    let bits = getrandom::u64().unwrap_or(0) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// Whether a failed attempt of this class is tried again under `retry_on`.
pub(crate) fn retryable(retry_on: RetryOn, class: Option<ErrorClass>) -> bool {
    match retry_on {
        RetryOn::Any => true,
        RetryOn::Transient => class == Some(ErrorClass::Transient),
    }
}

/// Tries an asset: `attempt(n)` for n = 1, 2, ...; after a failure that
/// `policy` retries, `wait(delay)` (which answers `false` when the run was
/// cancelled meanwhile, ending the attempts). `record` hears of every attempt
/// with the delay before the next one, if there is one. Returns the last
/// attempt's outcome.
pub(crate) async fn attempts<A, AF, W, WF>(
    policy: &RunPolicy,
    mut attempt: A,
    mut wait: W,
    mut record: impl FnMut(u32, &AssetOutcome, Option<Duration>),
    mut fraction: impl FnMut() -> f64,
) -> AssetOutcome
where
    A: FnMut(u32) -> AF,
    AF: Future<Output = AssetOutcome>,
    W: FnMut(Duration) -> WF,
    WF: Future<Output = bool>,
{
    let mut n = 1;
    loop {
        let outcome = attempt(n).await;
        let again = outcome.status == AssetStatus::Failed
            && n <= policy.retries
            && retryable(policy.retry_on, outcome.class);
        let delay = again.then(|| backoff(policy, n, fraction()));
        record(n, &outcome, delay);
        match delay {
            Some(delay) if wait(delay).await => n += 1,
            _ => return outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn policy(retries: u32) -> RunPolicy {
        RunPolicy {
            retries,
            retry_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(10),
            ..RunPolicy::default()
        }
    }

    fn outcome(status: AssetStatus, class: Option<ErrorClass>) -> AssetOutcome {
        AssetOutcome {
            name: "flaky".into(),
            kind: sluice_core::AssetKind::Table,
            status,
            version: None,
            rows_in: 0,
            rows_out: 0,
            rows_quarantined: 0,
            warnings: 0,
            duration_ms: 0,
            error: (status == AssetStatus::Failed).then(|| "boom".to_string()),
            class,
            online: None,
            model: None,
            partitions: None,
            collection: None,
        }
    }

    /// Runs `attempts` over scripted outcomes without sleeping; returns the
    /// attempts made, the recorded delays and the final status.
    fn script(
        policy: &RunPolicy,
        outcomes: Vec<AssetOutcome>,
        fractions: Vec<f64>,
        cancel_after_waits: Option<usize>,
    ) -> (u32, Vec<Option<Duration>>, AssetStatus) {
        let made = RefCell::new(0u32);
        let waits = RefCell::new(0usize);
        let recorded = RefCell::new(vec![]);
        let fractions = RefCell::new(fractions.into_iter());
        let last = futures::executor::block_on(attempts(
            policy,
            |n| {
                *made.borrow_mut() = n;
                let o = outcomes[(n - 1) as usize].clone();
                async move { o }
            },
            |_| {
                *waits.borrow_mut() += 1;
                let go = cancel_after_waits.is_none_or(|c| *waits.borrow() <= c);
                async move { go }
            },
            |n, _, delay| recorded.borrow_mut().push((n, delay)),
            || fractions.borrow_mut().next().unwrap_or(0.5),
        ));
        let delays = recorded.into_inner().into_iter().map(|(_, d)| d).collect();
        (made.into_inner(), delays, last.status)
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_stays_inside_it() {
        let p = policy(10);
        assert_eq!(backoff_cap(&p, 1), Duration::from_secs(2));
        assert_eq!(backoff_cap(&p, 2), Duration::from_secs(4));
        assert_eq!(backoff_cap(&p, 3), Duration::from_secs(8));
        assert_eq!(backoff_cap(&p, 4), Duration::from_secs(10));
        assert_eq!(backoff_cap(&p, 60), Duration::from_secs(10));
        assert_eq!(backoff(&p, 2, 0.0), Duration::ZERO);
        assert_eq!(backoff(&p, 2, 0.5), Duration::from_secs(2));
        for _ in 0..1000 {
            let f = random_fraction();
            assert!((0.0..1.0).contains(&f), "{f}");
            assert!(backoff(&p, 3, f) < Duration::from_secs(8));
        }
    }

    #[test]
    fn a_transient_failure_is_retried_until_it_passes_each_wait_inside_its_bounds() {
        let fail = outcome(AssetStatus::Failed, Some(ErrorClass::Transient));
        let ok = outcome(AssetStatus::Built, None);
        let p = policy(3);
        let (made, delays, status) =
            script(&p, vec![fail.clone(), fail, ok], vec![0.25, 0.75], None);
        assert_eq!(made, 3);
        assert_eq!(status, AssetStatus::Built);
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_millis(500)),
                Some(Duration::from_secs(3)),
                None
            ]
        );
    }

    #[test]
    fn permanent_failures_are_not_retried_unless_retry_on_is_any() {
        let fail = outcome(AssetStatus::Failed, Some(ErrorClass::Permanent));
        let ok = outcome(AssetStatus::Built, None);
        let (made, delays, status) =
            script(&policy(3), vec![fail.clone(), ok.clone()], vec![], None);
        assert_eq!((made, status), (1, AssetStatus::Failed));
        assert_eq!(delays, vec![None]);

        let any = RunPolicy {
            retry_on: RetryOn::Any,
            ..policy(3)
        };
        let (made, _, status) = script(&any, vec![fail, ok], vec![], None);
        assert_eq!((made, status), (2, AssetStatus::Built));
    }

    #[test]
    fn retries_run_out_and_a_cancelled_wait_ends_the_attempts() {
        let fail = outcome(AssetStatus::Failed, Some(ErrorClass::Transient));
        let (made, delays, status) = script(&policy(2), vec![fail.clone(); 5], vec![], None);
        assert_eq!((made, status), (3, AssetStatus::Failed));
        assert_eq!(delays.last(), Some(&None), "the last attempt has no retry");

        let (made, _, status) = script(&policy(5), vec![fail; 5], vec![], Some(1));
        assert_eq!((made, status), (2, AssetStatus::Failed));
    }

    #[test]
    fn up_to_date_and_built_end_at_the_first_attempt() {
        let (made, delays, _) = script(
            &policy(3),
            vec![outcome(AssetStatus::UpToDate, None)],
            vec![],
            None,
        );
        assert_eq!((made, delays), (1, vec![None]));
    }
}
