use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::domain::RecordKind;
use crate::domain::account::Ownership;
use crate::domain::testing::{account, admin, at, cloud_account, division_admin, doc};

fn saved<D: std::fmt::Debug>(change: Change<Account, D>) -> Account {
    match change {
        Change::Save(account, _) => *account,
        other => panic!("expected a save, got {other:?}"),
    }
}

fn connected(channel: Channel, key: &str, config: serde_json::Value) -> Connected {
    Connected {
        channel,
        account_key: key.into(),
        display_name: Some("Acme Page".into()),
        division_id: None,
        config: doc(config),
        token_expires_at: Some(at(100)),
        token_source: TokenSource::FacebookLogin,
        coexistence: None,
    }
}

#[test]
fn a_set_up_that_succeeded_clears_the_error_and_a_rejected_token() {
    let mut current = cloud_account();
    current.provider_state.setup_state = SetupState::Failed;
    current.provider_state.setup_error = Some("refused".into());
    current.provider_state.reauthorization_required = true;
    let next = saved(record_state(
        &admin(),
        &current,
        StateChange::SetupSucceeded {
            provider_id: "1555@2666".into(),
            display_phone_number: Some("+1 555-0100".into()),
            takes_id: true,
        },
        at(5),
    ));
    assert_eq!(next.provider_state.setup_state, SetupState::Done);
    assert_eq!(next.provider_state.setup_error, None);
    assert_eq!(
        next.provider_state.display_phone_number.as_deref(),
        Some("+1 555-0100")
    );
    assert!(!next.provider_state.reauthorization_required);
    assert_eq!(
        next.provider_state.ownership,
        Ownership::Confirmed,
        "the number is confirmed"
    );
    assert_eq!(next.revision, current.revision + 1);
}

/// A set-up that ran for one number confirms nothing once the account has another.
#[test]
fn a_set_up_confirms_only_the_number_it_ran_for() {
    let mut current = cloud_account();
    current.provider_state.setup_state = SetupState::Pending;
    // Another number, or the same number of another WABA: nothing is recorded.
    for ran_for in ["1999@2666", "1555@2667", "1555"] {
        let change = StateChange::SetupSucceeded {
            provider_id: ran_for.into(),
            display_phone_number: None,
            takes_id: true,
        };
        assert!(
            matches!(
                record_state(&admin(), &current, change, at(5)),
                Change::Keep
            ),
            "{ran_for}"
        );
    }
    let mut confirmed = current.clone();
    confirmed.provider_state.ownership = Ownership::Confirmed;
    for change in [
        StateChange::TokenRejected {
            reason: "Meta error 190".into(),
            token: None,
        },
        StateChange::SetupFailed {
            reason: "refused".into(),
            token_rejected: false,
            retry_after: None,
        },
    ] {
        let next = saved(record_state(&admin(), &confirmed, change, at(6)));
        assert_eq!(
            next.provider_state.ownership,
            Ownership::Confirmed,
            "being flagged or failing a set-up gives no number up"
        );
    }
}

/// Meta's word about an id nobody owns confirms an unconfirmed claim, never a lost
/// one, and never one of another id; a taking makes only the id's confirmed owner LOST.
#[test]
fn vouching_confirms_only_unconfirmed_claims_of_the_id_and_losing_needs_a_confirmation() {
    let account = cloud_account();
    let id = crate::domain::account::provider_id(account.channel, &account.config)
        .expect("an id")
        .to_owned();
    let key = crate::domain::account::ownership::claim_key(&account).expect("a key");
    assert_eq!(key, "1555@2666");
    let vouch = |account: &Account, provider_id: &str| {
        let change = StateChange::OwnershipVouched {
            provider_id: provider_id.to_owned(),
        };
        match record_state(&admin(), account, change, at(5)) {
            Change::Save(next, _) => next.provider_state.ownership,
            _ => account.provider_state.ownership,
        }
    };
    assert_eq!(vouch(&account, &key), Ownership::Confirmed);
    assert_eq!(vouch(&account, "1999@2666"), Ownership::Unconfirmed);
    assert_eq!(
        vouch(&account, "1555@2667"),
        Ownership::Unconfirmed,
        "vouched for under another WABA"
    );
    let mut lost = account.clone();
    lost.provider_state.ownership = Ownership::Lost;
    assert_eq!(
        vouch(&lost, &id),
        Ownership::Lost,
        "only a taking ends LOST"
    );
    let lose = |account: &Account, provider_id: &str| {
        let change = StateChange::OwnershipLost {
            provider_id: provider_id.to_owned(),
        };
        match record_state(&admin(), account, change, at(5)) {
            Change::Save(next, _) => next.provider_state.ownership,
            _ => account.provider_state.ownership,
        }
    };
    let mut owner = account.clone();
    owner.provider_state.ownership = Ownership::Confirmed;
    assert_eq!(lose(&owner, &id), Ownership::Lost);
    assert_eq!(lose(&owner, "1999"), Ownership::Confirmed);
    assert_eq!(lose(&account, &id), Ownership::Unconfirmed);
    // A set-up that succeeds again ends LOST: Meta took the token for the callback.
    let mut pending = lost.clone();
    pending.provider_state.setup_state = SetupState::Pending;
    let next = saved(record_state(
        &admin(),
        &pending,
        StateChange::SetupSucceeded {
            provider_id: key.clone(),
            display_phone_number: None,
            takes_id: true,
        },
        at(6),
    ));
    assert_eq!(next.provider_state.ownership, Ownership::Confirmed);
}

#[test]
fn a_failed_set_up_records_why_and_whether_the_token_was_rejected() {
    let failed = |token_rejected| StateChange::SetupFailed {
        reason: "Meta refused registering the phone number".into(),
        token_rejected,
        retry_after: None,
    };
    let next = saved(record_state(
        &admin(),
        &cloud_account(),
        failed(true),
        at(5),
    ));
    assert_eq!(next.provider_state.setup_state, SetupState::Failed);
    assert!(
        next.provider_state
            .setup_error
            .as_deref()
            .is_some_and(|e| e.contains("refused"))
    );
    assert!(next.provider_state.reauthorization_required);
    let next = saved(record_state(
        &admin(),
        &cloud_account(),
        failed(false),
        at(5),
    ));
    assert!(!next.provider_state.reauthorization_required);
}

#[test]
fn a_new_token_is_stored_with_its_expiry_and_trusted_again() {
    let mut current = account(Channel::Instagram, "17841");
    current.provider_state.reauthorization_required = true;
    let change = StateChange::NewToken {
        key: "access_token",
        token: "IGQ-new".into(),
        expires_at: Some(at(60)),
        replaces: None,
    };
    let next = saved(record_state(&admin(), &current, change, at(5)));
    assert_eq!(next.config["access_token"], json!("IGQ-new"));
    assert_eq!(next.provider_state.token_expires_at, Some(at(60)));
    assert!(!next.provider_state.reauthorization_required);
}

#[test]
fn what_changes_nothing_is_kept() {
    let mut current = account(Channel::Messenger, "1");
    current.provider_state.reauthorization_required = true;
    current.provider_state.reauthorization_reason = Some("Meta error 190".into());
    assert!(matches!(
        record_state(
            &admin(),
            &current,
            StateChange::TokenRejected {
                reason: "Meta error 190".into(),
                token: None,
            },
            at(5)
        ),
        Change::Keep
    ));
    let next = saved(record_state(
        &admin(),
        &account(Channel::Messenger, "1"),
        StateChange::TokenRejected {
            reason: "Meta error 190".into(),
            token: None,
        },
        at(5),
    ));
    assert!(next.provider_state.reauthorization_required);
}

#[test]
fn reconnecting_merges_metas_config_and_runs_a_cloud_set_up_again() {
    let mut current = cloud_account();
    current.provider_state.setup_error = Some("old refusal".into());
    current.provider_state.reauthorization_required = true;
    let same_token = connected(Channel::Whatsapp, "wa-1555", json!({"waba_id": "2666"}));
    let next = saved(reconnect(&admin(), &current, same_token, at(5)).expect("ok"));
    assert_eq!(next.provider_state.setup_state, SetupState::Pending);
    assert_eq!(next.provider_state.setup_error, None);
    assert!(!next.provider_state.reauthorization_required);
    assert!(
        next.provider_state.setup_registered,
        "the same token keeps the registration"
    );
    assert_eq!(next.display_name, "Acme Page");
    assert_eq!(next.provider_state.token_expires_at, Some(at(100)));
}

#[test]
fn reconnecting_with_a_new_token_registers_the_number_again() {
    let new_token = connected(
        Channel::Whatsapp,
        "wa-1555",
        json!({"access_token": "EAAG-new"}),
    );
    let next = saved(reconnect(&admin(), &cloud_account(), new_token, at(5)).expect("ok"));
    assert!(!next.provider_state.setup_registered);
    assert_eq!(next.config["access_token"], json!("EAAG-new"));
}

#[test]
fn reconnecting_a_page_keeps_its_set_up_state() {
    let mut page = account(Channel::Messenger, "1001");
    page.provider_state.setup_error = Some("kept".into());
    let again = connected(
        Channel::Messenger,
        "1001",
        json!({"page_access_token": "EAAP"}),
    );
    let next = saved(reconnect(&admin(), &page, again, at(5)).expect("ok"));
    assert_eq!(next.provider_state.setup_state, SetupState::NotNeeded);
    assert_eq!(next.provider_state.setup_error.as_deref(), Some("kept"));
}

#[test]
fn reconnecting_needs_a_writer_of_the_accounts_division() {
    let again = connected(Channel::Messenger, "1001", json!({}));
    assert!(matches!(
        reconnect(
            &division_admin("sales"),
            &account(Channel::Messenger, "1001"),
            again,
            at(5)
        ),
        Err(Error::PermissionDenied(_))
    ));
}

#[test]
fn a_first_connected_account_is_its_scopes_default_unless_there_is_one() {
    let page = || {
        connected(
            Channel::Messenger,
            "1001",
            json!({"page_id": "1001", "page_access_token": "EAAP"}),
        )
    };
    let (first, event) = connected_account(&admin(), page(), false, at(5)).expect("ok");
    assert!(first.is_default && first.is_active);
    assert_eq!(
        first.provider_state.ownership,
        Ownership::Confirmed,
        "Meta named the page the token acts for"
    );
    assert_eq!(first.revision, 1);
    assert_eq!(first.display_name, "Acme Page");
    assert_eq!(event.record_kind, RecordKind::Account);
    let (second, _) = connected_account(&admin(), page(), true, at(5)).expect("ok");
    assert!(!second.is_default);
    assert_ne!(first.id, second.id);
    assert_ne!(first.verify_token, second.verify_token);
}

#[test]
fn a_connected_cloud_number_gets_a_pin_and_a_pending_set_up() {
    let number = connected(
        Channel::Whatsapp,
        "wa-1555",
        json!({"phone_number_id": "1555", "waba_id": "2666", "access_token": "EAAG"}),
    );
    let (account, _) = connected_account(&admin(), number, false, at(5)).expect("ok");
    assert_eq!(account.provider_state.setup_state, SetupState::Pending);
    assert!(account.config.contains_key("pin"));
    // The client chose the number: only a set-up Meta accepted for it confirms it.
    assert_eq!(account.provider_state.ownership, Ownership::Unconfirmed);
    let mut scoped = connected(Channel::Messenger, "1001", json!({}));
    scoped.division_id = None;
    assert!(matches!(
        connected_account(&division_admin("sales"), scoped, false, at(5)),
        Err(Error::PermissionDenied(_))
    ));
}

#[test]
fn an_oauth_request_needs_a_code_and_an_absolute_redirect() {
    let mut violations = Violations::new();
    check_oauth_request(
        "AQD-code",
        "https://app.acme.test/callback",
        &mut violations,
    );
    assert!(violations.is_empty());
    check_oauth_request(" ", "/callback", &mut violations);
    check_oauth_request(
        &"c".repeat(2049),
        "https://app.acme.test/cb",
        &mut violations,
    );
    let fields: Vec<_> = violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect();
    assert_eq!(fields.len(), 3, "{fields:?}");
    assert_eq!(fields[0].0, "code");
    assert_eq!(fields[1].0, "redirect_uri");
    assert!(fields[2].1.contains("2048"));
}

#[test]
fn extreme_expiries_give_no_expiry() {
    assert_eq!(token_expiry(Some(i64::MAX), at(0)), None);
    assert_eq!(token_expiry(Some(0), at(0)), None);
    assert_eq!(token_expiry(Some(-5), at(0)), None);
    assert_eq!(token_expiry(None, at(0)), None);
    assert_eq!(token_expiry(Some(60), at(0)), Some(at(60)));
}

proptest! {
    /// Whatever Meta answers for `expires_in`, the expiry is computed without a panic:
    /// in the future, or none.
    #[test]
    fn any_expires_in_gives_a_future_expiry_or_none(seconds in any::<i64>()) {
        match token_expiry(Some(seconds), at(0)) {
            Some(when) => prop_assert!(seconds > 0 && when > at(0)),
            None => prop_assert!(seconds <= 0 || seconds > 365 * 86_400 * 1_000),
        }
    }
}

#[test]
fn refreshes_failing_in_a_row_exhaust_the_token_until_a_new_one_is_stored() {
    let mut current = account(Channel::Instagram, "ig");
    current
        .config
        .insert("access_token".into(), serde_json::json!("IGQ-old"));
    for failure in 1..=3 {
        current = saved(record_state(
            &admin(),
            &current,
            StateChange::RefreshFailed {
                token: "IGQ-old".into(),
                max: 3,
            },
            at(failure),
        ));
        assert_eq!(current.provider_state.refresh_failures, failure as i32);
        assert_eq!(current.provider_state.refresh_exhausted, failure == 3);
    }
    let renewed = saved(record_state(
        &admin(),
        &current,
        StateChange::NewToken {
            key: "access_token",
            token: "IGQ-new".into(),
            expires_at: Some(at(100)),
            replaces: None,
        },
        at(9),
    ));
    assert_eq!(renewed.provider_state.refresh_failures, 0);
    assert!(!renewed.provider_state.refresh_exhausted);
    assert_eq!(renewed.provider_state.token_refreshed_at, Some(at(9)));
}

#[test]
fn a_checked_token_records_its_expiries_and_what_it_lacks() {
    let mut current = account(Channel::Messenger, "p");
    current.config.insert(
        "page_access_token".into(),
        serde_json::json!("EAAP-checked"),
    );
    let checked = |missing: Vec<&'static str>| {
        saved(record_state(
            &admin(),
            &current,
            StateChange::TokenChecked {
                token: "EAAP-checked".into(),
                expires_at: Some(at(0) + chrono::Duration::days(3)),
                data_access_expires_at: Some(at(0) + chrono::Duration::days(90)),
                missing_scopes: missing,
                thresholds: vec![7, 1],
            },
            at(0),
        ))
    };
    let fine = checked(Vec::new());
    assert_eq!(fine.provider_state.token_checked_at, Some(at(0)));
    assert_eq!(fine.provider_state.token_warned_days, Some(7));
    assert!(!fine.provider_state.reauthorization_required);
    let lacking = checked(vec!["pages_messaging"]);
    assert!(lacking.provider_state.reauthorization_required);
    assert!(
        lacking
            .provider_state
            .reauthorization_reason
            .as_deref()
            .is_some_and(|r| r.contains("pages_messaging"))
    );
}

/// What a check or a refresh learnt of one token lands on that token only: once the
/// account has another, it changes nothing.
#[test]
fn news_of_an_old_token_does_not_touch_the_new_one() {
    let mut current = account(Channel::Messenger, "p");
    current
        .config
        .insert("page_access_token".into(), serde_json::json!("EAAP-new"));
    for change in [
        StateChange::TokenRejected {
            reason: "invalid".into(),
            token: Some("EAAP-old".into()),
        },
        StateChange::RefreshFailed {
            token: "EAAP-old".into(),
            max: 1,
        },
        StateChange::TokenChecked {
            token: "EAAP-old".into(),
            expires_at: Some(at(5)),
            data_access_expires_at: None,
            missing_scopes: Vec::new(),
            thresholds: vec![7],
        },
    ] {
        assert!(matches!(
            record_state(&admin(), &current, change, at(6)),
            Change::Keep
        ));
    }
    // A check that learns nothing new writes nothing.
    let same = StateChange::TokenChecked {
        token: "EAAP-new".into(),
        expires_at: None,
        data_access_expires_at: None,
        missing_scopes: Vec::new(),
        thresholds: vec![7],
    };
    assert!(matches!(
        record_state(&admin(), &current, same, at(7)),
        Change::Keep
    ));
}
