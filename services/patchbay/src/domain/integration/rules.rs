//! The decisions of the integration RPCs: a request validated against its provider's
//! schema and the destination rules, and what each write does to the integration as it
//! is under the workspace's write lock. No I/O: `app::integrations` looks up the
//! account, runs credential checks, and hands what these return to the store.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Integration, IntegrationPatch, NewIntegration, derive_identifier, validate_identifier,
    validate_name,
};
use crate::domain::audit::{AuditAction, AuditEvent, document_changes};
use crate::domain::caller::Caller;
use crate::domain::change::{Change, Edit, Revised, check_revision, event};
use crate::domain::config_document::{self, Document, SecretRule};
use crate::domain::destinations::{self, UrlGuard};
use crate::domain::error::{Error, RecordKind, Violations};
use crate::domain::provider::{Catalog, Completeness, Provider};

impl Revised for Integration {
    const KIND: RecordKind = RecordKind::Integration;

    fn revision(&self) -> i64 {
        self.revision
    }

    fn revised(self, at: DateTime<Utc>) -> Self {
        Integration {
            revision: self.revision + 1,
            updated_at: at,
            ..self
        }
    }

    fn record_id(&self) -> String {
        self.id.to_string()
    }

    /// Integrations are workspace-wide.
    fn division(&self) -> Option<String> {
        None
    }
}

/// A create request that passed validation: its provider and the config to store.
pub struct Validated<'a> {
    pub provider: &'a Provider,
    pub config: Document,
}

/// The config is left out: it holds secrets.
impl std::fmt::Debug for Validated<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validated")
            .field("provider", &self.provider.slug)
            .finish_non_exhaustive()
    }
}

/// CreateIntegration's request against the catalog, the schema and the destination
/// rules; `found` holds what the account lookup found wrong.
pub fn validate_new<'a>(
    caller: &Caller,
    catalog: &'a Catalog,
    new: &NewIntegration,
    found: Violations,
    destinations: UrlGuard,
) -> Result<Validated<'a>, Error> {
    let mut violations = Violations::new();
    let provider = catalog.get(&new.provider);
    if provider.is_none() {
        violations.add(
            "provider",
            format!(
                "{:?} is not in the catalog (see ListProviders)",
                new.provider
            ),
        );
    }
    violations.check(validate_name(&new.name));
    if !new.identifier.is_empty() {
        violations.check(validate_identifier(&new.identifier));
    }
    if let (Some(provider), Some(asked)) = (provider, new.channel)
        && provider.channel != Some(asked)
    {
        violations.add(
            "channel",
            format!("provider {} does not serve channel {asked}", provider.slug),
        );
    }
    let active = new.active.unwrap_or(true);
    if new.primary && !active {
        violations.add("primary", "an inactive integration cannot be primary");
    }
    let prepared = provider.map(|provider| {
        let config = prepare_config(
            provider,
            &Document::new(),
            &new.config,
            Prepare {
                creating: true,
                active,
                destinations,
            },
            &mut violations,
        );
        Validated { provider, config }
    });
    violations.extend(found);
    // No provider means its violation is recorded.
    let Some(validated) = prepared else {
        return Err(violations.into_invalid());
    };
    violations.into_result()?;
    caller.require_write(None)?;
    Ok(validated)
}

/// The new integration `id`, and the event that records it.
pub fn create(
    caller: &Caller,
    new: NewIntegration,
    validated: Validated<'_>,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(Integration, AuditEvent), Error> {
    let identifier = if new.identifier.is_empty() {
        derive_identifier(&new.name)?
    } else {
        new.identifier
    };
    let integration = Integration {
        id,
        workspace_id: caller.workspace_id().to_owned(),
        provider: validated.provider.slug.clone(),
        name: new.name.trim().to_owned(),
        identifier,
        channel: validated.provider.channel,
        active: new.active.unwrap_or(true),
        primary: new.primary,
        conditions: new.conditions,
        account_id: new.account_id,
        config: validated.config,
        revision: 1,
        created_at: at,
        updated_at: at,
        deleted_at: None,
        deleted_by: None,
    };
    let mut fields: Vec<String> = [
        "provider",
        "name",
        "identifier",
        "active",
        "primary",
        "conditions",
        "account_id",
    ]
    .map(str::to_owned)
    .into();
    fields.extend(document_changes(
        &Document::new(),
        &integration.config,
        "config",
    ));
    let event = event(caller, &integration, AuditAction::Create, fields);
    Ok((integration, event))
}

/// The integration as the patch would leave it, with its provider: what an update
/// writes, and what a credential check before it tries.
pub fn patched<'a>(
    caller: &Caller,
    catalog: &'a Catalog,
    current: &Integration,
    patch: IntegrationPatch,
    found: Violations,
    destinations: UrlGuard,
) -> Result<(&'a Provider, Integration), Error> {
    writable_at(caller, current, patch.expected_revision)?;
    let provider = catalog.get(&current.provider).ok_or_else(|| {
        Error::Internal(format!(
            "integration {} has an unknown provider",
            current.id
        ))
    })?;
    let next = apply_patch(provider, current, patch, found, destinations)?;
    Ok((provider, next))
}

/// UpdateIntegration: the patch applied to the integration as it is now.
pub fn update(
    caller: &Caller,
    catalog: &Catalog,
    current: &Integration,
    patch: IntegrationPatch,
    found: Violations,
    destinations: UrlGuard,
    at: DateTime<Utc>,
) -> Result<Edit<Integration>, Error> {
    let (_, next) = patched(caller, catalog, current, patch, found, destinations)?;
    Ok(Change::save_if_changed(
        caller,
        current,
        next,
        AuditAction::Update,
        changed_fields,
        at,
    ))
}

/// DeleteIntegration: a soft delete, at the revision the caller expects.
pub fn delete(
    caller: &Caller,
    current: &Integration,
    expected_revision: Option<i64>,
    at: DateTime<Utc>,
) -> Result<Change<Integration>, Error> {
    writable_at(caller, current, expected_revision)?;
    Ok(Change::delete(caller, current, at))
}

/// SetPrimaryIntegration: the integration becomes its scope's primary (the store
/// clears the previous one). Only an active integration can be primary.
pub fn set_primary(
    caller: &Caller,
    current: &Integration,
    expected_revision: Option<i64>,
    at: DateTime<Utc>,
) -> Result<Edit<Integration>, Error> {
    writable_at(caller, current, expected_revision)?;
    if !current.active {
        return Err(Error::FailedPrecondition(
            "the integration is inactive; activate it before making it primary".to_owned(),
        ));
    }
    let next = Integration {
        primary: true,
        ..current.clone()
    };
    Ok(Change::save_if_changed(
        caller,
        current,
        next,
        AuditAction::SetPrimary,
        |_, _| vec!["primary".to_owned()],
        at,
    ))
}

/// Integrations are workspace-wide: only a workspace-wide caller writes them, at the
/// revision it expects.
fn writable_at(caller: &Caller, current: &Integration, expected: Option<i64>) -> Result<(), Error> {
    caller.require_write(None)?;
    check_revision(expected, current.revision)
}

/// What a caller is shown: secrets masked by name and by the provider's schema.
pub fn masked(catalog: &Catalog, integration: Integration) -> Integration {
    let config = match catalog.get(&integration.provider) {
        Some(provider) => config_document::mask_with(
            &integration.config,
            "config",
            SecretRule::Schema(provider.secret_paths()),
        ),
        None => config_document::mask(&integration.config),
    };
    Integration {
        config,
        ..integration
    }
}

/// The fields an update changed, as its event names them.
pub fn changed_fields(before: &Integration, after: &Integration) -> Vec<String> {
    let mut fields = Vec::new();
    let mut differs = |name: &str, changed: bool| {
        if changed {
            fields.push(name.to_owned());
        }
    };
    differs("name", before.name != after.name);
    differs("identifier", before.identifier != after.identifier);
    differs("active", before.active != after.active);
    differs("primary", before.primary != after.primary);
    differs("conditions", before.conditions != after.conditions);
    differs("account_id", before.account_id != after.account_id);
    fields.extend(document_changes(&before.config, &after.config, "config"));
    fields
}

/// How a config is prepared: on create or update, for an active integration or not,
/// and which tenant URLs the guard lets through.
#[derive(Clone, Copy)]
struct Prepare {
    creating: bool,
    active: bool,
    destinations: UrlGuard,
}

/// Merges `patch` into `stored` with the provider's secret rule, fills defaults on create,
/// and validates the result: fully when the integration is (or becomes) active, types
/// only when inactive (seed 004); and where its secrets go (`destinations`).
fn prepare_config(
    provider: &Provider,
    stored: &Document,
    patch: &Document,
    how: Prepare,
    violations: &mut Violations,
) -> Document {
    let rule = SecretRule::Schema(provider.secret_paths());
    let (merged, merged_cleanly) =
        match config_document::merge_patch_with(stored, patch, "config", rule) {
            Ok(merged) => (merged, true),
            Err(found) => {
                violations.extend(found);
                (patch.clone(), false)
            }
        };
    let config = if how.creating {
        provider.with_defaults(&merged)
    } else {
        merged
    };
    let completeness = if how.active {
        Completeness::Full
    } else {
        Completeness::Partial
    };
    violations.extend(provider.validate(&config, completeness));
    violations.extend(config_document::check_limits(&config, "config"));
    // Where secrets go is judged on the merged config; after a failed merge there is
    // none (the request is refused anyway).
    if merged_cleanly {
        violations.extend(destinations::check(
            provider,
            stored,
            patch,
            &config,
            how.destinations,
        ));
    }
    config
}

fn apply_patch(
    provider: &Provider,
    current: &Integration,
    patch: IntegrationPatch,
    mut violations: Violations,
    destinations: UrlGuard,
) -> Result<Integration, Error> {
    let mut next = current.clone();
    if let Some(name) = patch.name
        && violations.check(validate_name(&name)).is_some()
    {
        next.name = name.trim().to_owned();
    }
    if let Some(identifier) = patch.identifier
        && violations.check(validate_identifier(&identifier)).is_some()
    {
        next.identifier = identifier;
    }
    if let Some(active) = patch.active {
        next.active = active;
    }
    if let Some(conditions) = patch.conditions {
        next.conditions = conditions;
    }
    if let Some(account_id) = patch.account_id {
        next.account_id = account_id;
    }
    next.primary = match patch.primary {
        Some(wanted) => wanted,
        // A primary is always active: deactivating it clears the flag.
        None => current.primary && next.active,
    };
    if next.primary && !next.active {
        violations.add("primary", "an inactive integration cannot be primary");
    }
    let patch_config = patch.config.unwrap_or_default();
    // Re-validated whenever the config changes or the integration (re)activates.
    if !patch_config.is_empty() || (next.active && !current.active) {
        next.config = prepare_config(
            provider,
            &current.config,
            &patch_config,
            Prepare {
                creating: false,
                active: next.active,
                destinations,
            },
            &mut violations,
        );
    }
    violations.into_result()?;
    Ok(next)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
