//! The copy's answers without a server: which scope answers, which list goes with it,
//! and what `sender` serves from it.

use super::*;
use proto::{AccountHealth, Channel, HealthReason, HealthReasonClass};

const NOW: i64 = 1_800_000_000;

fn account(id: &str, division: Option<&str>, classes: &[HealthReasonClass]) -> proto::Account {
    proto::Account {
        id: id.to_owned(),
        channel: Channel::Whatsapp as i32,
        division_id: division.map(str::to_owned),
        health: Some(AccountHealth {
            reasons: classes
                .iter()
                .map(|class| HealthReason {
                    code: "test".to_owned(),
                    class: *class as i32,
                    ..HealthReason::default()
                })
                .collect(),
            ..AccountHealth::default()
        }),
        ..proto::Account::default()
    }
}

fn list(division: Option<&str>, accounts: Vec<proto::Account>) -> proto::ScopeFallbacks {
    proto::ScopeFallbacks {
        channel: Channel::Whatsapp as i32,
        division_id: division.map(str::to_owned),
        accounts,
    }
}

fn served(map: &Map, division: Option<&str>) -> Option<(String, bool)> {
    map.sender(Channel::Whatsapp, division, NOW)
        .map(|sender| (sender.account.id.clone(), sender.served_by_fallback))
}

const REVOKED: &[HealthReasonClass] = &[HealthReasonClass::Credentials];

/// A workspace default that cannot send, a workspace list and a division list.
fn copy(division_default: bool) -> Map {
    let mut map = Map::default();
    insert(&mut map, account("ws-default", None, REVOKED));
    if division_default {
        insert(&mut map, account("sales-default", Some("sales"), REVOKED));
    }
    map.set_fallbacks(list(None, vec![account("ws-fallback", None, &[])]));
    map.set_fallbacks(list(
        Some("sales"),
        vec![account("sales-fallback", Some("sales"), &[])],
    ));
    map
}

#[test]
fn a_division_with_its_own_default_is_served_from_its_own_list() {
    let map = copy(true);
    assert_eq!(
        served(&map, Some("sales")),
        Some(("sales-fallback".into(), true))
    );
    assert_eq!(served(&map, None), Some(("ws-fallback".into(), true)));
}

#[test]
fn a_division_without_a_default_is_served_from_the_workspace_list() {
    // The division's list goes with the division's default: without one, the
    // workspace's default answers, and so does the workspace's list.
    let map = copy(false);
    assert_eq!(
        served(&map, Some("sales")),
        Some(("ws-fallback".into(), true))
    );
    assert_eq!(
        served(&map, Some("support")),
        Some(("ws-fallback".into(), true))
    );
}

#[test]
fn the_first_usable_fallback_in_order_is_served() {
    let mut map = Map::default();
    insert(
        &mut map,
        account("default", None, &[HealthReasonClass::Setup]),
    );
    map.set_fallbacks(list(
        None,
        vec![
            account("down", None, &[HealthReasonClass::Provider]),
            account("flagged", None, &[HealthReasonClass::Quality]),
            account("fine", None, &[]),
        ],
    ));
    assert_eq!(served(&map, None), Some(("flagged".into(), true)));
}

#[test]
fn enforcement_is_served_as_itself() {
    let mut map = Map::default();
    let restricted = &[
        HealthReasonClass::Enforcement,
        HealthReasonClass::Credentials,
    ];
    insert(&mut map, account("default", None, restricted));
    map.set_fallbacks(list(None, vec![account("fine", None, &[])]));
    assert_eq!(served(&map, None), Some(("default".into(), false)));
    assert_eq!(
        map.sender(Channel::Whatsapp, None, NOW)
            .map(|sender| sender.account.health.clone()),
        Some(map.defaults[&(Channel::Whatsapp as i32)][""].health.clone())
    );
}

#[test]
fn a_fallback_whose_id_was_taken_or_that_is_the_default_is_never_served() {
    let mut map = Map::default();
    insert(&mut map, account("default", None, REVOKED));
    let mut lost = account("lost", None, &[]);
    lost.ownership = proto::Ownership::Lost as i32;
    map.set_fallbacks(list(None, vec![account("default", None, &[]), lost]));
    assert_eq!(served(&map, None), Some(("default".into(), false)));
}

#[test]
fn nothing_usable_serves_the_default_and_no_default_serves_nothing() {
    let mut map = Map::default();
    assert_eq!(served(&map, None), None);
    insert(&mut map, account("default", None, REVOKED));
    map.set_fallbacks(list(None, vec![account("also-revoked", None, REVOKED)]));
    assert_eq!(served(&map, None), Some(("default".into(), false)));
    // An emptied list is no list.
    map.set_fallbacks(list(None, Vec::new()));
    assert!(map.fallbacks_of(Channel::Whatsapp, "").is_empty());
}

#[test]
fn a_reason_that_ran_out_no_longer_steps_over() {
    let mut map = Map::default();
    let mut default = account("default", None, &[HealthReasonClass::Provider]);
    if let Some(health) = default.health.as_mut() {
        health.reasons[0].until = Some(prost_types::Timestamp {
            seconds: NOW,
            nanos: 0,
        });
    }
    insert(&mut map, default);
    map.set_fallbacks(list(None, vec![account("fine", None, &[])]));
    assert_eq!(
        map.sender(Channel::Whatsapp, None, NOW - 1)
            .map(|s| s.served_by_fallback),
        Some(true)
    );
    assert_eq!(served(&map, None), Some(("default".into(), false)));
}
