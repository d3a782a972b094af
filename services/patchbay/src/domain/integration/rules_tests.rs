use serde_json::json;

use super::*;
use crate::domain::Channel;
use crate::domain::testing::{
    admin, at, catalog, chatwoot_config, division_admin, doc, integration,
};

const PUBLIC: UrlGuard = crate::outbound::guard::PUBLIC_ONLY;

fn new_integration(config: Document) -> NewIntegration {
    NewIntegration {
        provider: "chatwoot".into(),
        name: "Support desk".into(),
        identifier: String::new(),
        channel: None,
        active: None,
        primary: false,
        conditions: Vec::new(),
        account_id: None,
        config,
        check: false,
    }
}

fn fields<T: std::fmt::Debug>(result: Result<T, Error>) -> Vec<String> {
    match result {
        Err(Error::InvalidArgument(violations)) => {
            violations.into_iter().map(|v| v.field).collect()
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

fn saved<D: std::fmt::Debug>(change: Change<Integration, D>) -> (Integration, AuditEvent) {
    match change {
        Change::Save(next, event) => (*next, event),
        other => panic!("expected a save, got {other:?}"),
    }
}

fn patch() -> IntegrationPatch {
    IntegrationPatch::default()
}

#[test]
fn a_valid_create_is_built_with_a_derived_identifier_and_defaults() {
    let catalog = catalog();
    let mut config = chatwoot_config();
    config.remove("enabled");
    let new = new_integration(config);
    let validated = validate_new(&admin(), &catalog, &new, Violations::new(), PUBLIC).expect("ok");
    let (created, event) =
        create(&admin(), new, validated, uuid::Uuid::from_u128(1), at(2)).expect("ok");
    assert!(
        created.identifier.starts_with("support-desk-"),
        "{}",
        created.identifier
    );
    assert_eq!(
        created.config["enabled"],
        json!(true),
        "the schema's default is filled"
    );
    assert_eq!(created.channel, Some(Channel::Chat));
    assert_eq!((created.revision, created.created_at), (1, at(2)));
    assert!(created.active);
    assert_eq!(event.action, AuditAction::Create);
    assert!(
        event
            .changed_fields
            .contains(&"config.chatwootAccessToken".to_owned())
    );
}

#[test]
fn a_create_names_every_bad_field_the_account_lookup_last() {
    let catalog = catalog();
    let mut new = new_integration(doc(json!({"accountId": "seven"})));
    new.name = String::new();
    new.channel = Some(Channel::Sms);
    new.primary = true;
    new.active = Some(false);
    let mut found = Violations::new();
    found.add("account_id", "no such account in this workspace");
    let named = fields(validate_new(&admin(), &catalog, &new, found, PUBLIC));
    assert_eq!(named.first().map(String::as_str), Some("name"));
    assert!(named.contains(&"channel".to_owned()));
    assert!(named.contains(&"primary".to_owned()));
    assert!(named.contains(&"config.accountId".to_owned()));
    assert_eq!(named.last().map(String::as_str), Some("account_id"));
}

#[test]
fn an_unknown_provider_is_named() {
    let mut new = new_integration(Document::new());
    new.provider = "fax".into();
    assert_eq!(
        fields(validate_new(
            &admin(),
            &catalog(),
            &new,
            Violations::new(),
            PUBLIC
        )),
        ["provider"]
    );
}

#[test]
fn a_tenant_url_must_pass_the_guard_by_its_form() {
    let mut config = chatwoot_config();
    config.insert("chatwootURL".into(), json!("https://127.0.0.1/"));
    let new = new_integration(config);
    assert_eq!(
        fields(validate_new(
            &admin(),
            &catalog(),
            &new,
            Violations::new(),
            PUBLIC
        )),
        ["config.chatwootURL"]
    );
    let allowed = crate::outbound::guard::ALLOW_PRIVATE;
    assert!(validate_new(&admin(), &catalog(), &new, Violations::new(), allowed).is_ok());
}

#[test]
fn integrations_are_written_by_workspace_wide_callers_only() {
    let catalog = catalog();
    let new = new_integration(chatwoot_config());
    assert!(matches!(
        validate_new(
            &division_admin("sales"),
            &catalog,
            &new,
            Violations::new(),
            PUBLIC
        ),
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        update(
            &division_admin("sales"),
            &catalog,
            &integration(),
            patch(),
            Violations::new(),
            PUBLIC,
            at(5)
        ),
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        delete(&division_admin("sales"), &integration(), None, at(5)),
        Err(Error::PermissionDenied(_))
    ));
}

#[test]
fn an_update_that_changes_nothing_is_kept() {
    let renamed = IntegrationPatch {
        name: Some(" Support ".into()),
        ..patch()
    };
    assert!(matches!(
        update(
            &admin(),
            &catalog(),
            &integration(),
            renamed,
            Violations::new(),
            PUBLIC,
            at(5)
        ),
        Ok(Change::Keep)
    ));
}

#[test]
fn an_update_names_what_it_changed_and_bumps_the_revision() {
    let renamed = IntegrationPatch {
        name: Some("Help desk".into()),
        active: Some(false),
        expected_revision: Some(3),
        ..patch()
    };
    let (next, event) = saved(
        update(
            &admin(),
            &catalog(),
            &integration(),
            renamed,
            Violations::new(),
            PUBLIC,
            at(5),
        )
        .expect("ok"),
    );
    assert_eq!((next.revision, next.updated_at), (4, at(5)));
    assert_eq!(event.changed_fields, ["name", "active"]);
}

#[test]
fn moving_the_url_without_resending_the_token_is_refused() {
    let moved = IntegrationPatch {
        config: Some(doc(json!({"chatwootURL": "https://evil.example"}))),
        ..patch()
    };
    assert_eq!(
        fields(update(
            &admin(),
            &catalog(),
            &integration(),
            moved,
            Violations::new(),
            PUBLIC,
            at(5)
        )),
        ["config.chatwootAccessToken"]
    );
    let resent = IntegrationPatch {
        config: Some(doc(
            json!({"chatwootURL": "https://new.example", "chatwootAccessToken": "cw-new"}),
        )),
        ..patch()
    };
    let (next, event) = saved(
        update(
            &admin(),
            &catalog(),
            &integration(),
            resent,
            Violations::new(),
            PUBLIC,
            at(5),
        )
        .expect("ok"),
    );
    assert_eq!(next.config["chatwootURL"], json!("https://new.example"));
    assert_eq!(
        event.changed_fields,
        ["config.chatwootAccessToken", "config.chatwootURL"]
    );
}

#[test]
fn deactivating_the_primary_clears_it_and_an_inactive_one_cannot_be_primary() {
    let mut primary = integration();
    primary.primary = true;
    let off = IntegrationPatch {
        active: Some(false),
        ..patch()
    };
    let (next, _) = saved(
        update(
            &admin(),
            &catalog(),
            &primary,
            off,
            Violations::new(),
            PUBLIC,
            at(5),
        )
        .expect("ok"),
    );
    assert!(!next.primary && !next.active);
    let both = IntegrationPatch {
        active: Some(false),
        primary: Some(true),
        ..patch()
    };
    assert_eq!(
        fields(update(
            &admin(),
            &catalog(),
            &integration(),
            both,
            Violations::new(),
            PUBLIC,
            at(5)
        )),
        ["primary"]
    );
}

#[test]
fn reactivating_validates_the_whole_config() {
    let mut inactive = integration();
    inactive.active = false;
    inactive.config.remove("accountId");
    let on = IntegrationPatch {
        active: Some(true),
        ..patch()
    };
    assert_eq!(
        fields(update(
            &admin(),
            &catalog(),
            &inactive,
            on,
            Violations::new(),
            PUBLIC,
            at(5)
        )),
        ["config.accountId"]
    );
}

#[test]
fn a_stale_revision_aborts_every_write() {
    let stale = IntegrationPatch {
        expected_revision: Some(1),
        ..patch()
    };
    assert!(matches!(
        update(
            &admin(),
            &catalog(),
            &integration(),
            stale,
            Violations::new(),
            PUBLIC,
            at(5)
        ),
        Err(Error::Aborted(_))
    ));
    assert!(matches!(
        delete(&admin(), &integration(), Some(1), at(5)),
        Err(Error::Aborted(_))
    ));
    assert!(matches!(
        set_primary(&admin(), &integration(), Some(1), at(5)),
        Err(Error::Aborted(_))
    ));
}

#[test]
fn set_primary_needs_an_active_integration_and_is_a_no_op_on_the_primary() {
    let mut inactive = integration();
    inactive.active = false;
    assert!(matches!(
        set_primary(&admin(), &inactive, None, at(5)),
        Err(Error::FailedPrecondition(_))
    ));
    let mut primary = integration();
    primary.primary = true;
    assert!(matches!(
        set_primary(&admin(), &primary, None, at(5)),
        Ok(Change::Keep)
    ));
    let (next, event) = saved(set_primary(&admin(), &integration(), Some(3), at(5)).expect("ok"));
    assert!(next.primary);
    assert_eq!(event.changed_fields, ["primary"]);
    assert_eq!(event.action, AuditAction::SetPrimary);
}

#[test]
fn an_integration_of_an_unknown_provider_cannot_be_patched() {
    let mut orphan = integration();
    orphan.provider = "gone".into();
    assert!(matches!(
        patched(
            &admin(),
            &catalog(),
            &orphan,
            patch(),
            Violations::new(),
            PUBLIC
        ),
        Err(Error::Internal(_))
    ));
}

#[test]
fn shown_configs_mask_the_schemas_secrets() {
    let shown = masked(&catalog(), integration());
    assert_ne!(shown.config["chatwootAccessToken"], json!("cw-token"));
    assert_eq!(
        shown.config["chatwootURL"],
        json!("https://chat.acme.example")
    );
    let mut orphan = integration();
    orphan.provider = "gone".into();
    orphan.config.insert("api_key".into(), json!("sk-1"));
    let shown = masked(&catalog(), orphan);
    assert_ne!(
        shown.config["api_key"],
        json!("sk-1"),
        "secrets by name without a schema"
    );
}
