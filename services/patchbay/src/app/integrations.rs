//! Integration operations, one per IntegrationService integration RPC: the account an
//! integration names looked up, the credentials checked at the provider when asked
//! (audited, whatever comes of it), the rule of `domain::integration` run, and its
//! change written.

use std::sync::Arc;

use uuid::Uuid;

use crate::app::checks::{CheckOutcome, CredentialChecker};
use crate::domain::audit::{AuditAction, AuditEvent};
use crate::domain::change::Target;
use crate::domain::config_document::Document;
use crate::domain::ids::{new_id, now};
use crate::domain::integration::{
    self, Integration, IntegrationPatch, IntegrationQuery, NewIntegration,
};
use crate::domain::pages::{Page, PageRequest};
use crate::domain::provider::{Catalog, Provider};
use crate::domain::{Caller, Error, RecordKind, Violations};
use crate::outbound::AddressPolicy;
use crate::store::Store;

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
            store.audit().record_audit_event(&event).await?;
            report.result.map_err(Error::from)
        });
        task.await
            .map_err(|err| Error::Internal(format!("credential check task failed: {err}")))?
    }

    /// Tries an integration's stored credentials against its provider.
    pub async fn check(&self, caller: &Caller, id: Uuid) -> Result<CheckOutcome, Error> {
        caller.require_write(None)?;
        let integration = self.find(caller, id).await?;
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
        let mut found = Violations::new();
        if let Some(account_id) = new.account_id {
            self.check_account(caller, account_id, &mut found).await?;
        }
        let validated = integration::validate_new(
            caller,
            &self.catalog,
            &new,
            found,
            self.destinations.url_guard(),
        )?;
        let id = new_id();
        if new.check {
            self.check_credentials(
                caller,
                CheckedRecord::New(id),
                validated.provider,
                &validated.config,
            )
            .await?;
        }
        let (integration, event) = integration::create(caller, new, validated, id, now())?;
        let stored = self
            .store
            .integrations()
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
            .integrations()
            .list_integrations(caller.workspace_id(), &query, page.after, page.size + 1)
            .await?;
        Ok(Page::from_overfetch(found, page.size, |i| i.id).map(|i| self.masked(i)))
    }

    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<Integration, Error> {
        let found = self.find(caller, id).await?;
        Ok(self.masked(found))
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        patch: IntegrationPatch,
    ) -> Result<Integration, Error> {
        // The account lives in another table: check it before the integration's lock.
        let mut found = Violations::new();
        if let Some(Some(account_id)) = patch.account_id {
            self.check_account(caller, account_id, &mut found).await?;
        }
        // A check calls the provider, which cannot happen inside the transaction: the
        // state is computed and checked first, and written only if nothing changed since.
        let mut patch = patch;
        if patch.check {
            let current = self.find(caller, id).await?;
            let (provider, next) = integration::patched(
                caller,
                &self.catalog,
                &current,
                patch.clone(),
                found.clone(),
                self.destinations.url_guard(),
            )?;
            self.check_credentials(caller, CheckedRecord::Existing(id), provider, &next.config)
                .await?;
            patch.expected_revision = Some(current.revision);
        }
        let stored = self
            .store
            .integrations()
            .modify_integration(caller.workspace_id(), id, &self.catalog, |current| {
                integration::update(
                    caller,
                    &self.catalog,
                    &current,
                    patch,
                    found,
                    self.destinations.url_guard(),
                    now(),
                )
            })
            .await?;
        Ok(self.masked(stored.record()))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        Target {
            id,
            expected_revision,
        }: Target,
    ) -> Result<(), Error> {
        self.store
            .integrations()
            .modify_integration(caller.workspace_id(), id, &self.catalog, |current| {
                integration::delete(caller, &current, expected_revision, now())
            })
            .await?;
        Ok(())
    }

    pub async fn set_primary(
        &self,
        caller: &Caller,
        Target {
            id,
            expected_revision,
        }: Target,
    ) -> Result<Integration, Error> {
        let stored = self
            .store
            .integrations()
            .modify_integration(caller.workspace_id(), id, &self.catalog, |current| {
                integration::set_primary(caller, &current, expected_revision, now())
            })
            .await?;
        Ok(self.masked(stored.record()))
    }

    async fn find(&self, caller: &Caller, id: Uuid) -> Result<Integration, Error> {
        self.store
            .integrations()
            .find_integration(caller.workspace_id(), id)
            .await?
            .ok_or_else(|| Error::not_found(RecordKind::Integration, id))
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
            .accounts()
            .find_account(caller.workspace_id(), account_id)
            .await?
        {
            Some(account) if caller.can_see(account.division_id.as_deref()) => {}
            _ => violations.add("account_id", "no such account in this workspace"),
        }
        Ok(())
    }

    fn masked(&self, integration: Integration) -> Integration {
        integration::masked(&self.catalog, integration)
    }
}
