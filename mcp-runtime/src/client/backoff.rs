//! The reconnect schedule shared by [`Client`](super::Client) and
//! `mcp-relay`: exponential backoff with "equal jitter".

use std::time::Duration;

/// Delays between reconnect attempts: the first is `initial`, each failure
/// doubles it up to `max`. Each delay handed out is jittered to between half
/// and all of the current step, so many peers cut off by one restart do not
/// come back in lockstep.
///
/// ```
/// use std::time::Duration;
/// use mcp_runtime::client::Backoff;
///
/// let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// let first = backoff.next_delay();
/// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
/// let second = backoff.next_delay();
/// assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    /// A schedule starting at `initial` and never above `max` (`initial` is
    /// capped to `max` too).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { step: initial.min(max), max }
    }

    /// How long to wait before the next attempt; advances the schedule.
    pub fn next_delay(&mut self) -> Duration {
        let half = self.step / 2;
        let delay = half + half.mul_f64(rand::random::<f64>());
        self.step = self.step.saturating_mul(2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stay_within_half_and_all_of_each_step() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        for step_ms in [100, 200, 350, 350] {
            let step = Duration::from_millis(step_ms);
            let d = backoff.next_delay();
            assert!(d >= step / 2 && d <= step, "{d:?} outside [{:?}, {step:?}]", step / 2);
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay()).collect();
        assert!(delays.len() > 1, "twenty peers would all come back at the same instant");
    }

    #[test]
    fn an_initial_delay_above_the_cap_is_capped() {
        let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(1));
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }
}
