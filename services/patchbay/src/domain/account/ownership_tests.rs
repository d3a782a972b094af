use serde_json::json;

use super::*;
use crate::domain::Channel;
use crate::domain::testing::{account, cloud_account, doc};

fn page(id: &str) -> Account {
    Account {
        config: doc(json!({"page_id": id, "page_access_token": "EAAP"})),
        ..account(Channel::Messenger, "page")
    }
}

fn targets<'a>(granted: &'a [(&'a str, Vec<String>)]) -> impl Fn(&str) -> Option<&'a [String]> {
    move |scope| {
        granted
            .iter()
            .find(|(name, _)| *name == scope)
            .map(|(_, ids)| ids.as_slice())
    }
}

#[test]
fn a_page_is_vouched_for_by_profile_id_or_pages_messaging_targets_only() {
    let none: Vec<(&str, Vec<String>)> = Vec::new();
    assert_eq!(
        debug_token_word(&page("200"), Some("200"), targets(&none)),
        DebugTokenWord::Vouches
    );
    assert_eq!(
        debug_token_word(&page("200"), Some("201"), targets(&none)),
        DebugTokenWord::Silent
    );
    let granted = vec![("pages_messaging", vec!["199".to_owned(), "200".to_owned()])];
    assert_eq!(
        debug_token_word(&page("200"), None, targets(&granted)),
        DebugTokenWord::Vouches
    );
    // Another scope's targets say nothing of messaging the page.
    let other = vec![("pages_show_list", vec!["200".to_owned()])];
    assert_eq!(
        debug_token_word(&page("200"), None, targets(&other)),
        DebugTokenWord::Silent
    );
}

#[test]
fn a_number_needs_its_waba_named_under_messaging() {
    let number = cloud_account();
    let granted = vec![("whatsapp_business_messaging", vec!["2666".to_owned()])];
    assert_eq!(
        debug_token_word(&number, None, targets(&granted)),
        DebugTokenWord::IfWabaLists
    );
    let management_only = vec![("whatsapp_business_management", vec!["2666".to_owned()])];
    assert_eq!(
        debug_token_word(&number, None, targets(&management_only)),
        DebugTokenWord::Silent
    );
    // A profile id naming the number is no word on a WhatsApp number.
    assert_eq!(
        debug_token_word(&number, Some("1555"), targets(&management_only)),
        DebugTokenWord::Silent
    );
}

#[test]
fn an_answer_without_target_ids_never_vouches() {
    assert!(!targets_name(None, "200"));
    assert!(!targets_name(Some(&[]), "200"));
    assert!(targets_name(Some(&["200".to_owned()]), "200"));
    let without_id = account(Channel::Messenger, "page");
    let none: Vec<(&str, Vec<String>)> = Vec::new();
    assert_eq!(
        debug_token_word(&without_id, Some("200"), targets(&none)),
        DebugTokenWord::Silent
    );
}

/// Ownership holds for the id and WABA Meta vouched for: another number, or another
/// WABA (WABA-level entries go by it), starts UNCONFIRMED; a new token keeps it.
#[test]
fn another_number_or_waba_unconfirms_and_a_new_token_keeps() {
    use crate::domain::AccountPatch;
    use crate::domain::change::Change;
    use crate::domain::testing::{admin, at};
    let mut owner = cloud_account();
    owner.provider_state.ownership = Ownership::Confirmed;
    let after = |config: serde_json::Value| {
        let patch = AccountPatch {
            config: Some(doc(config)),
            ..AccountPatch::default()
        };
        match super::super::update(&admin(), &owner, patch, at(5))
            .expect("updated")
            .change
        {
            Change::Save(next, _) => next.provider_state.ownership,
            other => panic!("expected a save, got {other:?}"),
        }
    };
    assert_eq!(after(json!({"waba_id": "2667"})), Ownership::Unconfirmed);
    assert_eq!(
        after(json!({"phone_number_id": "1556"})),
        Ownership::Unconfirmed
    );
    assert_eq!(
        after(json!({"access_token": "EAAG-new"})),
        Ownership::Confirmed
    );
}
