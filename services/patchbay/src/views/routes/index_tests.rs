use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::*;

fn entry(
    workspace: &str,
    division: Option<&str>,
    page: Option<u128>,
    confirmed: bool,
) -> RouteEntry {
    RouteEntry {
        account_id: Uuid::new_v4(),
        route: Uuid::new_v4(),
        workspace_id: Arc::from(workspace),
        division_id: division.map(Arc::from),
        channel: Channel::Messenger,
        account_key: format!("page-{}", page.unwrap_or_default()).into(),
        provider_id: page,
        claim_confirmed: confirmed,
        waba_id: None,
        display_number: None,
        app_secret: Some(SecretString::from("app-secret-1234".to_owned())),
        auth_token: None,
        shared_key: None,
    }
}

#[test]
fn a_slot_stays_small() {
    // What a million accounts cost beyond their texts: keep it in view.
    assert!(
        std::mem::size_of::<Option<Slot>>() <= 96,
        "{}",
        std::mem::size_of::<Option<Slot>>()
    );
}

#[test]
fn an_entry_comes_back_as_it_was_put_secrets_included() {
    let mut index = RouteIndex::default();
    let mut twilio = entry("ws-a", Some("d1"), None, false);
    twilio.channel = Channel::Sms;
    twilio.app_secret = None;
    twilio.auth_token = Some(SecretString::from("twilio-token-ü".to_owned()));
    let meta = entry("ws-a", None, Some(u128::MAX), true);
    let (twilio_route, meta_route) = (twilio.route, meta.route);
    let expected = [twilio.recipient(), meta.recipient()];
    let copies = [clone(&twilio), clone(&meta)];
    index.put(twilio.account_id, Some(twilio));
    index.put(meta.account_id, Some(meta));
    let got = index.by_route(twilio_route).expect("twilio");
    assert!(got == copies[0], "{got:?}");
    assert_eq!(
        got.auth_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .as_deref(),
        Some("twilio-token-ü")
    );
    assert!(index.by_route(meta_route).expect("meta") == copies[1]);
    match index.owner(Channel::Messenger, u128::MAX) {
        Owner::One(owner) => assert_eq!(owner, expected[1]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        index.owner(Channel::Instagram, u128::MAX),
        Owner::Nobody
    ));
    assert_eq!(expected[0].division_id.as_deref(), Some("d1"));
}

fn clone(entry: &RouteEntry) -> RouteEntry {
    let secret = |s: &Option<SecretString>| {
        s.as_ref()
            .map(|s| SecretString::from(s.expose_secret().to_owned()))
    };
    RouteEntry {
        account_id: entry.account_id,
        route: entry.route,
        workspace_id: entry.workspace_id.clone(),
        division_id: entry.division_id.clone(),
        channel: entry.channel,
        account_key: entry.account_key.clone(),
        provider_id: entry.provider_id,
        claim_confirmed: entry.claim_confirmed,
        waba_id: entry.waba_id,
        display_number: entry.display_number,
        app_secret: secret(&entry.app_secret),
        auth_token: secret(&entry.auth_token),
        shared_key: secret(&entry.shared_key),
    }
}

#[test]
fn any_claimant_can_go_first_middle_or_last_and_the_rest_still_count() {
    // Claimant `owner` is the confirmed one; the others claim unconfirmed.
    for owner in 0..3 {
        for gone in (0..3).filter(|gone| *gone != owner) {
            let claimants: Vec<_> = (0..3)
                .map(|i| entry(&format!("ws-{i}"), None, Some(7), i == owner))
                .collect();
            let ids: Vec<_> = claimants.iter().map(|c| c.account_id).collect();
            let mut index = RouteIndex::from_entries(claimants);
            let owned_by = |index: &RouteIndex| match index.owner(Channel::Messenger, 7) {
                Owner::One(found) => Some(found.account_id),
                _ => None,
            };
            assert_eq!(owned_by(&index), Some(ids[owner]));
            index.put(ids[gone], None);
            assert_eq!(owned_by(&index), Some(ids[owner]), "{owner} {gone}");
            index.put(ids[owner], None);
            assert!(
                matches!(index.owner(Channel::Messenger, 7), Owner::Unconfirmed),
                "{owner} {gone}"
            );
            let last = (0..3)
                .find(|i| *i != gone && *i != owner)
                .expect("the third");
            index.put(ids[last], None);
            assert!(matches!(index.owner(Channel::Messenger, 7), Owner::Nobody));
            assert!(index.is_empty());
            assert!(
                index.names.numbers.is_empty(),
                "names are dropped with their last account"
            );
        }
    }
}

#[test]
fn freed_slots_are_reused_and_tables_follow_them() {
    let mut index = RouteIndex::default();
    let mut live = Vec::new();
    for round in 0..50u128 {
        let added = entry(
            &format!("ws-{}", round % 5),
            Some("d"),
            Some(round),
            round % 2 == 0,
        );
        live.push((added.account_id, added.route, round));
        index.put(added.account_id, Some(added));
        if round % 3 == 0 {
            let (id, _, _) = live.remove(0);
            index.put(id, None);
        }
    }
    assert_eq!(index.len(), live.len());
    assert!(
        index.slots.len() <= live.len() + 1,
        "{} slots for {}",
        index.slots.len(),
        live.len()
    );
    for (id, route, page) in &live {
        assert_eq!(index.by_route(*route).map(|e| e.account_id), Some(*id));
        match index.owner(Channel::Messenger, *page) {
            Owner::One(owner) => assert_eq!(owner.account_id, *id),
            Owner::Unconfirmed => assert!(page % 2 == 1, "{page} is confirmed"),
            Owner::Nobody => panic!("{page}: nobody"),
        }
    }
}
