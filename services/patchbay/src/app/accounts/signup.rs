//! WhatsApp Embedded Signup (v4): the code for a business token, then the account
//! created or re-authorised as the session finished: a number (`wa-<phone_number_id>`,
//! set up), only a WABA (`waba-<waba_id>`, awaiting its number), or a WhatsApp Business
//! app number (coexistence: set up without registering, its syncs asked for).

use super::Accounts;
use crate::domain::account::whatsapp::{SignupEvent, check_signup, signup_config, signup_key};
use crate::domain::account::{Coexistence, Connected, TokenSource, new_account_division};
use crate::domain::ids::now;
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
        event: SignupEvent,
        division_id: Option<String>,
    ) -> Result<SignupResult, Error> {
        let mut violations = Violations::new();
        check_signup(code, waba_id, phone_number_id, event, &mut violations);
        let division_id = new_account_division(caller, division_id.as_deref(), &mut violations);
        violations.into_result()?;
        caller.require_write(division_id.as_deref())?;
        let app = self.meta_app()?;
        // Another division's number (or WABA) costs no Meta call; a coexistence signup
        // naming no number is checked once Meta named it.
        let coexistence = event == SignupEvent::FinishBusinessAppOnboarding;
        if !(coexistence && phone_number_id.is_empty()) {
            self.signup_division_wall(caller, phone_number_id, waba_id)
                .await?;
        }

        let token = self
            .graph
            .whatsapp()
            .exchange_signup_code(app, code.trim())
            .await
            .map_err(|err| {
                err.into_exchange_error("code", "exchanging the Embedded Signup code")
            })?;
        let phone_number_id = if coexistence && phone_number_id.is_empty() {
            self.only_number_of(waba_id, &token).await?
        } else {
            phone_number_id.to_owned()
        };
        let phone_number_id = phone_number_id.as_str();
        // Again once Meta named the number (coexistence), or another division connected
        // it while the code was exchanged.
        self.signup_division_wall(caller, phone_number_id, waba_id)
            .await?;
        let probe = Number {
            phone_number_id,
            waba_id,
            token: &token,
        };
        // The name Meta verified for the number, when it tells; the key otherwise.
        let display_name = if phone_number_id.is_empty() {
            None
        } else {
            match self.graph.whatsapp().phone_number_status(&probe).await {
                Ok(status) => Some(status.verified_name).filter(|name| !name.is_empty()),
                Err(err) => {
                    tracing::info!(error = %err, "no verified name for the signed-up number");
                    None
                }
            }
        };
        let saved = self
            .save_connected(
                caller,
                Connected {
                    channel: Channel::Whatsapp,
                    account_key: signup_key(phone_number_id, waba_id),
                    display_name,
                    division_id,
                    config: signup_config(phone_number_id, waba_id, token),
                    token_expires_at: None,
                    // Embedded Signup's business integration system user token.
                    token_source: TokenSource::SystemUser,
                    coexistence: coexistence.then(|| Coexistence::new(now())),
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

    /// The one number of a WABA whose business-app onboarding named none; several are
    /// FAILED_PRECONDITION listing them (the caller names one), none likewise.
    async fn only_number_of(&self, waba_id: &str, token: &str) -> Result<String, Error> {
        let waba = Number {
            phone_number_id: "",
            waba_id,
            token,
        };
        let numbers = self
            .graph
            .whatsapp()
            .waba_numbers(&waba)
            .await
            .map_err(|err| err.into_error("reading the WABA's numbers"))?;
        match numbers.as_slice() {
            [only] => Ok(only.id.clone()),
            [] => Err(Error::FailedPrecondition(format!(
                "WABA {waba_id} has no phone number yet: name phone_number_id, or finish the signup with FINISH_ONLY_WABA"
            ))),
            several => Err(Error::FailedPrecondition(format!(
                "WABA {waba_id} has {} phone numbers; name one in phone_number_id: {}",
                several.len(),
                several
                    .iter()
                    .take(20)
                    .map(|number| format!("{} ({})", number.id, number.display_phone_number))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// ALREADY_EXISTS when another division (or, for a division caller, the workspace)
    /// holds the number: no Meta call is made for it.
    async fn signup_division_wall(
        &self,
        caller: &Caller,
        phone_number_id: &str,
        waba_id: &str,
    ) -> Result<(), Error> {
        self.ensure_not_in_another_division(
            caller,
            Channel::Whatsapp,
            &signup_key(phone_number_id, waba_id),
            Some(phone_number_id).filter(|id| !id.is_empty()),
            "phone_number_id",
        )
        .await
    }
}
