use chrono::TimeZone;
use proptest::prelude::*;

use super::*;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0)
        .single()
        .unwrap_or_default()
}

fn meta_reason(code: &str, class: Class, until: Option<DateTime<Utc>>) -> HealthReason {
    HealthReason {
        code: code.to_owned(),
        class,
        detail: "as Meta said".to_owned(),
        since: at(0),
        until,
    }
}

fn codes_of(health: &Health) -> Vec<&str> {
    health.reasons.iter().map(|r| r.code.as_str()).collect()
}

#[test]
fn an_account_without_trouble_is_healthy() {
    let health = settle(Health::default(), &ProviderState::default(), at(0));
    assert!(health.reasons.is_empty());
    assert_eq!(health.state(at(0)), State::Healthy);
}

#[test]
fn a_pending_set_up_is_a_setup_reason_from_the_start() {
    let state = ProviderState {
        setup_state: SetupState::Pending,
        ..ProviderState::default()
    };
    let health = settle(Health::default(), &state, at(1));
    assert_eq!(codes_of(&health), [codes::SETUP_PENDING]);
    assert_eq!(health.reasons[0].class, Class::Setup);
    assert_eq!(health.reasons[0].since, at(1));
    assert_eq!(health.state(at(1)), State::Unavailable);
}

#[test]
fn a_refused_token_is_a_credentials_reason_that_keeps_its_since() {
    let state = ProviderState {
        reauthorization_required: true,
        reauthorization_reason: Some("the user changed their password".to_owned()),
        setup_state: SetupState::Done,
        ..ProviderState::default()
    };
    let first = settle(Health::default(), &state, at(1));
    assert_eq!(codes_of(&first), [codes::REAUTHORIZATION_REQUIRED]);
    assert_eq!(first.reasons[0].detail, "the user changed their password");
    let again = settle(first.clone(), &state, at(50));
    assert_eq!(again.reasons[0].since, at(1), "still the same trouble");
    assert!(!again.differs_from(&first));

    // A new token clears the flag, and with it the reason.
    let cleared = ProviderState {
        reauthorization_required: false,
        ..state
    };
    let healed = settle(again.clone(), &cleared, at(60));
    assert!(healed.reasons.is_empty());
    assert!(healed.differs_from(&again));
}

#[test]
fn meta_reasons_stay_beside_the_accounts_own() {
    let restricted = meta_reason("account_restricted", Class::Enforcement, Some(at(100)));
    let flagged = meta_reason("quality_flagged", Class::Quality, None);
    let health = Health {
        reasons: vec![restricted.clone(), flagged.clone()],
        checked_at: Some(at(0)),
        ..Health::default()
    };
    let state = ProviderState {
        setup_state: SetupState::Failed,
        setup_error: Some("Meta refused the PIN".to_owned()),
        ..ProviderState::default()
    };
    let settled = settle(health, &state, at(5));
    assert_eq!(
        codes_of(&settled),
        [codes::SETUP_FAILED, "account_restricted", "quality_flagged"]
    );
    assert_eq!(settled.reasons[0].detail, "Meta refused the PIN");
    assert_eq!(settled.checked_at, Some(at(0)));
}

#[test]
fn an_enforcement_past_its_until_counts_no_more() {
    let health = Health {
        reasons: vec![meta_reason(
            "account_restricted",
            Class::Enforcement,
            Some(at(100)),
        )],
        ..Health::default()
    };
    assert_eq!(health.state(at(99)), State::Unavailable);
    assert_eq!(health.state(at(100)), State::Healthy);
}

#[test]
fn health_is_stored_by_class_name_and_read_back() {
    let health = Health {
        reasons: vec![meta_reason("quality_red", Class::Quality, Some(at(9)))],
        checked_at: Some(at(3)),
        ..Health::default()
    };
    let stored = serde_json::to_value(&health).expect("serialises");
    assert_eq!(stored["reasons"][0]["class"], "quality");
    let read: Health = serde_json::from_value(stored).expect("reads back");
    assert_eq!(read, health);
}

fn any_state() -> impl Strategy<Value = ProviderState> {
    let setup = prop_oneof![
        Just(SetupState::NotNeeded),
        Just(SetupState::Pending),
        Just(SetupState::Done),
        Just(SetupState::Failed),
        Just(SetupState::AwaitingNumber),
    ];
    (setup, any::<bool>(), any::<bool>()).prop_map(|(setup_state, reauth, exhausted)| {
        ProviderState {
            setup_state,
            reauthorization_required: reauth,
            refresh_exhausted: exhausted,
            ..ProviderState::default()
        }
    })
}

fn any_class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Credentials),
        Just(Class::Setup),
        Just(Class::Enforcement),
        Just(Class::Quality),
        Just(Class::Configuration),
        Just(Class::Provider),
    ]
}

proptest! {
    /// Settling is a function of the account's state: settling again changes nothing,
    /// the own reasons are exactly what the state says, and Meta's stay.
    #[test]
    fn settling_twice_is_settling_once(
        state in any_state(),
        before in any_state(),
        meta in proptest::collection::vec(any_class(), 0..4),
    ) {
        let meta_reasons: Vec<HealthReason> = meta
            .iter()
            .filter(|class| !matches!(class, Class::Credentials | Class::Setup))
            .enumerate()
            .map(|(i, class)| meta_reason(&format!("meta_{i}"), *class, None))
            .collect();
        let health = settle(
            Health { reasons: meta_reasons.clone(), ..Health::default() },
            &before,
            at(0),
        );
        let once = settle(health, &state, at(10));
        let twice = settle(once.clone(), &state, at(20));
        prop_assert_eq!(&once, &twice);
        let own = once.reasons.iter().filter(|r| matches!(r.class, Class::Credentials | Class::Setup)).count();
        let expected = usize::from(state.reauthorization_required)
            + usize::from(state.refresh_exhausted)
            + usize::from(matches!(state.setup_state, SetupState::Pending | SetupState::Failed | SetupState::AwaitingNumber));
        prop_assert_eq!(own, expected);
        for reason in &meta_reasons {
            prop_assert!(once.reasons.contains(reason));
        }
        let unavailable = expected > 0
            || meta_reasons.iter().any(|r| matches!(r.class, Class::Enforcement | Class::Provider));
        prop_assert_eq!(once.state(at(10)) == State::Unavailable, unavailable);
    }
}

#[test]
fn meta_s_words_set_keep_their_since_and_lift() {
    use crate::domain::account::meta_health::{Word, codes as meta};
    let flag = |said: i64| Word::Set {
        code: meta::QUALITY_FLAGGED,
        class: Class::Quality,
        detail: "flagged".to_owned(),
        until: None,
        at: Some(at(said)),
    };
    let lift = |said: i64| Word::Lift {
        codes: &[meta::QUALITY_FLAGGED],
        at: Some(at(said)),
    };
    let created = at(0);
    let mut health = Health::default();
    apply_words(&mut health, &[flag(1)], created, at(1));
    assert_eq!(codes_of(&health), [meta::QUALITY_FLAGGED]);
    assert_eq!(health.checked_at, Some(at(1)));
    // Said again: the same reason, since when it first held.
    let before = health.clone();
    apply_words(&mut health, &[flag(2)], created, at(5));
    assert_eq!(health.reasons[0].since, at(1));
    assert!(!health.differs_from(&before));
    // A lift, then the flag's older delivery retried: the lift stands.
    apply_words(&mut health, &[lift(3)], created, at(6));
    assert!(health.reasons.is_empty());
    apply_words(&mut health, &[flag(2)], created, at(7));
    assert!(health.reasons.is_empty(), "an older word changes nothing");
    // A word from before the account: said of the id's previous holder.
    let mut young = Health::default();
    apply_words(&mut young, &[flag(1)], at(302), at(400));
    assert!(young.reasons.is_empty());
    // Within Meta's and our clocks' difference of it, it counts.
    apply_words(&mut young, &[flag(1)], at(300), at(400));
    assert_eq!(codes_of(&young), [meta::QUALITY_FLAGGED]);
    // A restriction that already ended says nothing holds.
    let ended = Word::Set {
        code: meta::ACCOUNT_RESTRICTED,
        class: Class::Enforcement,
        detail: String::new(),
        until: Some(at(4)),
        at: None,
    };
    apply_words(&mut health, &[ended], created, at(9));
    assert!(health.reasons.is_empty());
    assert_eq!(health.state(at(9)), State::Healthy);
}

#[test]
fn a_said_again_reason_keeps_its_place() {
    use crate::domain::account::meta_health::{Word, codes as meta};
    let set = |code: &'static str, class| Word::Set {
        code,
        class,
        detail: String::new(),
        until: None,
        at: None,
    };
    let mut health = Health::default();
    let both = [
        set(meta::QUALITY_FLAGGED, Class::Quality),
        set(meta::NAME_REJECTED, Class::Quality),
    ];
    apply_words(&mut health, &both, at(0), at(1));
    let first = health.reasons.clone();
    apply_words(&mut health, &both[..1], at(0), at(2));
    assert_eq!(health.reasons, first, "replaced where it stands");
}

#[test]
fn a_reason_of_an_unknown_class_is_kept_and_written_back() {
    let stored = serde_json::json!({"reasons": [
        {"code": "quality_red", "class": "quality", "detail": "", "since": "2027-01-01T00:00:00Z"},
        {"code": "x", "class": "weather", "detail": "", "since": "2027-01-01T00:00:00Z"}]});
    let health: Health = serde_json::from_value(stored.clone()).expect("reads");
    assert_eq!(codes_of(&health), ["quality_red"]);
    assert_eq!(health.unknown.len(), 1);
    assert_eq!(serde_json::to_value(&health).expect("writes"), stored);
}

#[test]
fn provider_is_set_after_three_failures_and_lifted_after_two_successes() {
    let mut health = Health::default();
    let provider = |health: &Health| {
        health
            .reasons
            .iter()
            .any(|r| r.code == PROVIDER_FAILING && r.class == Class::Provider)
    };
    // Two failures, a success: the count starts over.
    provider_outcome(&mut health, false, "503", at(1));
    provider_outcome(&mut health, false, "503", at(2));
    provider_outcome(&mut health, true, "", at(3));
    assert!(!provider(&health));
    assert_eq!(health.provider_failures, 0);
    // Three in a row: PROVIDER, UNAVAILABLE.
    for second in 4..7 {
        provider_outcome(&mut health, false, "timed out", at(second));
    }
    assert!(provider(&health));
    assert_eq!(health.state(at(7)), State::Unavailable);
    let since = health.reasons[0].since;
    // More failures change nothing of it.
    provider_outcome(&mut health, false, "timed out", at(8));
    assert_eq!(health.reasons.len(), 1);
    assert_eq!(health.reasons[0].since, since);
    // One success is not enough; a failure between starts the successes over.
    provider_outcome(&mut health, true, "", at(9));
    assert!(provider(&health));
    provider_outcome(&mut health, false, "503", at(10));
    provider_outcome(&mut health, true, "", at(11));
    assert!(provider(&health));
    provider_outcome(&mut health, true, "", at(12));
    assert!(!provider(&health), "two successes in a row lift it");
    assert_eq!(health.state(at(12)), State::Healthy);
    // The counts are stored, and read back.
    provider_outcome(&mut health, false, "503", at(13));
    let stored = serde_json::to_value(&health).expect("stored");
    let read: Health = serde_json::from_value(stored).expect("read");
    assert_eq!(read.provider_failures, 1);
}

#[test]
fn a_word_dated_in_the_future_is_taken_as_now_and_pins_nothing() {
    use crate::domain::account::meta_health::{Word, codes as meta};
    let mut health = Health::default();
    // A relay's bad clock: a block said "in 48,000 years".
    let far = DateTime::from_timestamp(1_458_692_752_478, 0);
    let block = Word::Set {
        code: meta::PAGE_BLOCKED,
        class: Class::Enforcement,
        detail: "blocked".to_owned(),
        until: None,
        at: far,
    };
    apply_words(&mut health, &[block], at(0), at(10));
    assert_eq!(codes_of(&health), [meta::PAGE_BLOCKED]);
    // The unblock, said now, lifts it: the block counts as said no later than now.
    let unblock = Word::Lift {
        codes: &[meta::PAGE_BLOCKED],
        at: Some(at(20)),
    };
    apply_words(&mut health, &[unblock], at(0), at(20));
    assert!(health.reasons.is_empty(), "{health:?}");
    // And one heard "later than now" before this fix is no reason to drop a word.
    health
        .heard
        .insert(meta::PAGE_BLOCKED.to_owned(), far.unwrap_or_default());
    let block_again = Word::Set {
        code: meta::PAGE_BLOCKED,
        class: Class::Enforcement,
        detail: "blocked again".to_owned(),
        until: None,
        at: Some(at(30)),
    };
    apply_words(&mut health, &[block_again], at(0), at(30));
    assert_eq!(codes_of(&health), [meta::PAGE_BLOCKED]);
}
