use serde_json::json;

use super::*;
use crate::domain::account::whatsapp::PIN;
use crate::domain::testing::{account, admin, at, caller, cloud_account, division_admin, doc};
use crate::domain::{Role, SetupState};

fn new_account(channel: Channel, key: &str) -> NewAccount {
    NewAccount {
        channel,
        account_key: key.into(),
        display_name: String::new(),
        is_active: None,
        is_default: false,
        division_id: None,
        config: Document::new(),
    }
}

fn saved<D: std::fmt::Debug>(change: Change<Account, D>) -> (Account, AuditEvent) {
    match change {
        Change::Save(account, event) => (*account, event),
        other => panic!("expected a save, got {other:?}"),
    }
}

fn fields(result: Result<impl std::fmt::Debug, Error>) -> Vec<String> {
    match result {
        Err(Error::InvalidArgument(violations)) => {
            violations.into_iter().map(|v| v.field).collect()
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[test]
fn a_new_account_lands_in_the_division_asked_for_else_the_callers() {
    let mut violations = Violations::new();
    let scoped = division_admin("sales");
    assert_eq!(
        new_account_division(&scoped, None, &mut violations).as_deref(),
        Some("sales")
    );
    assert_eq!(
        new_account_division(&scoped, Some(""), &mut violations),
        None
    );
    assert_eq!(
        new_account_division(&admin(), Some("support"), &mut violations).as_deref(),
        Some("support")
    );
    assert!(violations.is_empty());
    assert_eq!(
        new_account_division(&admin(), Some("no spaces"), &mut violations),
        None
    );
    assert_eq!(fields(violations.into_result()), ["division_id"]);
}

#[test]
fn a_division_caller_asks_about_its_own_division_only() {
    let scoped = division_admin("sales");
    assert_eq!(
        asked_division(&scoped, None).ok().flatten().as_deref(),
        Some("sales")
    );
    assert_eq!(
        asked_division(&scoped, Some("sales".into()))
            .ok()
            .flatten()
            .as_deref(),
        Some("sales")
    );
    assert!(matches!(
        asked_division(&scoped, Some("support".into())),
        Err(Error::PermissionDenied(_))
    ));
    assert_eq!(asked_division(&admin(), None).ok().flatten(), None);
    assert_eq!(
        asked_division(&admin(), Some("support".into()))
            .ok()
            .flatten()
            .as_deref(),
        Some("support")
    );
    assert_eq!(
        fields(asked_division(&admin(), Some("a/b".into()))),
        ["division_id"]
    );
}

#[test]
fn an_account_of_another_division_is_not_found_and_a_workspace_one_is_read_only() {
    let mut theirs = account(Channel::Sms, "s1");
    theirs.division_id = Some("support".into());
    let scoped = division_admin("sales");
    assert!(matches!(
        ensure_writable(&scoped, &theirs),
        Err(Error::NotFound { .. })
    ));
    let workspace_wide = account(Channel::Sms, "s2");
    assert!(matches!(
        ensure_writable(&scoped, &workspace_wide),
        Err(Error::PermissionDenied(_))
    ));
    let mut own = account(Channel::Sms, "s3");
    own.division_id = Some("sales".into());
    assert!(ensure_writable(&scoped, &own).is_ok());
    assert!(ensure_writable(&admin(), &theirs).is_ok());
}

#[test]
fn a_created_account_starts_at_revision_one_named_after_its_key() {
    let (created, event) = create(
        &admin(),
        new_account(Channel::Email, "support@acme.test"),
        at(1),
    )
    .expect("created");
    assert_eq!(created.revision, 1);
    assert_eq!(created.display_name, "support@acme.test");
    assert!(created.is_active && !created.is_default);
    assert_eq!((created.created_at, created.updated_at), (at(1), at(1)));
    assert_eq!(created.provider_state.setup_state, SetupState::NotNeeded);
    assert_eq!(created.verify_token.len(), 32);
    assert_eq!(event.action, AuditAction::Create);
    assert_eq!(event.record_id, created.id.to_string());
    assert!(event.changed_fields.contains(&"verify_token".to_owned()));
}

#[test]
fn a_cloud_account_gets_its_derived_key_a_pin_and_a_pending_set_up() {
    let mut new = new_account(Channel::Whatsapp, "");
    new.config = doc(json!({"phone_number_id": "1555", "waba_id": "2666", "access_token": "t"}));
    let (created, _) = create(&admin(), new, at(1)).expect("created");
    assert_eq!(created.account_key, "wa-1555");
    assert_eq!(created.provider_state.setup_state, SetupState::Pending);
    let pin = created.config[PIN].as_str().unwrap_or_default();
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
}

#[test]
fn every_bad_field_of_a_create_is_named_at_once() {
    let mut new = new_account(Channel::Messenger, "bad key");
    new.is_default = true;
    new.is_active = Some(false);
    new.display_name = "line\nbreak".into();
    new.config = doc(json!({"page_id": "not-digits"}));
    assert_eq!(
        fields(create(&admin(), new, at(1))),
        [
            "config.page_id",
            "account_key",
            "display_name",
            "is_default"
        ]
    );
}

#[test]
fn a_division_admin_cannot_create_a_workspace_wide_account() {
    let mut new = new_account(Channel::Sms, "s1");
    new.division_id = Some(String::new());
    assert!(matches!(
        create(&division_admin("sales"), new, at(1)),
        Err(Error::PermissionDenied(_))
    ));
}

#[test]
fn an_update_that_changes_nothing_keeps_the_account() {
    let current = account(Channel::Sms, "s1");
    let patch = AccountPatch {
        display_name: Some("s1".into()),
        ..AccountPatch::default()
    };
    let updated = update(&admin(), &current, patch, at(5)).expect("updated");
    assert!(matches!(updated.change, Change::Keep));
    assert!(!updated.run_setup);
}

#[test]
fn an_update_saves_the_next_revision_naming_the_fields_it_changed() {
    let current = account(Channel::Sms, "s1");
    let patch = AccountPatch {
        display_name: Some("Sales line".into()),
        expected_revision: Some(3),
        ..AccountPatch::default()
    };
    let (next, event) = saved(
        update(&admin(), &current, patch, at(5))
            .expect("updated")
            .change,
    );
    assert_eq!((next.revision, next.updated_at), (4, at(5)));
    assert_eq!(next.display_name, "Sales line");
    assert_eq!(event.changed_fields, ["display_name"]);
    assert_eq!(event.action, AuditAction::Update);
}

#[test]
fn an_update_at_a_stale_revision_is_aborted() {
    let patch = AccountPatch {
        expected_revision: Some(2),
        ..AccountPatch::default()
    };
    assert!(matches!(
        update(&admin(), &account(Channel::Sms, "s1"), patch, at(5)),
        Err(Error::Aborted(_))
    ));
}

#[test]
fn deactivating_the_default_clears_the_flag_and_moving_division_leaves_it_behind() {
    let mut current = account(Channel::Sms, "s1");
    current.is_default = true;
    let deactivate = AccountPatch {
        is_active: Some(false),
        ..AccountPatch::default()
    };
    let (next, _) = saved(
        update(&admin(), &current, deactivate, at(5))
            .expect("ok")
            .change,
    );
    assert!(!next.is_active && !next.is_default);
    let moved = AccountPatch {
        division_id: Some("sales".into()),
        ..AccountPatch::default()
    };
    let (next, event) = saved(update(&admin(), &current, moved, at(5)).expect("ok").change);
    assert!(!next.is_default);
    assert_eq!(next.division_id.as_deref(), Some("sales"));
    assert!(event.changed_fields.contains(&"is_default".to_owned()));
}

#[test]
fn an_inactive_account_cannot_be_made_the_default_by_update() {
    let patch = AccountPatch {
        is_active: Some(false),
        is_default: Some(true),
        ..AccountPatch::default()
    };
    assert_eq!(
        fields(update(&admin(), &account(Channel::Sms, "s1"), patch, at(5))),
        ["is_default"]
    );
}

#[test]
fn a_division_admin_cannot_move_its_account_out_of_its_division() {
    let mut own = account(Channel::Sms, "s1");
    own.division_id = Some("sales".into());
    let patch = AccountPatch {
        division_id: Some(String::new()),
        ..AccountPatch::default()
    };
    assert!(matches!(
        update(&division_admin("sales"), &own, patch, at(5)),
        Err(Error::PermissionDenied(_))
    ));
}

#[test]
fn a_new_token_answers_a_rejected_one() {
    let mut current = account(Channel::Sms, "s1");
    current.provider_state.reauthorization_required = true;
    current.config = doc(json!({"auth_token": "old"}));
    let patch = AccountPatch {
        config: Some(doc(json!({"auth_token": "new"}))),
        ..AccountPatch::default()
    };
    let (next, _) = saved(update(&admin(), &current, patch, at(5)).expect("ok").change);
    assert!(!next.provider_state.reauthorization_required);
}

#[test]
fn changing_a_cloud_accounts_token_runs_its_set_up_again_from_the_start() {
    let patch = AccountPatch {
        config: Some(doc(json!({"access_token": "EAAG-new"}))),
        ..AccountPatch::default()
    };
    let updated = update(&admin(), &cloud_account(), patch, at(5)).expect("ok");
    assert!(updated.run_setup);
    let (next, _) = saved(updated.change);
    assert_eq!(next.provider_state.setup_state, SetupState::Pending);
    assert!(!next.provider_state.setup_registered);
}

#[test]
fn renaming_a_done_cloud_account_runs_no_set_up() {
    let patch = AccountPatch {
        display_name: Some("Main line".into()),
        ..AccountPatch::default()
    };
    let updated = update(&admin(), &cloud_account(), patch, at(5)).expect("ok");
    assert!(!updated.run_setup);
    let (next, _) = saved(updated.change);
    assert_eq!(next.provider_state.setup_state, SetupState::Done);
    assert!(next.provider_state.setup_registered);
}

#[test]
fn on_whatsapp_the_key_follows_the_phone_number_id() {
    let patch = AccountPatch {
        config: Some(doc(json!({"phone_number_id": "1777"}))),
        ..AccountPatch::default()
    };
    let (next, _) = saved(
        update(&admin(), &cloud_account(), patch, at(5))
            .expect("ok")
            .change,
    );
    assert_eq!(next.account_key, "wa-1777");
}

#[test]
fn a_delete_is_soft_and_checks_writer_and_revision() {
    let current = account(Channel::Sms, "s1");
    let change = delete(&admin(), &current, Some(3), at(9), None).expect("deleted");
    let Change::Delete(deletion) = change else {
        panic!("expected a delete");
    };
    assert_eq!(
        (deletion.deleted_by.as_str(), deletion.at),
        ("user-1", at(9))
    );
    assert!(matches!(
        delete(&admin(), &current, Some(1), at(9), None),
        Err(Error::Aborted(_))
    ));
    assert!(matches!(
        delete(&division_admin("sales"), &current, None, at(9), None),
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        delete(
            &caller(Role::Supervisor, Some("x")),
            &current,
            None,
            at(9),
            None
        ),
        Err(Error::PermissionDenied(_))
    ));
}

#[test]
fn set_default_needs_an_active_account_and_is_a_no_op_on_the_default() {
    let mut inactive = account(Channel::Sms, "s1");
    inactive.is_active = false;
    assert!(matches!(
        set_default(&admin(), &inactive, None, at(5)),
        Err(Error::FailedPrecondition(_))
    ));
    let mut default = account(Channel::Sms, "s1");
    default.is_default = true;
    assert!(matches!(
        set_default(&admin(), &default, None, at(5)),
        Ok(Change::Keep)
    ));
}

#[test]
fn set_default_saves_the_flag_at_the_next_revision() {
    let current = account(Channel::Sms, "s1");
    let (next, event) = saved(set_default(&admin(), &current, Some(3), at(5)).expect("ok"));
    assert!(next.is_default);
    assert_eq!(next.revision, 4);
    assert_eq!(event.action, AuditAction::SetDefault);
    assert_eq!(event.changed_fields, ["is_default"]);
    assert!(matches!(
        set_default(&admin(), &current, Some(2), at(5)),
        Err(Error::Aborted(_))
    ));
}
