//! WhatsApp Embedded Signup: the code for a business token, then the account
//! `wa-<phone_number_id>` created or re-authorised, registered and subscribed.

use super::Accounts;
use crate::domain::account::whatsapp::{check_signup, signup_config};
use crate::domain::account::{Connected, TokenSource, new_account_division};
use crate::domain::{Account, Caller, Channel, Error, Violations};
use crate::meta::whatsapp::Number;

/// What CompleteWhatsAppSignup did.
pub struct SignupResult {
    pub account: Account,
    pub waba_id: String,
    pub phone_number_id: String,
}

impl Accounts {
    pub async fn complete_whatsapp_signup(
        &self,
        caller: &Caller,
        code: &str,
        waba_id: &str,
        phone_number_id: &str,
        division_id: Option<String>,
    ) -> Result<SignupResult, Error> {
        let mut violations = Violations::new();
        check_signup(code, waba_id, phone_number_id, &mut violations);
        let division_id = new_account_division(caller, division_id.as_deref(), &mut violations);
        violations.into_result()?;
        caller.require_write(division_id.as_deref())?;
        let app = self.meta_app()?;

        let token = self
            .graph
            .exchange_signup_code(app, code.trim())
            .await
            .map_err(|err| {
                err.into_exchange_error("code", "exchanging the Embedded Signup code")
            })?;
        let probe = Number {
            phone_number_id,
            waba_id,
            token: &token,
        };
        // The name Meta verified for the number, when it tells; the key otherwise.
        let display_name = match self.graph.phone_number_status(&probe).await {
            Ok(status) => Some(status.verified_name).filter(|name| !name.is_empty()),
            Err(err) => {
                tracing::info!(error = %err, "no verified name for the signed-up number");
                None
            }
        };
        let saved = self
            .save_connected(
                caller,
                Connected {
                    channel: Channel::Whatsapp,
                    account_key: format!("wa-{phone_number_id}"),
                    display_name,
                    division_id,
                    config: signup_config(phone_number_id, waba_id, token),
                    token_expires_at: None,
                    // Embedded Signup's business integration system user token.
                    token_source: TokenSource::SystemUser,
                },
            )
            .await?;
        let account = self.set_up(caller, saved).await?;
        Ok(SignupResult {
            account,
            waba_id: waba_id.to_owned(),
            phone_number_id: phone_number_id.to_owned(),
        })
    }
}
