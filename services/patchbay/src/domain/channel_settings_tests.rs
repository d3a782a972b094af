use serde_json::json;

use super::*;
use crate::domain::Role;
use crate::domain::audit::AuditEvent;
use crate::domain::testing::{admin, at, caller, division_admin, doc};

fn patch() -> ChannelSettingsPatch {
    ChannelSettingsPatch {
        is_active: None,
        config: None,
        division_id: None,
        expected_revision: None,
    }
}

fn configured() -> ChannelSettings {
    ChannelSettings {
        id: Some(Uuid::from_u128(3)),
        is_active: true,
        config: doc(json!({"sender": "Acme", "api_key": "k"})),
        revision: 2,
        created_at: Some(at(0)),
        updated_at: Some(at(0)),
        ..ChannelSettings::unconfigured("acme", Channel::Email)
    }
}

fn saved(change: Change<ChannelSettings>) -> (ChannelSettings, AuditEvent) {
    match change {
        Change::Save(next, event) => (*next, event),
        other => panic!("expected a save, got {other:?}"),
    }
}

#[test]
fn the_first_upsert_configures_the_channel_at_revision_one() {
    let unconfigured = ChannelSettings::unconfigured("acme", Channel::Sms);
    let on = ChannelSettingsPatch {
        is_active: Some(true),
        ..patch()
    };
    let (first, event) = saved(upsert(&admin(), &unconfigured, on, at(4)).expect("ok"));
    assert!(first.id.is_some());
    assert_eq!(first.revision, 1);
    assert_eq!(
        (first.created_at, first.updated_at),
        (Some(at(4)), Some(at(4)))
    );
    assert_eq!(event.action, AuditAction::Upsert);
    assert_eq!(event.changed_fields, ["is_active"]);
    assert_eq!(
        event.record_id,
        first.id.map(|id| id.to_string()).unwrap_or_default()
    );
}

#[test]
fn a_division_callers_first_configuration_lands_in_its_division() {
    let unconfigured = ChannelSettings::unconfigured("acme", Channel::Sms);
    let (first, event) =
        saved(upsert(&division_admin("sales"), &unconfigured, patch(), at(4)).expect("ok"));
    assert_eq!(first.division_id.as_deref(), Some("sales"));
    assert_eq!(event.division_id.as_deref(), Some("sales"));
}

#[test]
fn an_upsert_that_changes_nothing_is_kept() {
    let same = ChannelSettingsPatch {
        is_active: Some(true),
        config: Some(doc(json!({"sender": "Acme"}))),
        ..patch()
    };
    assert!(matches!(
        upsert(&admin(), &configured(), same, at(4)),
        Ok(Change::Keep)
    ));
}

#[test]
fn an_upsert_merges_the_config_and_names_its_changes() {
    let change = ChannelSettingsPatch {
        config: Some(doc(json!({"sender": "Acme Support", "api_key": null}))),
        expected_revision: Some(2),
        ..patch()
    };
    let (next, event) = saved(upsert(&admin(), &configured(), change, at(4)).expect("ok"));
    assert_eq!(next.config, doc(json!({"sender": "Acme Support"})));
    assert_eq!((next.revision, next.updated_at), (3, Some(at(4))));
    assert_eq!(event.changed_fields, ["config.api_key", "config.sender"]);
}

#[test]
fn a_stale_revision_is_aborted() {
    let stale = ChannelSettingsPatch {
        expected_revision: Some(1),
        ..patch()
    };
    assert!(matches!(
        upsert(&admin(), &configured(), stale, at(4)),
        Err(Error::Aborted(_))
    ));
}

#[test]
fn another_divisions_settings_are_not_found_and_workspace_ones_are_read_only() {
    let mut theirs = configured();
    theirs.division_id = Some("support".into());
    assert!(matches!(
        upsert(&division_admin("sales"), &theirs, patch(), at(4)),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        upsert(&division_admin("sales"), &configured(), patch(), at(4)),
        Err(Error::PermissionDenied(_))
    ));
    let mut own = configured();
    own.division_id = Some("sales".into());
    let leave = ChannelSettingsPatch {
        division_id: Some(String::new()),
        ..patch()
    };
    assert!(matches!(
        upsert(&division_admin("sales"), &own, leave, at(4)),
        Err(Error::PermissionDenied(_))
    ));
}

#[test]
fn a_bad_division_is_named_and_a_masked_secret_keeps_the_stored_one() {
    let bad = ChannelSettingsPatch {
        division_id: Some("no spaces".into()),
        ..patch()
    };
    match upsert(&admin(), &configured(), bad, at(4)) {
        Err(Error::InvalidArgument(violations)) => {
            let fields: Vec<_> = violations.into_iter().map(|v| v.field).collect();
            assert_eq!(fields, ["division_id"]);
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    let echoed = ChannelSettingsPatch {
        config: Some(doc(
            json!({"api_key": masked(configured()).config["api_key"].clone()}),
        )),
        ..patch()
    };
    assert!(matches!(
        upsert(&admin(), &configured(), echoed, at(4)),
        Ok(Change::Keep)
    ));
    let supervisor = caller(Role::Supervisor, Some("sales"));
    assert!(upsert(&supervisor, &configured(), patch(), at(4)).is_err());
}

#[test]
fn responses_mask_secrets_whatever_the_role() {
    let shown = masked(configured());
    assert_ne!(shown.config["api_key"], json!("k"));
    assert_eq!(shown.config["sender"], json!("Acme"));
    assert_eq!(settings_changes(&configured(), &shown), ["config.api_key"]);
}
