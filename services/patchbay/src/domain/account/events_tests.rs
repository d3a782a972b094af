use super::*;
use crate::domain::testing::{account, at};
use crate::domain::{Channel, SetupState};

fn kinds(before: Option<&Account>, after: Option<&Account>) -> Vec<AccountEventKind> {
    account_events(before, after)
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[test]
fn every_kind_round_trips_through_its_name() {
    for kind in AccountEventKind::ALL {
        assert_eq!(AccountEventKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(AccountEventKind::parse("exploded"), None);
}

#[test]
fn a_new_account_is_created_and_a_gone_one_deleted() {
    use AccountEventKind::*;
    let mut created = account(Channel::Sms, "s1");
    assert_eq!(kinds(None, Some(&created)), [Created]);
    created.is_default = true;
    assert_eq!(kinds(None, Some(&created)), [Created, DefaultChanged]);
    assert_eq!(kinds(Some(&created), None), [Deleted]);
    assert!(kinds(None, None).is_empty());
}

#[test]
fn a_change_is_named_by_what_changed() {
    use AccountEventKind::*;
    let before = account(Channel::Whatsapp, "wa-1");
    let mut renamed = before.clone();
    renamed.display_name = "Other".into();
    assert_eq!(kinds(Some(&before), Some(&renamed)), [Updated]);
    let mut default = before.clone();
    default.is_default = true;
    assert_eq!(kinds(Some(&before), Some(&default)), [DefaultChanged]);
    let mut failed = before.clone();
    failed.provider_state.setup_state = SetupState::Failed;
    failed.provider_state.setup_error = Some("Meta refused registering".into());
    let events = account_events(Some(&before), Some(&failed));
    assert_eq!(events[0].kind, SetupFailed);
    assert_eq!(
        events[0].reason.as_deref(),
        Some("Meta refused registering")
    );
    let mut done = failed.clone();
    done.provider_state.setup_state = SetupState::Done;
    assert_eq!(kinds(Some(&failed), Some(&done)), [SetupSucceeded]);
    // Nothing changed, nothing said.
    assert!(kinds(Some(&before), Some(&before)).is_empty());
}

#[test]
fn token_trouble_and_its_end_are_events() {
    use AccountEventKind::*;
    let before = account(Channel::Instagram, "ig");
    let mut refused = before.clone();
    refused.provider_state.reauthorization_required = true;
    refused.provider_state.reauthorization_reason = Some("Meta error 190".into());
    let events = account_events(Some(&before), Some(&refused));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, ReauthorizationRequired);
    assert_eq!(events[0].reason.as_deref(), Some("Meta error 190"));
    let mut new_token = refused.clone();
    new_token
        .config
        .insert("access_token".into(), "IGQ-new".into());
    new_token.provider_state = new_token.provider_state.with_new_token();
    assert_eq!(
        kinds(Some(&refused), Some(&new_token)),
        [Updated, Reauthorized]
    );
    // The refresher's new token is a refresh, not an update.
    let mut refreshed = before.clone();
    refreshed
        .config
        .insert("access_token".into(), "IGQ-fresh".into());
    refreshed.provider_state.token_refreshed_at = Some(at(9));
    assert_eq!(kinds(Some(&before), Some(&refreshed)), [TokenRefreshed]);
}

#[test]
fn each_expiry_threshold_is_announced_once() {
    use AccountEventKind::*;
    let before = account(Channel::Messenger, "p");
    let mut week = before.clone();
    week.provider_state.token_warned_days = Some(7);
    assert_eq!(kinds(Some(&before), Some(&week)), [TokenExpiring]);
    assert!(kinds(Some(&week), Some(&week)).is_empty());
    let mut day = week.clone();
    day.provider_state.token_warned_days = Some(1);
    assert_eq!(kinds(Some(&week), Some(&day)), [TokenExpiring]);
    let mut exhausted = before.clone();
    exhausted.provider_state.refresh_failures = 5;
    exhausted.provider_state.refresh_exhausted = true;
    let events = account_events(Some(&before), Some(&exhausted));
    assert_eq!(events[0].kind, RefreshExhausted);
    assert!(events[0].reason.as_deref().is_some_and(|r| r.contains('5')));
}
