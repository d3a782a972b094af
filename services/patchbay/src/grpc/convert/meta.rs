//! The Meta flows' messages: WhatsApp health and signup, Instagram and Messenger
//! connect, page results, persistent menus.

use patchbay_sdk::proto;

use super::writes::Update;
use tonic::Status;

use super::account::account_to_proto;
use crate::app::AccountView;
use crate::app::accounts::messenger::{MessengerConnected, PageResult};
use crate::app::accounts::number_health::WhatsAppHealth;
use crate::domain::account::PHONE_NUMBER_ID;
use crate::domain::account::whatsapp::{self, SignupEvent, WABA_ID};
use crate::domain::ids::parse_id;
use crate::domain::persistent_menu::{Button, Menu};
use crate::domain::{Account, Error, FieldViolation};
use crate::grpc::status::code_name;

pub fn health_to_proto(health: WhatsAppHealth) -> proto::GetWhatsAppHealthResponse {
    let config = &health.account.config;
    proto::GetWhatsAppHealthResponse {
        account_id: health.account.id.to_string(),
        display_name: health.account.display_name.clone(),
        phone_number_id: whatsapp::text(config, PHONE_NUMBER_ID).to_owned(),
        waba_id: whatsapp::text(config, WABA_ID).to_owned(),
        healthy: health.healthy,
        reasons: health.reasons,
        phone_number: health
            .phone_number
            .map(|phone| proto::WhatsAppPhoneNumberStatus {
                display_phone_number: phone.display_phone_number,
                verified_name: phone.verified_name,
                quality_rating: phone.quality_rating,
                code_verification_status: phone.code_verification_status,
                name_status: phone.name_status,
                messaging_limit_tier: phone.messaging_limit_tier,
                throughput_level: phone.throughput_level,
                status: phone.status,
            }),
        waba: health.waba.map(|waba| proto::WhatsAppBusinessAccountInfo {
            id: waba.id,
            name: waba.name,
            account_review_status: waba.account_review_status,
        }),
        subscribed_apps: health
            .subscribed_apps
            .unwrap_or_default()
            .into_iter()
            .map(|app| proto::WhatsAppSubscribedApp {
                app_id: app.app_id,
                name: app.name,
                override_callback_uri: app.override_callback_uri,
            })
            .collect(),
        subscribed_ok: health.subscribed_ok,
        warnings: health.warnings,
    }
}

/// The answer of CompleteWhatsAppSignup for the account it saved (also for a replay).
pub fn signup_to_proto(view: AccountView) -> proto::CompleteWhatsAppSignupResponse {
    let account = &view.account;
    proto::CompleteWhatsAppSignupResponse {
        success: account.provider_state.setup_error.is_none(),
        account_key: account.account_key.clone(),
        display_name: account.display_name.clone(),
        waba_id: whatsapp::text(&account.config, WABA_ID).to_owned(),
        phone_number_id: whatsapp::text(&account.config, PHONE_NUMBER_ID).to_owned(),
        account: Some(account_to_proto(view)),
    }
}

/// The answer of ConnectInstagram for the account it saved (also for a replay).
pub fn instagram_to_proto(view: AccountView) -> proto::ConnectInstagramResponse {
    proto::ConnectInstagramResponse {
        success: true,
        username: whatsapp::text(&view.account.config, "username").to_owned(),
        account: Some(account_to_proto(view)),
    }
}

pub fn messenger_to_proto(connected: MessengerConnected) -> proto::ConnectMessengerResponse {
    proto::ConnectMessengerResponse {
        user_token: connected.user_token,
        pages: connected
            .pages
            .into_iter()
            .map(|page| proto::MessengerPage {
                id: page.id,
                name: page.name,
                category: page.category,
            })
            .collect(),
    }
}

/// One page's outcome; `view` shows its account as the caller may see it.
pub fn page_result_to_proto(
    result: PageResult,
    view: impl Fn(Account) -> AccountView,
) -> proto::MessengerPageResult {
    match result.outcome {
        Ok(account) => proto::MessengerPageResult {
            page_id: result.page_id,
            success: true,
            account: Some(account_to_proto(view(account))),
            ..Default::default()
        },
        Err(err) => {
            let status: Status = err.into();
            page_failed(result.page_id, status.code(), status.message().to_owned())
        }
    }
}

/// A page that did not connect, or whose account is gone since.
pub fn page_failed(
    page_id: String,
    code: tonic::Code,
    message: String,
) -> proto::MessengerPageResult {
    proto::MessengerPageResult {
        page_id,
        success: false,
        account: None,
        error_code: code_name(code).to_owned(),
        error_message: message,
    }
}

/// The menu a SetMessengerPersistentMenu call sets on its account; `None` deletes it.
pub type MenuChange = Option<Vec<Menu>>;

impl TryFrom<proto::SetMessengerPersistentMenuRequest> for Update<MenuChange> {
    type Error = Error;

    fn try_from(request: proto::SetMessengerPersistentMenuRequest) -> Result<Self, Error> {
        let id = parse_id(&request.account_id, "account_id")?;
        Ok(Update {
            id,
            patch: menu_from_proto(request)?,
        })
    }
}

fn menu_from_proto(request: proto::SetMessengerPersistentMenuRequest) -> Result<MenuChange, Error> {
    if request.delete {
        if !request.persistent_menu.is_empty() {
            return Err(FieldViolation::new(
                "persistent_menu",
                "must be empty when delete is true",
            )
            .into());
        }
        return Ok(None);
    }
    Ok(Some(
        request
            .persistent_menu
            .into_iter()
            .map(|menu| Menu {
                locale: menu.locale,
                composer_input_disabled: menu.composer_input_disabled,
                buttons: menu
                    .call_to_actions
                    .into_iter()
                    .map(|item| Button {
                        kind: item.r#type,
                        title: item.title,
                        payload: item.payload,
                        url: item.url,
                        webview_height_ratio: item.webview_height_ratio,
                        messenger_extensions: item.messenger_extensions,
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// How an Embedded Signup session finished: UNSPECIFIED is FINISH; an unknown value is
/// INVALID_ARGUMENT naming `event`.
pub fn signup_event(value: i32) -> Result<SignupEvent, Error> {
    use proto::WhatsappSignupEvent as Wire;
    match Wire::try_from(value) {
        Ok(Wire::Unspecified | Wire::Finish) => Ok(SignupEvent::Finish),
        Ok(Wire::FinishOnlyWaba) => Ok(SignupEvent::FinishOnlyWaba),
        Ok(Wire::FinishWhatsappBusinessAppOnboarding) => {
            Ok(SignupEvent::FinishBusinessAppOnboarding)
        }
        Err(_) => Err(Error::InvalidArgument(vec![FieldViolation::new(
            "event",
            "must be a WhatsappSignupEvent",
        )])),
    }
}
