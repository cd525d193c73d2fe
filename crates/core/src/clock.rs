//! What time it is: the system's clock, or one a test sets and moves, so that
//! what depends on the present (windows read as of the request) can be tested
//! without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The present, in microseconds since the epoch (UTC).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// `None`: the system's clock.
    set: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A clock that stands at `micros` until [`Clock::set`] moves it.
    pub fn at(micros: i64) -> Self {
        Clock {
            set: Some(Arc::new(AtomicI64::new(micros))),
        }
    }

    /// Moves a clock made by [`Clock::at`] (and its clones) to `micros`; the
    /// system's clock does not move.
    pub fn set(&self, micros: i64) {
        if let Some(t) = &self.set {
            t.store(micros, Ordering::SeqCst);
        }
    }

    /// Now, in microseconds since the epoch.
    pub fn now_micros(&self) -> i64 {
        match &self.set {
            Some(t) => t.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_micros(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_moves_with_its_clones_and_the_system_clock_runs() {
        let clock = Clock::at(10);
        let other = clock.clone();
        other.set(25);
        assert_eq!(clock.now_micros(), 25);
        let system = Clock::system();
        system.set(0);
        assert!(system.now_micros() > 1_700_000_000_000_000);
    }
}
