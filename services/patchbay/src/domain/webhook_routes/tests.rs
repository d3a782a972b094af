use serde_json::json;
use uuid::Uuid;

use super::meta_body::MAX_ENTRIES;
use super::*;
use crate::domain::testing::{account, doc};

const ROUTE: &str = "0123456789abcdef0123456789abcdef";

fn route() -> Uuid {
    Uuid::parse_str(ROUTE).expect("route")
}

#[test]
fn a_url_names_an_account_route_or_the_meta_app_by_its_path_alone() {
    let account = Target::Account {
        channel: Channel::Whatsapp,
        route: route(),
    };
    for url in [
        format!("https://hooks.example.com/webhooks/whatsapp/{ROUTE}"),
        format!("https://gateway.internal:8443/webhooks/whatsapp/{ROUTE}/"),
        format!("https://hooks.example.com/webhooks/whatsapp/{ROUTE}?bodySHA256=ab#x"),
    ] {
        assert_eq!(target(&url, ""), Some(account), "{url}");
    }
    assert_eq!(
        target(
            &format!("https://example.com/pb/webhooks/whatsapp/{ROUTE}"),
            "/pb/"
        ),
        Some(account)
    );
    assert_eq!(
        target("https://example.com/webhooks/meta?hub.mode=subscribe", ""),
        Some(Target::MetaApp)
    );
    for url in [
        format!("https://example.com/pb/webhooks/whatsapp/{ROUTE}"),
        format!("https://example.com/webhooks/fax/{ROUTE}"),
        "https://example.com/webhooks/whatsapp/wa-1555".to_owned(),
        format!("https://example.com/webhooks/whatsapp/{}", &ROUTE[..31]),
        format!("https://example.com/webhooks/whatsapp/{ROUTE}/more"),
        format!("/webhooks/whatsapp/{ROUTE}"),
        "https://example.com".to_owned(),
        "https://example.com/webhooks/".to_owned(),
        String::new(),
    ] {
        assert_eq!(target(&url, ""), None, "{url}");
    }
    assert_eq!(
        target(
            &format!("https://example.com/webhooks/whatsapp/{ROUTE}"),
            "/pb"
        ),
        None,
        "outside the base path"
    );
}

#[test]
fn query_parameters_are_read_decoded() {
    let url =
        "https://x/webhooks/meta?hub.mode=subscribe&hub.verify_token=a%2Bb&hub.challenge=12#f";
    assert_eq!(query_param(url, "hub.mode").as_deref(), Some("subscribe"));
    assert_eq!(query_param(url, "hub.verify_token").as_deref(), Some("a+b"));
    assert_eq!(query_param(url, "hub.challenge").as_deref(), Some("12"));
    assert_eq!(query_param(url, "hub.other"), None);
    assert_eq!(query_param("https://x/", "hub.mode"), None);
}

#[test]
fn only_meta_channels_and_twilio_accounts_are_routed() {
    assert!(route_entry(&account(Channel::Email, "e1")).is_none());
    let mut sms = account(Channel::Sms, "s1");
    sms.config = doc(json!({"auth_token": "tw-token", "account_sid": "AC1"}));
    let entry = route_entry(&sms).expect("twilio account");
    assert!(entry.auth_token.is_some() && entry.app_secret.is_none());
    let mut wa = account(Channel::Whatsapp, "wa-1555");
    wa.config = doc(json!({"phone_number_id": "1555", "app_secret": "own"}));
    let entry = route_entry(&wa).expect("meta account");
    assert_eq!(entry.provider_id, Some(1555));
    assert!(entry.app_secret.is_some());
    assert!(!format!("{entry:?}").contains("own"), "no secret in Debug");
}

#[test]
fn only_what_routing_reads_makes_a_change_of_routes() {
    let mut before = account(Channel::Messenger, "p1");
    before.config = doc(json!({"page_id": "100", "page_access_token": "t"}));
    let renamed = Account {
        display_name: "another name".into(),
        is_default: true,
        ..before.clone()
    };
    assert!(!routing_changed(Some(&before), Some(&renamed)));
    let mut other_page = before.clone();
    other_page.config = doc(json!({"page_id": "200"}));
    assert!(routing_changed(Some(&before), Some(&other_page)));
    let mut confirmed = before.clone();
    confirmed.provider_state.claim_confirmed = true;
    assert!(routing_changed(Some(&before), Some(&confirmed)));
    let mut own_secret = before.clone();
    own_secret.config.insert("app_secret".into(), json!("s"));
    assert!(routing_changed(Some(&before), Some(&own_secret)));
    assert!(routing_changed(Some(&before), None));
    assert!(!routing_changed(None, Some(&account(Channel::Email, "e1"))));
}

#[test]
fn a_meta_body_is_read_for_its_ids_only() {
    let body = br#"{"object":"whatsapp_business_account","entry":[
        {"id":"waba","changes":[{"value":{"metadata":{"phone_number_id":"1555"},"messages":[{"x":1}]}},
                                 {"value":{"metadata":{"phone_number_id":"1555"}}},
                                 {"value":{"metadata":{"phone_number_id":1666}}}]},
        {"id":"waba","changes":[{"field":"account_update","value":{"event":"x"}}]}]}"#;
    let body = MetaBody::parse(body).expect("parsed");
    assert_eq!(body.entries[0].ids, vec![1555, 1666]);
    assert!(body.entries[1].ids.is_empty());
    let page = MetaBody::parse(br#"{"object":"page","entry":[{"id":"100","messaging":[]}]}"#)
        .expect("page");
    assert_eq!(page.entries[0].channel, Some(Channel::Messenger));
    assert_eq!(page.entries[0].ids, vec![100]);
    let odd = MetaBody::parse(br#"{"object":"user","entry":[{"id":"1"}]}"#).expect("odd");
    assert_eq!(odd.entries[0].channel, None);
    assert!(MetaBody::parse(b"not json").is_err());
    assert!(MetaBody::parse(br#"{"entry":[]}"#).is_err());
    let many = format!(
        r#"{{"object":"page","entry":[{}]}}"#,
        vec![r#"{"id":"1"}"#; MAX_ENTRIES + 1].join(",")
    );
    assert!(MetaBody::parse(many.as_bytes()).is_err());
}

fn claim(workspace: &str, page: &str, confirmed: bool) -> RouteEntry {
    let mut claimant = account(Channel::Messenger, page);
    claimant.id = Uuid::new_v4();
    claimant.webhook_route = Uuid::new_v4();
    claimant.workspace_id = workspace.into();
    claimant.config = doc(json!({"page_id": page}));
    claimant.provider_state.claim_confirmed = confirmed;
    route_entry(&claimant).expect("entry")
}

fn page_body(pages: &[&str]) -> MetaBody {
    let entries: Vec<_> = pages.iter().map(|p| json!({"id": p})).collect();
    MetaBody::parse(
        json!({"object": "page", "entry": entries})
            .to_string()
            .as_bytes(),
    )
    .expect("body")
}

#[test]
fn a_confirmed_claim_wins_and_two_unconfirmed_ones_route_nowhere() {
    let owner = claim("ws-a", "100", true);
    let owner_id = owner.account_id;
    let squatter = claim("ws-b", "100", false);
    let (first, second) = (claim("ws-a", "200", false), claim("ws-b", "200", false));
    let sole = claim("ws-c", "300", false);
    let sole_id = sole.account_id;
    let mut index = RouteIndex::from_entries([owner, squatter, first, second, sole]);
    let body = page_body(&["100", "200", "300", "400"]);
    let (deliveries, unrouted) = route_meta_entries(&index, &body, SignedBy::App);
    let delivered: Vec<_> = deliveries.iter().map(|(i, e)| (*i, e.account_id)).collect();
    assert_eq!(delivered, vec![(0, owner_id), (2, sole_id)]);
    let reasons: Vec<_> = unrouted.iter().map(|(i, r)| (*i, r.as_str())).collect();
    assert_eq!(
        reasons,
        vec![
            (
                1,
                "page id 200 is claimed by more than one account, none confirmed"
            ),
            (3, "no account owns page id 400"),
        ]
    );
    // The owner goes: the unconfirmed claim of another workspace takes over.
    index.put(owner_id, None);
    match index.owner(Channel::Messenger, 100) {
        Owner::One(entry) => assert_eq!(&*entry.workspace_id, "ws-b"),
        other => panic!("expected the sole claim, got {other:?}"),
    }
    assert_eq!(index.len(), 4);
}

#[test]
fn an_accounts_own_secret_speaks_only_for_that_account() {
    let mine = claim("ws-a", "100", true);
    let mine_id = mine.account_id;
    let theirs = claim("ws-b", "200", true);
    let index = RouteIndex::from_entries([mine, theirs]);
    let body = page_body(&["100", "200"]);
    let (deliveries, unrouted) = route_meta_entries(&index, &body, SignedBy::Account(mine_id));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].1.account_id, mine_id);
    assert_eq!(unrouted.len(), 1);
    assert_eq!(unrouted[0].0, 1);
    // Owned by another, owned by nobody: the same answer, so that an account's own
    // secret cannot ask who holds an id.
    let body = page_body(&["200", "999"]);
    let (_, unrouted) = route_meta_entries(&index, &body, SignedBy::Account(mine_id));
    let reasons: Vec<_> = unrouted
        .iter()
        .map(|(_, r)| r.replace("200", "N").replace("999", "N"))
        .collect();
    assert_eq!(reasons[0], reasons[1]);
}

#[test]
fn a_body_is_read_only_so_far_and_the_rest_is_reported() {
    let changes: Vec<_> = (0..100)
        .map(|n| json!({"value": {"metadata": {"phone_number_id": format!("{}", 1000 + n)}}}))
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": changes}]});
    let body = MetaBody::parse(body.to_string().as_bytes()).expect("parsed");
    assert_eq!(body.entries[0].ids.len(), 16);
    assert!(body.entries[0].cut);
    let (_, unrouted) = route_meta_entries(&RouteIndex::default(), &body, SignedBy::App);
    assert!(
        unrouted[0].1.contains("more changes or numbers"),
        "{unrouted:?}"
    );
    // Empty changes past the count are skipped, not kept.
    let many = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{}]}}]}}"#,
        vec!["{}"; 100_000].join(",")
    );
    let body = MetaBody::parse(many.as_bytes()).expect("parsed");
    assert!(body.entries[0].cut && body.entries[0].ids.is_empty());
}

#[test]
fn only_canonical_ids_are_provider_ids() {
    let mut messenger = account(Channel::Messenger, "p");
    for (id, canonical) in [("100", true), ("0100", false), ("", false), ("1e3", false)] {
        messenger.config = doc(json!({ "page_id": id }));
        assert_eq!(
            crate::domain::account::provider_id(Channel::Messenger, &messenger.config).is_some(),
            canonical,
            "{id}"
        );
    }
}

#[test]
fn an_entry_moves_with_its_account() {
    let entry = claim("ws-a", "100", false);
    let id = entry.account_id;
    let mut index = RouteIndex::from_entries([entry]);
    let mut moved = claim("ws-a", "200", false);
    moved.account_id = id;
    let route = moved.route;
    index.put(id, Some(moved));
    assert!(matches!(
        index.owner(Channel::Messenger, 100),
        Owner::Nobody
    ));
    assert!(matches!(
        index.owner(Channel::Messenger, 200),
        Owner::One(_)
    ));
    assert!(index.by_route(route).is_some());
    index.put(id, None);
    assert!(index.is_empty());
}
