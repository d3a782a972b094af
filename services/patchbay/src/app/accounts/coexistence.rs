//! A WhatsApp Business app number on the Cloud API too (Embedded Signup's
//! FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING): Meta is asked to sync its contacts and its
//! history within 24 hours of the onboarding ("Onboard WhatsApp Business app users").

use super::Accounts;
use super::setup::number;
use crate::domain::account::StateChange;
use crate::domain::ids::now;
use crate::domain::{Account, Caller, Error};

impl Accounts {
    /// Asks Meta for the syncs of a WhatsApp Business app number not asked for yet
    /// (contacts, then history), while Meta's 24-hour window lasts, and records when
    /// each was taken, or why not: retried by the next update and by the token-check
    /// round until the window ends, then failed for good.
    pub(super) async fn request_coexistence_syncs(
        &self,
        caller: &Caller,
        account: Account,
    ) -> Result<Account, Error> {
        let Some(coexistence) = account.provider_state.coexistence.clone() else {
            return Ok(account);
        };
        let pending = coexistence.contacts_sync_requested_at.is_none()
            || coexistence.history_sync_requested_at.is_none();
        if !pending {
            return Ok(account);
        }
        let ends = coexistence
            .window_ends()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if !coexistence.may_request(now()) {
            let failed = format!(
                "FAILED: Meta's 24-hour window to sync this WhatsApp Business app number ended at {ends} with a sync not requested; the number must be onboarded again"
            );
            if coexistence.sync_error.as_deref() == Some(failed.as_str()) {
                return Ok(account);
            }
            let change = StateChange::SyncsRequested {
                contacts_at: None,
                history_at: None,
                error: Some(failed),
            };
            return self.record_state(caller, account.id, change).await;
        }
        let number = number(&account);
        let (mut contacts_at, mut history_at, mut error) = (None, None, None);
        let steps = [
            (
                "smb_app_state_sync",
                "contacts",
                coexistence.contacts_sync_requested_at,
            ),
            ("history", "history", coexistence.history_sync_requested_at),
        ];
        for (sync_type, what, requested) in steps {
            if requested.is_some() {
                continue;
            }
            match self.graph.whatsapp().request_sync(&number, sync_type).await {
                Ok(()) if sync_type == "history" => history_at = Some(now()),
                Ok(()) => contacts_at = Some(now()),
                Err(err) => {
                    error = Some(format!(
                        "requesting the {what} sync: {}; retried by the next update and the token-check round until {ends}",
                        self.meta_words(&account, &err)
                    ));
                    break;
                }
            }
        }
        let change = StateChange::SyncsRequested {
            contacts_at,
            history_at,
            error,
        };
        self.record_state(caller, account.id, change).await
    }
}
