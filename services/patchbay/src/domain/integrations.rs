//! Integration operations, one per IntegrationService integration RPC: authorised
//! callers, validated against the provider's schema, written with their audit events.

use std::sync::Arc;

use uuid::Uuid;

use super::Channel;
use super::audit::{AuditAction, AuditEvent, document_changes};
use super::caller::Caller;
use super::config_document::{self, Document, SecretRule};
use super::destinations;
use super::error::{Error, RecordKind, Violations};
use super::integration::{
    Integration, IntegrationPatch, NewIntegration, derive_identifier, validate_identifier,
    validate_name,
};
use super::provider::{Catalog, Completeness, Provider};
use super::support::{Page, PageRequest, check_revision, new_id, now};
use crate::outbound::{AddressPolicy, CheckOutcome, CredentialChecker};
use crate::store::Store;
use crate::store::integrations::{IntegrationChange, IntegrationFilter};

/// The filters of a ListIntegrations call.
#[derive(Debug, Default)]
pub struct IntegrationQuery {
    pub provider: Option<String>,
    pub channel: Option<Channel>,
    pub active: Option<bool>,
    pub include_deleted: bool,
}

#[derive(Clone)]
pub struct Integrations {
    store: Store,
    catalog: Arc<Catalog>,
    checker: CredentialChecker,
    /// Which tenant URLs the outbound guard lets through, to refuse the others by their
    /// literal form when they are stored.
    destinations: AddressPolicy,
}

/// The record a credential check is for, as its audit event names it.
#[derive(Clone, Copy)]
enum CheckedRecord {
    Existing(Uuid),
    /// A create: the id it will get if the check passes (a refused create names none).
    New(Uuid),
}

impl Integrations {
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        checker: CredentialChecker,
        destinations: AddressPolicy,
    ) -> Self {
        Self {
            store,
            catalog,
            checker,
            destinations,
        }
    }

    /// Sends the credentials of `config` to the provider and audits the attempt,
    /// whatever came of it, in a commit of its own: a refused create leaves its event.
    /// The check and its event run on a task of their own, so a caller that cancels, or
    /// whose deadline passes, once the request is out cannot leave it unaudited.
    async fn check_credentials(
        &self,
        caller: &Caller,
        record: CheckedRecord,
        provider: &Provider,
        config: &Document,
    ) -> Result<CheckOutcome, Error> {
        let (checker, store) = (self.checker.clone(), self.store.clone());
        let (caller, provider, config) = (caller.clone(), provider.clone(), config.clone());
        let task = tokio::spawn(async move {
            let report = checker.check(&provider, &config).await;
            let outcome = match &report.result {
                Ok(outcome) => outcome.as_str(),
                Err(failure) => failure.as_str(),
            };
            let record_id = match (record, &report.result) {
                (CheckedRecord::Existing(id), _) | (CheckedRecord::New(id), Ok(_)) => {
                    id.to_string()
                }
                (CheckedRecord::New(_), Err(_)) => String::new(),
            };
            let sent = report
                .sent
                .iter()
                .map(|field| (*field).to_owned())
                .collect();
            let event = AuditEvent::new(
                &caller,
                RecordKind::Integration,
                record_id,
                None,
                AuditAction::CheckCredentials,
                sent,
            )
            .with_outcome(outcome)
            .without_idempotency();
            store.record_audit_event(&event).await?;
            report.result.map_err(Error::from)
        });
        task.await
            .map_err(|err| Error::Internal(format!("credential check task failed: {err}")))?
    }

    /// Tries an integration's stored credentials against its provider.
    pub async fn check(&self, caller: &Caller, id: Uuid) -> Result<CheckOutcome, Error> {
        caller.require_write(None)?;
        let integration = self
            .store
            .find_integration(&caller.workspace_id, id)
            .await?
            .ok_or_else(|| Error::not_found(RecordKind::Integration, id))?;
        let provider = self
            .catalog
            .get(&integration.provider)
            .ok_or_else(|| Error::Internal(format!("integration {id} has an unknown provider")))?;
        self.check_credentials(
            caller,
            CheckedRecord::Existing(id),
            provider,
            &integration.config,
        )
        .await
    }

    pub async fn create(&self, caller: &Caller, new: NewIntegration) -> Result<Integration, Error> {
        let mut violations = Violations::new();
        let provider = self.catalog.get(&new.provider);
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
        if let (Some(provider), Some(asked)) = (provider, new.channel) {
            if provider.channel != Some(asked) {
                violations.add(
                    "channel",
                    format!("provider {} does not serve channel {asked}", provider.slug),
                );
            }
        }
        let active = new.active.unwrap_or(true);
        if new.primary && !active {
            violations.add("primary", "an inactive integration cannot be primary");
        }
        let config = provider.map(|provider| {
            prepare_config(
                provider,
                &Document::new(),
                &new.config,
                Prepare {
                    creating: true,
                    active,
                    destinations: self.destinations,
                },
                &mut violations,
            )
        });
        if let Some(account_id) = new.account_id {
            self.check_account(caller, account_id, &mut violations)
                .await?;
        }
        violations.into_result()?;
        caller.require_write(None)?;
        let (Some(provider), Some(config)) = (provider, config) else {
            return Err(Error::Internal(
                "integration incomplete after validation".to_owned(),
            ));
        };

        let id = new_id();
        if new.check {
            self.check_credentials(caller, CheckedRecord::New(id), provider, &config)
                .await?;
        }
        let identifier = if new.identifier.is_empty() {
            derive_identifier(&new.name)?
        } else {
            new.identifier
        };
        let now = now();
        let integration = Integration {
            id,
            workspace_id: caller.workspace_id.clone(),
            provider: provider.slug.clone(),
            name: new.name.trim().to_owned(),
            identifier,
            channel: provider.channel,
            active,
            primary: new.primary,
            conditions: new.conditions,
            account_id: new.account_id,
            config,
            revision: 1,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            deleted_by: None,
        };
        let mut fields = vec![
            "provider".to_owned(),
            "name".to_owned(),
            "identifier".to_owned(),
            "active".to_owned(),
            "primary".to_owned(),
            "conditions".to_owned(),
            "account_id".to_owned(),
        ];
        fields.extend(document_changes(
            &Document::new(),
            &integration.config,
            "config",
        ));
        let event = event(caller, &integration, AuditAction::Create, fields);
        let stored = self
            .store
            .insert_integration(integration, &self.catalog, &event)
            .await?;
        Ok(self.masked(stored))
    }

    pub async fn list(
        &self,
        caller: &Caller,
        query: IntegrationQuery,
        page: PageRequest,
    ) -> Result<Page<Integration>, Error> {
        let found = self
            .store
            .list_integrations(&IntegrationFilter {
                workspace_id: &caller.workspace_id,
                provider: query.provider.as_deref(),
                channel: query.channel,
                active: query.active,
                include_deleted: query.include_deleted,
                after: page.after,
                limit: page.size + 1,
            })
            .await?;
        Ok(Page::from_overfetch(found, page.size, |i| i.id).map(|i| self.masked(i)))
    }

    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<Integration, Error> {
        let found = self
            .store
            .find_integration(&caller.workspace_id, id)
            .await?
            .ok_or_else(|| Error::not_found(RecordKind::Integration, id))?;
        Ok(self.masked(found))
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        patch: IntegrationPatch,
    ) -> Result<Integration, Error> {
        // The account lives in another table: check it before the integration's lock.
        let mut account_violations = Violations::new();
        if let Some(Some(account_id)) = patch.account_id {
            self.check_account(caller, account_id, &mut account_violations)
                .await?;
        }
        // A check calls the provider, which cannot happen inside the transaction: the
        // state is computed and checked first, and written only if nothing changed since.
        let mut patch = patch;
        if patch.check {
            let current = self
                .store
                .find_integration(&caller.workspace_id, id)
                .await?
                .ok_or_else(|| Error::not_found(RecordKind::Integration, id))?;
            caller.require_write(None)?;
            check_revision(patch.expected_revision, current.revision)?;
            let provider = self.catalog.get(&current.provider).ok_or_else(|| {
                Error::Internal(format!("integration {id} has an unknown provider"))
            })?;
            let next = apply_patch(
                provider,
                &current,
                patch.clone(),
                account_violations.clone(),
                self.destinations,
            )?;
            self.check_credentials(caller, CheckedRecord::Existing(id), provider, &next.config)
                .await?;
            patch.expected_revision = Some(current.revision);
        }
        let stored = self
            .store
            .modify_integration(&caller.workspace_id, id, &self.catalog, |current| {
                caller.require_write(None)?;
                check_revision(patch.expected_revision, current.revision)?;
                let provider = self.catalog.get(&current.provider).ok_or_else(|| {
                    Error::Internal(format!("integration {id} has an unknown provider"))
                })?;
                let next = apply_patch(
                    provider,
                    &current,
                    patch,
                    account_violations,
                    self.destinations,
                )?;
                if next == current {
                    return Ok(IntegrationChange::Keep);
                }
                let fields = changed_fields(&current, &next);
                let event = event(caller, &next, AuditAction::Update, fields);
                Ok(IntegrationChange::Save(
                    Box::new(Integration {
                        revision: current.revision + 1,
                        updated_at: now(),
                        ..next
                    }),
                    event,
                ))
            })
            .await?;
        let stored =
            stored.ok_or_else(|| Error::Internal("updated integration vanished".to_owned()))?;
        Ok(self.masked(stored))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        id: Uuid,
        expected_revision: Option<i64>,
    ) -> Result<(), Error> {
        self.store
            .modify_integration(&caller.workspace_id, id, &self.catalog, |current| {
                caller.require_write(None)?;
                check_revision(expected_revision, current.revision)?;
                Ok(IntegrationChange::Delete {
                    deleted_by: caller.subject.clone(),
                    at: now(),
                    event: event(
                        caller,
                        &current,
                        AuditAction::Delete,
                        vec!["deleted_at".to_owned()],
                    ),
                })
            })
            .await?;
        Ok(())
    }

    pub async fn set_primary(
        &self,
        caller: &Caller,
        id: Uuid,
        expected_revision: Option<i64>,
    ) -> Result<Integration, Error> {
        let stored = self
            .store
            .modify_integration(&caller.workspace_id, id, &self.catalog, |current| {
                caller.require_write(None)?;
                check_revision(expected_revision, current.revision)?;
                if !current.active {
                    return Err(Error::FailedPrecondition(
                        "the integration is inactive; activate it before making it primary"
                            .to_owned(),
                    ));
                }
                if current.primary {
                    return Ok(IntegrationChange::Keep);
                }
                let event = event(
                    caller,
                    &current,
                    AuditAction::SetPrimary,
                    vec!["primary".to_owned()],
                );
                Ok(IntegrationChange::Save(
                    Box::new(Integration {
                        primary: true,
                        revision: current.revision + 1,
                        updated_at: now(),
                        ..current
                    }),
                    event,
                ))
            })
            .await?;
        let stored =
            stored.ok_or_else(|| Error::Internal("primary integration vanished".to_owned()))?;
        Ok(self.masked(stored))
    }

    /// An integration may attach only to a live account of its own workspace that the
    /// caller can see.
    async fn check_account(
        &self,
        caller: &Caller,
        account_id: Uuid,
        violations: &mut Violations,
    ) -> Result<(), Error> {
        match self
            .store
            .find_account(&caller.workspace_id, account_id)
            .await?
        {
            Some(account) if caller.can_see(account.division_id.as_deref()) => {}
            _ => violations.add("account_id", "no such account in this workspace"),
        }
        Ok(())
    }

    /// What a caller is shown: secrets masked by name and by the provider's schema.
    fn masked(&self, integration: Integration) -> Integration {
        let config = match self.catalog.get(&integration.provider) {
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
}

/// How a config is prepared: on create or update, for an active integration or not,
/// and which tenant URLs the guard lets through.
#[derive(Clone, Copy)]
struct Prepare {
    creating: bool,
    active: bool,
    destinations: AddressPolicy,
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
    let Prepare {
        creating,
        active,
        destinations,
    } = how;
    let rule = SecretRule::Schema(provider.secret_paths());
    let (merged, merged_cleanly) =
        match config_document::merge_patch_with(stored, patch, "config", rule) {
            Ok(merged) => (merged, true),
            Err(found) => {
                violations.extend(found);
                (patch.clone(), false)
            }
        };
    let config = if creating {
        provider.with_defaults(&merged)
    } else {
        merged
    };
    let completeness = if active {
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
            destinations,
        ));
    }
    config
}

fn apply_patch(
    provider: &Provider,
    current: &Integration,
    patch: IntegrationPatch,
    mut violations: Violations,
    destinations: AddressPolicy,
) -> Result<Integration, Error> {
    let mut next = current.clone();
    if let Some(name) = patch.name {
        if violations.check(validate_name(&name)).is_some() {
            next.name = name.trim().to_owned();
        }
    }
    if let Some(identifier) = patch.identifier {
        if violations.check(validate_identifier(&identifier)).is_some() {
            next.identifier = identifier;
        }
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

fn changed_fields(before: &Integration, after: &Integration) -> Vec<String> {
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

fn event(
    caller: &Caller,
    integration: &Integration,
    action: AuditAction,
    fields: Vec<String>,
) -> AuditEvent {
    AuditEvent::new(
        caller,
        RecordKind::Integration,
        integration.id,
        None,
        action,
        fields,
    )
}
