//! Meta's payloads as Meta's webhook reference prints them (each cited), and what each
//! says of health.

use serde_json::{Value, json};

use super::*;

fn said(body: Value) -> Vec<(usize, Vec<Word>)> {
    words(body.to_string().as_bytes())
}

fn only(body: Value) -> Vec<Word> {
    let mut all = said(body);
    assert_eq!(all.len(), 1, "one entry says something");
    all.remove(0).1
}

#[test]
fn a_restriction_is_enforcement_until_its_latest_expiration() {
    // Meta, "account_update" webhook reference (developers.facebook.com/documentation/
    // business-messaging/whatsapp/webhooks/reference/account_update), its example.
    let body = json!({"object":"whatsapp_business_account","entry":[{"id":"102290129340398",
        "time":1641330498,"changes":[{"value":{"event":"ACCOUNT_RESTRICTION","restriction_info":[
        {"restriction_type":"RESTRICTED_BIZ_INITIATED_MESSAGING","expiration":1641330498},
        {"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION","expiration":1641330499}]},
        "field":"account_update"}]}]});
    let words = only(body);
    let [
        Word::Set {
            code,
            class,
            detail,
            until,
            at,
        },
    ] = words.as_slice()
    else {
        panic!("one set: {words:?}");
    };
    let (code, class, until) = (*code, *class, *until);
    assert_eq!(
        *at,
        DateTime::from_timestamp(1_641_330_498, 0),
        "the entry's time"
    );
    assert_eq!(code, codes::ACCOUNT_RESTRICTED);
    assert_eq!(class, Class::Enforcement);
    assert!(
        detail.contains("RESTRICTED_BIZ_INITIATED_MESSAGING"),
        "{detail}"
    );
    assert_eq!(until, DateTime::from_timestamp(1_641_330_499, 0));
}

#[test]
fn an_expiration_in_text_as_relays_send_it_is_read() {
    // Wati's relay of the same event sends the expiration as text.
    let value = json!({"event":"ACCOUNT_RESTRICTION","restriction_info":[
        {"restriction_type":"RESTRICTED_BIZ_INITIATED_MESSAGING",
         "expiration":"2026-04-19T13:59:20+0000"}]});
    let words = change_words("account_update", &value);
    let [Word::Set { until, .. }] = words.as_slice() else {
        panic!("{words:?}");
    };
    assert_eq!(*until, DateTime::from_timestamp(1_776_607_160, 0));
}

#[test]
fn a_ban_and_its_reinstatement() {
    // Meta's account_update reference: DISABLED_UPDATE's ban_info.
    let disabled = json!({"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"DISABLE",
        "waba_ban_date":"April 17, 2025"}});
    let words = change_words("account_update", &disabled);
    assert!(
        matches!(&words[..], [Word::Set { code: codes::ACCOUNT_DISABLED, class: Class::Enforcement, detail, .. }]
            if detail.contains("April 17, 2025")),
        "{words:?}"
    );
    let scheduled =
        json!({"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"SCHEDULE_FOR_DISABLE"}});
    assert!(matches!(
        &change_words("account_update", &scheduled)[..],
        [Word::Set {
            code: codes::DISABLE_SCHEDULED,
            class: Class::Quality,
            ..
        }]
    ));
    // The reference's example: "REINSTATE".
    let reinstated = json!({"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"REINSTATE",
        "waba_ban_date":"April 17, 2025"}});
    assert_eq!(
        change_words("account_update", &reinstated),
        [Word::lift(&[
            codes::ACCOUNT_DISABLED,
            codes::DISABLE_SCHEDULED
        ])]
    );
}

#[test]
fn quality_flags_and_limits() {
    // Meta's phone_number_quality_update reference: display_phone_number, event, and
    // the limit in max_daily_conversations_per_business (current_limit is going away).
    let flagged = json!({"entry":[{"id":"102290129340398","time":1748454394,"changes":[{"value":{
        "display_phone_number":"15550783881","event":"FLAGGED","current_limit":"TIER_10K"},
        "field":"phone_number_quality_update"}]}],"object":"whatsapp_business_account"});
    assert!(matches!(
        &only(flagged)[..],
        [Word::Set {
            code: codes::QUALITY_FLAGGED,
            class: Class::Quality,
            ..
        }]
    ));
    let lowered = json!({"display_phone_number":"15550783881","event":"DOWNGRADE",
        "current_limit":"TIER_10K","max_daily_conversations_per_business":"TIER_2K"});
    let words = change_words("phone_number_quality_update", &lowered);
    assert!(
        matches!(&words[..], [Word::Set { code: codes::MESSAGING_LIMIT_LOWERED, detail, .. }] if detail.ends_with("TIER_2K")),
        "{words:?}"
    );
    for (event, lifted) in [
        ("UNFLAGGED", codes::QUALITY_FLAGGED),
        ("UPGRADE", codes::MESSAGING_LIMIT_LOWERED),
        // The reference's own example.
        ("THROUGHPUT_UPGRADE", codes::MESSAGING_LIMIT_LOWERED),
    ] {
        let value = json!({"display_phone_number":"15550783881","event":event,
            "current_limit":"TIER_UNLIMITED"});
        assert!(
            matches!(&change_words("phone_number_quality_update", &value)[..], [Word::Lift { codes, .. }] if codes.contains(&lifted)),
            "{event}"
        );
    }
    let onboarding = json!({"display_phone_number":"15550783881","event":"ONBOARDING"});
    assert!(change_words("phone_number_quality_update", &onboarding).is_empty());
}

#[test]
fn a_rejected_name_and_its_approval() {
    // Meta's phone_number_name_update reference, its example (APPROVED), and REJECTED
    // with one of the documented rejection reasons.
    let approved = json!({"entry":[{"id":"102290129340398","time":1739321024,"changes":[{"value":{
        "display_phone_number":"15550783881","decision":"APPROVED",
        "requested_verified_name":"Lucky Shrub","rejection_reason":null},
        "field":"phone_number_name_update"}]}],"object":"whatsapp_business_account"});
    assert_eq!(
        only(approved),
        [Word::lift(&[codes::NAME_REJECTED]).said(DateTime::from_timestamp(1_739_321_024, 0))]
    );
    let rejected = json!({"display_phone_number":"15550783881","decision":"REJECTED",
        "requested_verified_name":"Lucky Shrub","rejection_reason":"NAME_FORMAT_UNACCEPTABLE"});
    assert!(matches!(
        &change_words("phone_number_name_update", &rejected)[..],
        [Word::Set { code: codes::NAME_REJECTED, class: Class::Quality, detail, .. }]
            if detail.contains("NAME_FORMAT_UNACCEPTABLE") && detail.contains("Lucky Shrub")
    ));
}

#[test]
fn messenger_policy_enforcement() {
    // Meta's messaging_policy_enforcement event (Messenger Platform webhook events), in
    // the entry's messaging[] as Meta's common event format places events.
    let block = json!({"object":"page","entry":[{"id":"PAGE_ID","time":1_458_692_752_478_i64,"messaging":[
        {"recipient":{"id":"PAGE_ID"},"timestamp":1_458_692_752_478_i64,"policy_enforcement":{
        "action":"block","reason":"The bot violated our Platform Policies (https://developers.facebook.com/devpolicy/#messengerplatform). Common violations include sending out excessive spammy messages or being non-functional."}}]}]});
    assert!(matches!(
        &only(block.clone())[..],
        [Word::Set { code: codes::PAGE_BLOCKED, class: Class::Enforcement, detail, .. }] if detail.contains("Platform Policies")
    ));
    // A page entry's time is in milliseconds: said on 2016-03-23, not 48,000 years on.
    assert_eq!(
        only(block)[0].said_at(),
        DateTime::from_timestamp_millis(1_458_692_752_478)
    );
    let warning = json!({"action":"warning","reason":"slow down"});
    assert!(matches!(
        &enforcement_words(&warning)[..],
        [Word::Set {
            code: codes::POLICY_WARNING,
            class: Class::Quality,
            ..
        }]
    ));
    let unblock = json!({"action":"unblock"});
    assert_eq!(
        enforcement_words(&unblock),
        [Word::lift(&[codes::PAGE_BLOCKED, codes::POLICY_WARNING])]
    );
}

#[test]
fn bodies_that_say_nothing_of_health_are_not_read_again() {
    // A message, a capability update (limits alone), garbage.
    let message = json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
        {"field":"messages","value":{"metadata":{"phone_number_id":"2"}}}]}]});
    assert!(said(message).is_empty());
    // Meta's business_capability_update reference example.
    let capability = json!({"entry":[{"id":"524126980791429","time":1739321024,"changes":[{"value":{
        "max_daily_conversations_per_business":2000,"max_phone_numbers_per_waba":25},
        "field":"business_capability_update"}]}],"object":"whatsapp_business_account"});
    assert!(said(capability).is_empty());
    assert!(words(b"account_update but not JSON").is_empty());
}

#[test]
fn entries_keep_their_index_and_details_their_bound() {
    let long = "x".repeat(5000);
    let body = json!({"object":"page","entry":[
        {"id":"1","messaging":[{"message":{"text":"hi"}}]},
        {"id":"2","messaging":[{"policy_enforcement":{"action":"block","reason":long}}]}]});
    let all = said(body);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, 1, "the second entry");
    let [Word::Set { detail, .. }] = &all[0].1[..] else {
        panic!("a set");
    };
    assert!(
        detail.len() <= MAX_DETAIL + '…'.len_utf8(),
        "{}",
        detail.len()
    );
}

#[test]
fn only_entries_about_one_number_and_of_health_alone_are_read() {
    // Two numbers' quality in one entry: routing sends it by the first, so it says
    // nothing here.
    let two = json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
        {"field":"phone_number_quality_update","value":{"display_phone_number":"15550001","event":"FLAGGED"}},
        {"field":"phone_number_quality_update","value":{"display_phone_number":"15550002","event":"FLAGGED"}}]}]});
    assert!(said(two).is_empty());
    // A message beside a quality update: routed by the message's number.
    let mixed = json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
        {"field":"messages","value":{"metadata":{"phone_number_id":"2"}}},
        {"field":"phone_number_quality_update","value":{"display_phone_number":"15550001","event":"FLAGGED"}}]}]});
    assert!(said(mixed).is_empty());
    // WhatsApp's fields in a page's body, Messenger's event in a WhatsApp body.
    let wrong_object = json!({"object":"page","entry":[{"id":"1","changes":[
        {"field":"account_update","value":{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"DISABLE"}}}]}]});
    assert!(said(wrong_object).is_empty());
    let event_in_whatsapp = json!({"object":"whatsapp_business_account","entry":[{"id":"1",
        "messaging":[{"policy_enforcement":{"action":"block","reason":"x"}}]}]});
    assert!(said(event_in_whatsapp).is_empty());
    // A change with a field that is no text spoils nothing else.
    let odd = json!({"object":"whatsapp_business_account","entry":[
        {"id":"1","changes":[{"field":7,"value":{}}]},
        {"id":"2","changes":[{"field":"phone_number_name_update","value":{"decision":"APPROVED"}}]}]});
    let all = said(odd);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, 1);
}
