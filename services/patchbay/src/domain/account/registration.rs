//! Meta's allowance of `/register` calls per WhatsApp number. Meta's Registration
//! reference: "Requests to the registration endpoint are limited to 10 requests per
//! business number in a 72 hour moving window… the API will return error code 133016,
//! and the number will be prevented from being registered for the next 72 hours";
//! 133015 asks to wait 5 minutes after a number's deletion. Counted here per number,
//! across accounts and workspaces (Meta counts the number, whoever asks), so that
//! neither a tenant nor an update loop spends it: an attempt is made only while the
//! window has room, and only the attempts Meta answered about the number are counted.

use chrono::{DateTime, Duration, Utc};

/// Attempts per number in the moving window.
pub const ALLOWANCE: usize = 10;
/// Meta's moving window, and how long 133016 blocks the number.
pub const WINDOW_HOURS: i64 = 72;
/// How long 133015 asks to wait.
const AFTER_DELETION_MINUTES: i64 = 5;

/// 133005: the PIN is not the number's two-step verification PIN.
pub const PIN_MISMATCH: i64 = 133_005;
/// How a set-up refused for its PIN begins its `setup_error`: it is not run again
/// until the PIN changes (each try would spend the number's allowance).
pub const PIN_REFUSED: &str = "Meta refused the two-step verification PIN of the number (error 133005): set config.pin to the number's six-digit PIN";
/// 133015: the number was deleted recently; wait a few minutes.
pub const RECENTLY_DELETED: i64 = 133_015;
/// 133016: the number's register/deregister allowance is spent.
pub const ALLOWANCE_SPENT: i64 = 133_016;

/// What Meta made of one `/register` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterAnswer {
    /// Registered.
    Accepted,
    /// Refused for the number (a business error such as 133005, 133015, 133016):
    /// counted.
    Refused { code: Option<i64> },
    /// Never judged for the number (no answer, 5xx, 429, a rate limit of the app, a
    /// refused token or permission): not counted.
    NotCounted,
}

/// One number's counted attempts and Meta's last request to wait.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registrations {
    /// The attempts Meta counted, oldest first: at most [`ALLOWANCE`], within the window.
    pub attempts: Vec<DateTime<Utc>>,
    pub blocked_until: Option<DateTime<Utc>>,
}

impl Registrations {
    /// When the next attempt may be made, `None` when it may be made at `now`.
    pub fn wait_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let window = Duration::hours(WINDOW_HOURS);
        let blocked = self.blocked_until.filter(|until| *until > now);
        let recent: Vec<DateTime<Utc>> = self
            .attempts
            .iter()
            .copied()
            .filter(|at| *at + window > now)
            .collect();
        let full = (recent.len() >= ALLOWANCE)
            .then(|| recent.iter().min().map(|oldest| *oldest + window))
            .flatten();
        blocked.max(full)
    }

    /// Records an attempt made at `now` and Meta's answer.
    pub fn record(&mut self, now: DateTime<Utc>, answer: RegisterAnswer) {
        let window = Duration::hours(WINDOW_HOURS);
        self.attempts.retain(|at| *at + window > now);
        let code = match answer {
            RegisterAnswer::NotCounted => return,
            RegisterAnswer::Accepted => None,
            RegisterAnswer::Refused { code } => code,
        };
        self.attempts.push(now);
        self.attempts.sort();
        let excess = self.attempts.len().saturating_sub(ALLOWANCE);
        self.attempts.drain(..excess);
        let wait = match code {
            Some(ALLOWANCE_SPENT) => Some(window),
            Some(RECENTLY_DELETED) => Some(Duration::minutes(AFTER_DELETION_MINUTES)),
            _ => None,
        };
        if let Some(wait) = wait {
            let until = now + wait;
            self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time") + Duration::minutes(minutes)
    }

    #[test]
    fn ten_counted_attempts_fill_the_window_until_the_oldest_leaves_it() {
        let mut registrations = Registrations::default();
        for i in 0..10 {
            assert_eq!(registrations.wait_until(t(i)), None, "attempt {i}");
            registrations.record(
                t(i),
                RegisterAnswer::Refused {
                    code: Some(PIN_MISMATCH),
                },
            );
        }
        assert_eq!(
            registrations.wait_until(t(10)),
            Some(t(0) + Duration::hours(72))
        );
        assert_eq!(
            registrations.wait_until(t(72 * 60)),
            None,
            "the oldest left"
        );
        // Attempts Meta never judged are not counted.
        let mut outages = Registrations::default();
        for i in 0..50 {
            outages.record(t(i), RegisterAnswer::NotCounted);
        }
        assert_eq!(outages.wait_until(t(51)), None);
        assert!(outages.attempts.is_empty());
    }

    #[test]
    fn meta_asking_to_wait_blocks_the_number_for_as_long_as_it_says() {
        let mut spent = Registrations::default();
        spent.record(
            t(0),
            RegisterAnswer::Refused {
                code: Some(ALLOWANCE_SPENT),
            },
        );
        assert_eq!(spent.wait_until(t(1)), Some(t(72 * 60)));
        let mut deleted = Registrations::default();
        deleted.record(
            t(0),
            RegisterAnswer::Refused {
                code: Some(RECENTLY_DELETED),
            },
        );
        assert_eq!(deleted.wait_until(t(1)), Some(t(5)));
        assert_eq!(deleted.wait_until(t(5)), None);
        // A shorter wait never shortens a longer one.
        spent.record(
            t(2),
            RegisterAnswer::Refused {
                code: Some(RECENTLY_DELETED),
            },
        );
        assert_eq!(spent.wait_until(t(10)), Some(t(72 * 60)));
    }

    #[test]
    fn the_record_keeps_at_most_the_allowance() {
        let mut registrations = Registrations::default();
        for i in 0..30 {
            registrations.record(t(i), RegisterAnswer::Accepted);
        }
        assert_eq!(registrations.attempts.len(), ALLOWANCE);
        assert_eq!(registrations.attempts.first(), Some(&t(20)));
    }
}
