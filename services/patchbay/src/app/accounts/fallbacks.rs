//! SetFallbackAccounts and GetFallbackAccounts: a scope's ordered fallbacks. The rules
//! are `domain::fallbacks`; the list is written whole under the scope's lock
//! (`store.fallbacks()`), audited as the scope's channel settings (record id
//! `<channel>/<division>`, the division empty for the workspace's scope; field
//! `fallback_account_ids`).

use uuid::Uuid;

use super::{AccountView, Accounts};
use crate::domain::account::asked_division;
use crate::domain::audit::{AuditAction, AuditEvent};
use crate::domain::{Caller, Channel, Error, RecordKind};
use crate::store::accounts::Written;

impl Accounts {
    /// Replaces the ordered fallbacks of the scope of `channel` and `division` (the
    /// caller's own division when it asks for none) with `ids`.
    pub async fn set_fallbacks(
        &self,
        caller: &Caller,
        channel: Channel,
        division: Option<String>,
        ids: Vec<Uuid>,
    ) -> Result<Vec<AccountView>, Error> {
        let division = asked_division(caller, division)?;
        caller.require_write(division.as_deref())?;
        let event = AuditEvent::new(
            caller,
            RecordKind::ChannelSettings,
            format!("{channel}/{}", division.as_deref().unwrap_or_default()),
            division.clone(),
            AuditAction::Upsert,
            vec!["fallback_account_ids".to_owned()],
        );
        let (stored, changed) = self
            .store
            .fallbacks()
            .replace_fallbacks(
                caller.workspace_id(),
                channel,
                division.as_deref(),
                &ids,
                &event,
            )
            .await?;
        // What the scope serves changed: the views hear it as a default change.
        self.written(Written {
            value: (),
            defaults: changed,
            routes: None,
            events: None,
        })
        .await;
        Ok(self.views(caller, stored))
    }

    /// The ordered fallbacks of a scope, as the caller may see them.
    pub async fn fallbacks(
        &self,
        caller: &Caller,
        channel: Channel,
        division: Option<String>,
    ) -> Result<Vec<AccountView>, Error> {
        let division = asked_division(caller, division)?;
        let stored = self
            .store
            .fallbacks()
            .fallback_accounts(caller.workspace_id(), channel, division.as_deref())
            .await?;
        Ok(self.views(caller, stored))
    }

    fn views(&self, caller: &Caller, accounts: Vec<crate::domain::Account>) -> Vec<AccountView> {
        accounts
            .into_iter()
            .map(|account| self.view(caller, account))
            .collect()
    }
}
