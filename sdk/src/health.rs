//! An account's health, decided: whether it can send, from the reasons it carries. The
//! one decision both sides run: the service derives `AccountHealth.state` and
//! `GetWhatsAppHealth.healthy` with it, and a client reads the same answer from its
//! copy. Pure, and in the SDK without a feature, so the two can never disagree.

use crate::proto;

/// How healthy an account is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Nothing stands against it.
    Healthy,
    /// It can send; something needs attention.
    Degraded,
    /// It cannot send.
    Unavailable,
}

/// What kind of trouble a reason is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Reauthorization required, or the token's refreshes exhausted.
    Credentials,
    /// The set-up at the provider is pending, failed or waits for a number.
    Setup,
    /// Meta restricted, banned or disabled the number or page.
    Enforcement,
    /// Quality YELLOW or RED, flagged, a lowered messaging limit, a rejected name.
    Quality,
    /// Webhooks going elsewhere, a Graph version near its end.
    Configuration,
    /// Meta failing for this account, call after call.
    Provider,
}

impl Class {
    /// What a reason of this class makes of the account while it holds.
    pub fn state(self) -> State {
        match self {
            Class::Credentials | Class::Setup | Class::Enforcement | Class::Provider => {
                State::Unavailable
            }
            Class::Quality | Class::Configuration => State::Degraded,
        }
    }

    pub fn from_proto(class: proto::HealthReasonClass) -> Option<Class> {
        use proto::HealthReasonClass as P;
        match class {
            P::Unspecified => None,
            P::Credentials => Some(Class::Credentials),
            P::Setup => Some(Class::Setup),
            P::Enforcement => Some(Class::Enforcement),
            P::Quality => Some(Class::Quality),
            P::Configuration => Some(Class::Configuration),
            P::Provider => Some(Class::Provider),
        }
    }

    pub fn to_proto(self) -> proto::HealthReasonClass {
        use proto::HealthReasonClass as P;
        match self {
            Class::Credentials => P::Credentials,
            Class::Setup => P::Setup,
            Class::Enforcement => P::Enforcement,
            Class::Quality => P::Quality,
            Class::Configuration => P::Configuration,
            Class::Provider => P::Provider,
        }
    }
}

impl State {
    pub fn to_proto(self) -> proto::HealthState {
        match self {
            State::Healthy => proto::HealthState::Healthy,
            State::Degraded => proto::HealthState::Degraded,
            State::Unavailable => proto::HealthState::Unavailable,
        }
    }
}

/// One reason as the decision reads it: its class, and until when it holds (seconds
/// since the epoch; `None`: until it is lifted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason {
    pub class: Class,
    pub until: Option<i64>,
}

impl Reason {
    /// Whether the reason still holds at `now` (seconds since the epoch): one whose
    /// `until` has passed is lifted by time alone.
    pub fn holds_at(&self, now: i64) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// The account's state at `now`: the worst that its reasons still holding make of it;
/// healthy without any.
pub fn state_of(reasons: impl IntoIterator<Item = Reason>, now: i64) -> State {
    reasons
        .into_iter()
        .filter(|reason| reason.holds_at(now))
        .map(|reason| reason.class.state())
        .max()
        .unwrap_or(State::Healthy)
}

/// Which account a scope sends from: `None` for its default, or the index of the
/// fallback to serve instead. The default is served unless it is UNAVAILABLE for a
/// CREDENTIALS, SETUP or PROVIDER reason; then the first fallback, in order, that is
/// not UNAVAILABLE. A default Meta holds back (an ENFORCEMENT reason) is never stepped
/// over: moving traffic to another number to get around a restriction Meta imposed
/// breaks Meta's policy, so the default is served with its health and the caller
/// decides. With no usable fallback, the default.
pub fn serving<R, F>(default: R, fallbacks: F, now: i64) -> Option<usize>
where
    R: IntoIterator<Item = Reason>,
    F: IntoIterator,
    F::Item: IntoIterator<Item = Reason>,
{
    let holding: Vec<Reason> = default
        .into_iter()
        .filter(|reason| reason.holds_at(now))
        .collect();
    if state_of(holding.iter().copied(), now) != State::Unavailable
        || holding
            .iter()
            .any(|reason| reason.class == Class::Enforcement)
        || !holding.iter().any(|reason| {
            matches!(
                reason.class,
                Class::Credentials | Class::Setup | Class::Provider
            )
        })
    {
        return None;
    }
    fallbacks
        .into_iter()
        .position(|reasons| state_of(reasons, now) != State::Unavailable)
}

/// Whether a listed fallback may ever be served in the default's place: not when it is
/// the default itself, nor when another account took its provider id (ownership LOST:
/// its webhooks go to the taker, it is no one to send from).
pub fn may_stand_in(is_the_default: bool, ownership_lost: bool) -> bool {
    !is_the_default && !ownership_lost
}

/// How [`serving`] reads a fallback that may not stand in: unavailable for good.
pub const NEVER_SERVED: Reason = Reason {
    class: Class::Setup,
    until: None,
};

/// [`serving`] over accounts as the API shows them: what a client's copy answers, the
/// same decision the service makes of its records.
pub fn serving_accounts<'a>(
    default: &proto::Account,
    fallbacks: impl IntoIterator<Item = &'a proto::Account>,
    now: i64,
) -> Option<usize> {
    let lost = proto::Ownership::Lost as i32;
    serving(
        reasons_of_account(default),
        fallbacks.into_iter().map(|fallback| {
            let stands_in = may_stand_in(fallback.id == default.id, fallback.ownership == lost);
            reasons_of_account(fallback).chain((!stands_in).then_some(NEVER_SERVED))
        }),
        now,
    )
}

fn reasons_of_account(account: &proto::Account) -> impl Iterator<Item = Reason> + '_ {
    account.health.as_ref().into_iter().flat_map(reasons_of)
}

/// The reasons of an `AccountHealth` as the decision reads them (a reason of a class
/// this SDK does not know is passed over: a newer server's, read by an older client).
pub fn reasons_of(health: &proto::AccountHealth) -> impl Iterator<Item = Reason> + '_ {
    health.reasons.iter().filter_map(|reason| {
        let class = proto::HealthReasonClass::try_from(reason.class).ok()?;
        Some(Reason {
            class: Class::from_proto(class)?,
            until: reason.until.as_ref().map(|until| until.seconds),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn reason(class: Class) -> Reason {
        Reason { class, until: None }
    }

    const ALL: [Class; 6] = [
        Class::Credentials,
        Class::Setup,
        Class::Enforcement,
        Class::Quality,
        Class::Configuration,
        Class::Provider,
    ];

    #[test]
    fn no_reason_is_healthy() {
        assert_eq!(state_of([], NOW), State::Healthy);
    }

    #[test]
    fn every_class_has_its_state() {
        let expected = [
            (Class::Credentials, State::Unavailable),
            (Class::Setup, State::Unavailable),
            (Class::Enforcement, State::Unavailable),
            (Class::Quality, State::Degraded),
            (Class::Configuration, State::Degraded),
            (Class::Provider, State::Unavailable),
        ];
        for (class, state) in expected {
            assert_eq!(state_of([reason(class)], NOW), state, "{class:?}");
        }
    }

    #[test]
    fn the_worst_reason_decides() {
        let reasons = [reason(Class::Quality), reason(Class::Credentials)];
        assert_eq!(state_of(reasons, NOW), State::Unavailable);
        let reasons = [reason(Class::Quality), reason(Class::Configuration)];
        assert_eq!(state_of(reasons, NOW), State::Degraded);
    }

    #[test]
    fn a_reason_past_its_until_is_lifted() {
        let lifted = Reason {
            class: Class::Enforcement,
            until: Some(NOW),
        };
        assert_eq!(state_of([lifted], NOW), State::Healthy);
        let holding = Reason {
            until: Some(NOW + 1),
            ..lifted
        };
        assert_eq!(state_of([holding], NOW), State::Unavailable);
    }

    #[test]
    fn the_state_never_gets_better_with_more_reasons() {
        // Every pair and triple of classes, in both orders: adding a reason never makes
        // an account healthier, and order does not matter.
        for a in ALL {
            for b in ALL {
                let one = state_of([reason(a)], NOW);
                let two = state_of([reason(a), reason(b)], NOW);
                assert!(two >= one, "{a:?} + {b:?}");
                assert_eq!(two, state_of([reason(b), reason(a)], NOW));
                for c in ALL {
                    let three = state_of([reason(a), reason(b), reason(c)], NOW);
                    assert!(three >= two, "{a:?} + {b:?} + {c:?}");
                }
            }
        }
    }

    fn no_reasons() -> Vec<Reason> {
        Vec::new()
    }

    #[test]
    fn a_default_that_can_send_is_served() {
        for reasons in [
            no_reasons(),
            vec![reason(Class::Quality)],
            vec![reason(Class::Configuration)],
        ] {
            assert_eq!(serving(reasons, [no_reasons()], NOW), None);
        }
    }

    #[test]
    fn credentials_setup_and_provider_step_over_to_the_first_usable_fallback() {
        for class in [Class::Credentials, Class::Setup, Class::Provider] {
            let fallbacks = [
                vec![reason(Class::Credentials)],
                vec![reason(Class::Quality)],
                no_reasons(),
            ];
            // In list order: the second is DEGRADED but can send.
            assert_eq!(
                serving([reason(class)], fallbacks, NOW),
                Some(1),
                "{class:?}"
            );
        }
    }

    #[test]
    fn enforcement_never_falls_back() {
        assert_eq!(
            serving([reason(Class::Enforcement)], [no_reasons()], NOW),
            None
        );
        // Not even beside a reason that would.
        let both = [reason(Class::Enforcement), reason(Class::Credentials)];
        assert_eq!(serving(both, [no_reasons()], NOW), None);
        // An enforcement that has ended no longer holds the default back.
        let ended = Reason {
            class: Class::Enforcement,
            until: Some(NOW),
        };
        assert_eq!(
            serving([ended, reason(Class::Setup)], [no_reasons()], NOW),
            Some(0)
        );
    }

    #[test]
    fn with_no_usable_fallback_the_default_is_served() {
        let unusable = [vec![reason(Class::Setup)], vec![reason(Class::Enforcement)]];
        assert_eq!(serving([reason(Class::Credentials)], unusable, NOW), None);
        assert_eq!(
            serving([reason(Class::Credentials)], Vec::<Vec<Reason>>::new(), NOW),
            None
        );
    }

    #[test]
    fn classes_round_trip_through_the_wire() {
        for class in ALL {
            assert_eq!(Class::from_proto(class.to_proto()), Some(class));
        }
        assert_eq!(
            Class::from_proto(proto::HealthReasonClass::Unspecified),
            None
        );
    }

    #[test]
    fn an_unknown_class_on_the_wire_is_passed_over() {
        let health = proto::AccountHealth {
            state: proto::HealthState::Degraded as i32,
            reasons: vec![
                proto::HealthReason {
                    class: 99,
                    ..Default::default()
                },
                proto::HealthReason {
                    class: proto::HealthReasonClass::Quality as i32,
                    ..Default::default()
                },
            ],
            checked_at: None,
        };
        assert_eq!(state_of(reasons_of(&health), NOW), State::Degraded);
    }
}
