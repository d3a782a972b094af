use serde_json::json;
use uuid::Uuid;

use super::meta_body::MAX_ENTRIES;
use super::*;
// The routing rules run here against the real index (`views/routes`).
use crate::domain::testing::{account, doc};
use crate::views::routes::index::RouteIndex;

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
    confirmed.provider_state.ownership = Ownership::Confirmed;
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
    if confirmed {
        claimant.provider_state.ownership = Ownership::Confirmed;
    }
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
fn only_a_confirmed_claim_routes_on_the_app_level_callback() {
    let owner = claim("ws-a", "100", true);
    let owner_id = owner.account_id;
    let squatter = claim("ws-b", "100", false);
    let (first, second) = (claim("ws-a", "200", false), claim("ws-b", "200", false));
    let sole = claim("ws-c", "300", false);
    let mut index = RouteIndex::from_entries([owner, squatter, first, second, sole]);
    let body = page_body(&["100", "200", "300", "400"]);
    let (deliveries, unrouted) = route_meta_entries(&index, &body, SignedBy::App, None);
    let delivered: Vec<_> = deliveries.iter().map(|(i, e)| (*i, e.account_id)).collect();
    assert_eq!(delivered, vec![(0, owner_id)]);
    let reasons: Vec<_> = unrouted.iter().map(|(i, r)| (*i, r.as_str())).collect();
    assert_eq!(
        reasons,
        vec![
            (1, "no account's claim of page id 200 is confirmed by Meta"),
            (2, "no account's claim of page id 300 is confirmed by Meta"),
            (3, "no account owns page id 400"),
        ]
    );
    // The owner goes: the unconfirmed claim of another workspace does not take over.
    index.put(owner_id, None);
    assert!(matches!(
        index.owner(Channel::Messenger, 100),
        Owner::Unconfirmed
    ));
    assert_eq!(index.len(), 4);
}

/// A WhatsApp body naming `numbers`, one change each.
fn numbers_body(numbers: &[&str]) -> MetaBody {
    let changes: Vec<_> = numbers
        .iter()
        .map(|n| json!({"field": "messages", "value": {"metadata": {"phone_number_id": n}}}))
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "500", "changes": changes}]});
    MetaBody::parse(body.to_string().as_bytes()).expect("body")
}

#[test]
fn a_numbers_own_url_routes_its_own_id_unless_another_owns_it() {
    let owner = number("ws-a", "100", "500", "1", true);
    let owner_id = owner.account_id;
    let index = RouteIndex::from_entries([
        owner,
        number("ws-b", "100", "500", "1", false),
        number("ws-b", "200", "501", "2", false),
    ]);
    let mine = number("ws-b", "200", "501", "2", false);
    let parked = number("ws-b", "100", "500", "1", false);
    // The app's signature: the URL account's own number to it, any other to its owner.
    let body = numbers_body(&["200", "100"]);
    let (deliveries, unrouted) = route_meta_entries(&index, &body, SignedBy::App, Some(&mine));
    let to: Vec<_> = deliveries.iter().map(|(_, r)| r.account_id).collect();
    assert_eq!(to, vec![mine.account_id, owner_id]);
    assert!(unrouted.is_empty());
    // The parked claim's own URL: the number is owned by another account, confirmed.
    let body = numbers_body(&["100"]);
    let (deliveries, unrouted) = route_meta_entries(&index, &body, SignedBy::App, Some(&parked));
    assert!(deliveries.is_empty());
    assert_eq!(
        unrouted[0].1,
        "phone number id 100 is owned by another account"
    );
    // Its own secret speaks to itself: its own id is delivered to it, whoever owns it,
    // so that the answer tells nothing of who does.
    let signed_by = SignedBy::Account(parked.account_id);
    let (deliveries, _) = route_meta_entries(&index, &body, signed_by, Some(&parked));
    assert_eq!(deliveries, vec![(0, parked.recipient())]);
    // Pages have no callback override: an app-signed page body on a page's URL
    // routes as on the app's callback.
    let page = claim("ws-b", "300", false);
    let (deliveries, unrouted) =
        route_meta_entries(&index, &page_body(&["300"]), SignedBy::App, Some(&page));
    assert!(deliveries.is_empty());
    assert_eq!(unrouted[0].1, "no account owns page id 300");
}

#[test]
fn an_accounts_own_secret_speaks_only_for_that_account() {
    let mine = claim("ws-a", "100", true);
    let theirs = claim("ws-b", "200", true);
    let index = RouteIndex::from_entries([mine, theirs]);
    let mine = claim("ws-a", "100", true);
    let signed_by = SignedBy::Account(mine.account_id);
    let body = page_body(&["200", "999"]);
    let (deliveries, unrouted) = route_meta_entries(&index, &body, signed_by, Some(&mine));
    assert!(deliveries.is_empty());
    // Owned by another, owned by nobody: the same answer, so that an account's own
    // secret cannot ask who holds an id.
    let reasons: Vec<_> = unrouted
        .iter()
        .map(|(_, r)| r.replace("200", "N").replace("999", "N"))
        .collect();
    assert_eq!(reasons[0], reasons[1]);
}

/// A WhatsApp number of WABA `waba`, shown as `display`.
fn number(workspace: &str, id: &str, waba: &str, display: &str, confirmed: bool) -> RouteEntry {
    let mut number = account(Channel::Whatsapp, id);
    number.id = Uuid::new_v4();
    number.webhook_route = Uuid::new_v4();
    number.workspace_id = workspace.into();
    number.config = doc(json!({"phone_number_id": id, "waba_id": waba, "access_token": "t"}));
    number.provider_state.display_phone_number = Some(display.into());
    if confirmed {
        number.provider_state.ownership = Ownership::Confirmed;
    }
    route_entry(&number).expect("entry")
}

/// One WABA-level entry of `field`, as Meta's webhook references show them (see
/// tests/api/waba_routing.rs for the sources).
fn waba_body(waba: &str, field: &str, value: serde_json::Value) -> MetaBody {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": waba,
        "time": 1_739_321_024, "changes": [{"value": value, "field": field}]}]});
    MetaBody::parse(body.to_string().as_bytes()).expect("body")
}

#[test]
fn waba_level_entries_go_to_the_owning_workspace_by_displayed_number_or_to_all() {
    let first = number("ws-a", "1001", "500", "+1 555-078-3881", true);
    let second = number("ws-a", "1002", "500", "15550783882", false);
    // Another workspace names the WABA without a confirmed number: it owns nothing.
    let squatter = number("ws-b", "1003", "500", "15550783881", false);
    let (first_id, second_id) = (first.account_id, second.account_id);
    let index = RouteIndex::from_entries([first, second, squatter]);
    let to = |body: &MetaBody| {
        let (deliveries, unrouted) = route_meta_entries(&index, body, SignedBy::App, None);
        let mut ids: Vec<_> = deliveries.iter().map(|(_, r)| r.account_id).collect();
        ids.sort();
        (ids, unrouted)
    };
    let quality = waba_body(
        "500",
        "phone_number_quality_update",
        json!({"display_phone_number": "15550783881", "event": "FLAGGED", "current_limit": "TIER_10K"}),
    );
    assert_eq!(to(&quality).0, vec![first_id]);
    let name = waba_body(
        "500",
        "phone_number_name_update",
        json!({"display_phone_number": "15550783882", "decision": "APPROVED",
            "requested_verified_name": "Lucky Shrub", "rejection_reason": null}),
    );
    assert_eq!(to(&name).0, vec![second_id]);
    let mut both = vec![first_id, second_id];
    both.sort();
    let template = waba_body(
        "500",
        "message_template_status_update",
        json!({"event": "APPROVED", "message_template_id": 1_689_556_908_129_832_u64,
            "message_template_name": "order_confirmation", "message_template_language": "en-US",
            "reason": "NONE", "message_template_category": "UTILITY"}),
    );
    assert_eq!(to(&template).0, both);
    let capability = waba_body(
        "500",
        "business_capability_update",
        json!({"max_daily_conversations_per_business": 2000, "max_phone_numbers_per_waba": 25}),
    );
    assert_eq!(to(&capability).0, both);
    let restriction = waba_body(
        "500",
        "account_update",
        json!({"event": "ACCOUNT_RESTRICTION", "restriction_info": [
            {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1_641_330_498}]}),
    );
    assert_eq!(to(&restriction).0, both);
    // A partner event names the WABA in waba_info; its entry id is a business portfolio.
    let partner = MetaBody::parse(
        json!({"entry": [{"id": "2949482758682047", "time": 1, "changes": [{"value": {
            "event": "PARTNER_ADDED", "waba_info": {"waba_id": "500", "owner_business_id": "77"}},
            "field": "account_update"}]}], "object": "whatsapp_business_account"})
        .to_string()
        .as_bytes(),
    )
    .expect("body");
    assert_eq!(to(&partner).0, both);
    // A number the WABA's owner does not have, a WABA nobody owns.
    let (ids, unrouted) = to(&waba_body(
        "500",
        "phone_number_quality_update",
        json!({"display_phone_number": "15559999999", "event": "FLAGGED"}),
    ));
    assert!(ids.is_empty());
    assert!(unrouted[0].1.contains("displayed number"), "{unrouted:?}");
    // Number-level fields that name the number's id elsewhere than in `metadata`
    // (Meta's call-settings page: account_settings_update; the account_alerts
    // reference: a PHONE_NUMBER alert's entity_id) route by it, as messages do.
    let settings = waba_body(
        "500",
        "account_settings_update",
        json!({"timestamp": 1_745_000_000, "type": "phone_number_settings",
            "phone_number_settings": {"phone_number_id": "1001", "calling": {"status": "ENABLED"}}}),
    );
    assert_eq!(to(&settings).0, vec![first_id]);
    let alert = waba_body(
        "500",
        "account_alerts",
        json!({"entity_type": "PHONE_NUMBER", "entity_id": "1001",
            "alert_info": {"alert_severity": "WARNING", "alert_status": "ACTIVE",
                "alert_type": "OBA_APPROVED", "alert_description": "…"}}),
    );
    assert_eq!(to(&alert).0, vec![first_id]);
    // Routed as a number is: an unconfirmed number's alert goes nowhere.
    let unconfirmed = waba_body(
        "500",
        "account_alerts",
        json!({"entity_type": "PHONE_NUMBER", "entity_id": "1002"}),
    );
    assert!(to(&unconfirmed).0.is_empty());
    let (ids, unrouted) = to(&waba_body("501", "business_capability_update", json!({})));
    assert!(ids.is_empty());
    assert!(
        unrouted[0]
            .1
            .contains("no account owns a confirmed number of WABA 501")
    );
}

#[test]
fn a_waba_with_confirmed_numbers_in_two_workspaces_routes_nowhere_and_owners_leave() {
    let ours = number("ws-a", "1001", "500", "15550000001", true);
    let theirs = number("ws-b", "1002", "500", "15550000002", true);
    let (ours_id, theirs_id) = (ours.account_id, theirs.account_id);
    let mut index = RouteIndex::from_entries([ours, theirs]);
    assert_eq!(index.waba_route(500, None), WabaRoute::Contested);
    index.put(theirs_id, None);
    match index.waba_route(500, None) {
        WabaRoute::Accounts(accounts) => {
            assert_eq!(accounts.len(), 1);
            assert_eq!(accounts[0].account_id, ours_id);
        }
        other => panic!("expected ours, got {other:?}"),
    }
    // An unconfirmed number again: nobody owns the WABA.
    index.put(
        ours_id,
        Some(number("ws-a", "1001", "500", "15550000001", false)).map(|mut e| {
            e.account_id = ours_id;
            e
        }),
    );
    assert_eq!(index.waba_route(500, None), WabaRoute::NoOwner);
    index.put(ours_id, None);
    assert!(index.is_empty());
    assert_eq!(index.waba_route(500, None), WabaRoute::NoOwner);
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
    let (_, unrouted) = route_meta_entries(&RouteIndex::default(), &body, SignedBy::App, None);
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
        Owner::Unconfirmed
    ));
    assert!(index.by_route(route).is_some());
    index.put(id, None);
    assert!(index.is_empty());
}

#[test]
fn one_answer_holds_at_most_four_thousand_deliveries_and_says_what_is_past_them() {
    let numbers: Vec<String> = (1..=16).map(|n| format!("{}", 1000 + n)).collect();
    let index = RouteIndex::from_entries(
        numbers
            .iter()
            .map(|n| number("ws-a", n, "500", n, true))
            .collect::<Vec<_>>(),
    );
    let changes: Vec<_> = numbers
        .iter()
        .map(|n| json!({"field": "messages", "value": {"metadata": {"phone_number_id": n}}}))
        .collect();
    let entries: Vec<_> = (0..MAX_ENTRIES)
        .map(|_| json!({"id": "500", "changes": changes}))
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": entries});
    let body = MetaBody::parse(body.to_string().as_bytes()).expect("body");
    let (deliveries, unrouted) = route_meta_entries(&index, &body, SignedBy::App, None);
    assert_eq!(deliveries.len(), 4 * MAX_ENTRIES);
    // Entry 250 is the first past the cap (250 entries × 16 numbers = 4,000).
    assert_eq!(unrouted.len(), MAX_ENTRIES - 250);
    assert_eq!(unrouted[0].0, 250);
    assert!(
        unrouted[0].1.contains("more than 4000 accounts"),
        "{unrouted:?}"
    );
}

/// What a careless or hostile body may put where the WABA-level fields are read: odd
/// types, digits past any phone number, a partner WABA that is no id, a PHONE_NUMBER
/// alert naming no number. Nothing panics; each entry is routed by what it validly
/// names, or said unrouted.
#[test]
fn odd_waba_level_shapes_route_by_what_they_validly_name() {
    let index = RouteIndex::from_entries([number("ws-a", "1001", "500", "15550000001", true)]);
    let odd_values = [
        json!({"display_phone_number": {"x": 1}, "phone_number": [1, 2]}),
        json!({"display_phone_number": "9".repeat(40)}),
        json!({"display_phone_number": "no digits"}),
        json!({"waba_info": "500"}),
        json!({"waba_info": {"waba_id": {"nested": true}}}),
        json!({"entity_type": "PHONE_NUMBER", "entity_id": [1001]}),
        json!({"phone_number_settings": {"phone_number_id": -5}}),
        json!(null),
        json!("a string"),
    ];
    for value in odd_values {
        let body = json!({"object": "whatsapp_business_account",
            "entry": [{"id": "500", "changes": [{"field": {"odd": 1}, "value": value}]}]});
        let Ok(body) = MetaBody::parse(body.to_string().as_bytes()) else {
            // A change whose value is not an object is no Meta body: refused whole.
            continue;
        };
        let (deliveries, unrouted) = route_meta_entries(&index, &body, SignedBy::App, None);
        assert_eq!(
            deliveries.len() + unrouted.len(),
            1,
            "one outcome per entry: {deliveries:?} {unrouted:?}"
        );
    }
}
