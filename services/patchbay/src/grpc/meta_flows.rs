//! The Meta flows of `AccountService` (WhatsApp health and signup, Instagram and
//! Messenger connect, persistent menu): turn the request into domain values, run the
//! flow in `domain::accounts`, and turn the result back.

use patchbay_sdk::proto;
use serde_json::Value;
use tonic::{Code, Request, Response, Status};

use super::account_service::account_to_proto;
use super::auth::authorize;
use crate::domain::persistent_menu::{Button, Menu};
use crate::domain::support::parse_id;
use crate::domain::{AccountView, Accounts, Action, Caller, Error};

pub async fn whatsapp_health(
    accounts: &Accounts,
    mut request: Request<proto::GetWhatsAppHealthRequest>,
) -> Result<Response<proto::GetWhatsAppHealthResponse>, Status> {
    let caller = authorize(&mut request, Action::GetWhatsAppHealth)?;
    let id = parse_id(&request.get_ref().id, "id").map_err(|v| Error::InvalidArgument(vec![v]))?;
    let health = accounts.whatsapp_health(&caller, id).await?;
    let config = &health.account.config;
    let setting = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let text = |value: Option<&Value>, key: &str| {
        value
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let phone = health.phone_number.as_ref();
    let waba = health.waba.as_ref();
    Ok(Response::new(proto::GetWhatsAppHealthResponse {
        account_id: health.account.id.to_string(),
        display_name: health.account.display_name.clone(),
        phone_number_id: setting("phone_number_id"),
        waba_id: setting("waba_id"),
        healthy: health.reasons.is_empty(),
        reasons: health.reasons,
        phone_number: phone.map(|_| proto::WhatsAppPhoneNumberStatus {
            display_phone_number: text(phone, "display_phone_number"),
            verified_name: text(phone, "verified_name"),
            quality_rating: text(phone, "quality_rating"),
            code_verification_status: text(phone, "code_verification_status"),
            name_status: text(phone, "name_status"),
            messaging_limit_tier: text(phone, "messaging_limit_tier"),
            throughput_level: phone
                .and_then(|p| p.pointer("/throughput/level"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            status: text(phone, "status"),
        }),
        waba: waba.map(|_| proto::WhatsAppBusinessAccountInfo {
            id: text(waba, "id"),
            name: text(waba, "name"),
            account_review_status: text(waba, "account_review_status"),
        }),
        subscribed_apps: health
            .subscribed_apps
            .unwrap_or_default()
            .iter()
            .map(|app| {
                let data = app.get("whatsapp_business_api_data");
                proto::WhatsAppSubscribedApp {
                    app_id: text(data, "id"),
                    name: text(data, "name"),
                    override_callback_uri: text(Some(app), "override_callback_uri"),
                }
            })
            .collect(),
        subscribed_ok: health.subscribed_ok,
    }))
}

pub async fn complete_whatsapp_signup(
    accounts: &Accounts,
    caller: Caller,
    request: Request<proto::CompleteWhatsAppSignupRequest>,
) -> Result<Response<proto::CompleteWhatsAppSignupResponse>, Status> {
    let request = request.into_inner();
    let result = accounts
        .complete_whatsapp_signup(
            &caller,
            &request.code,
            &request.waba_id,
            &request.phone_number_id,
            request.division_id,
        )
        .await?;
    Ok(Response::new(signup_response(
        accounts.view(&caller, result.account),
    )))
}

/// The answer of CompleteWhatsAppSignup for the account it saved (also for a replay).
pub fn signup_response(view: AccountView) -> proto::CompleteWhatsAppSignupResponse {
    let account = &view.account;
    let setting = |key: &str| {
        account
            .config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    proto::CompleteWhatsAppSignupResponse {
        success: account.provider_state.setup_error.is_none(),
        account_key: account.account_key.clone(),
        display_name: account.display_name.clone(),
        waba_id: setting("waba_id"),
        phone_number_id: setting("phone_number_id"),
        account: Some(account_to_proto(view)),
    }
}

/// The answer of ConnectInstagram for the account it saved (also for a replay).
pub fn instagram_response(view: AccountView) -> proto::ConnectInstagramResponse {
    let username = view
        .account
        .config
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    proto::ConnectInstagramResponse {
        success: true,
        username,
        account: Some(account_to_proto(view)),
    }
}

pub async fn connect_instagram(
    accounts: &Accounts,
    caller: Caller,
    request: Request<proto::ConnectInstagramRequest>,
) -> Result<Response<proto::ConnectInstagramResponse>, Status> {
    let request = request.into_inner();
    let connected = accounts
        .connect_instagram(
            &caller,
            &request.code,
            &request.redirect_uri,
            request.division_id,
        )
        .await?;
    Ok(Response::new(instagram_response(
        accounts.view(&caller, connected.account),
    )))
}

pub async fn connect_messenger(
    accounts: &Accounts,
    caller: Caller,
    request: Request<proto::ConnectMessengerRequest>,
) -> Result<Response<proto::ConnectMessengerResponse>, Status> {
    let request = request.into_inner();
    let connected = accounts
        .connect_messenger(&caller, &request.code, &request.redirect_uri)
        .await?;
    Ok(Response::new(proto::ConnectMessengerResponse {
        user_token: connected.user_token,
        pages: connected
            .pages
            .into_iter()
            .map(|(id, name, category)| proto::MessengerPage { id, name, category })
            .collect(),
    }))
}

pub async fn subscribe_messenger_pages(
    accounts: &Accounts,
    caller: Caller,
    request: Request<proto::SubscribeMessengerPagesRequest>,
) -> Result<Response<proto::SubscribeMessengerPagesResponse>, Status> {
    let request = request.into_inner();
    let results = accounts
        .subscribe_messenger_pages(
            &caller,
            &request.user_token,
            &request.page_ids,
            request.division_id,
        )
        .await?;
    let results = results
        .into_iter()
        .map(|result| match result.outcome {
            Ok(account) => proto::MessengerPageResult {
                page_id: result.page_id,
                success: true,
                account: Some(account_to_proto(accounts.view(&caller, account))),
                ..Default::default()
            },
            Err(err) => {
                let status = Status::from(err);
                proto::MessengerPageResult {
                    page_id: result.page_id,
                    success: false,
                    account: None,
                    error_code: code_name(status.code()).to_owned(),
                    error_message: status.message().to_owned(),
                }
            }
        })
        .collect();
    Ok(Response::new(proto::SubscribeMessengerPagesResponse {
        results,
    }))
}

/// A replayed SubscribeMessengerPages answer, each page's account read again as the
/// caller may see it now: one deleted (or moved away) since is reported as such.
pub async fn refresh_page_results(
    accounts: &Accounts,
    caller: Caller,
    mut first: proto::SubscribeMessengerPagesResponse,
) -> Result<proto::SubscribeMessengerPagesResponse, Status> {
    for result in &mut first.results {
        let Some(account) = result.account.take() else {
            continue;
        };
        let id =
            parse_id(&account.id, "account.id").map_err(|v| Error::InvalidArgument(vec![v]))?;
        match accounts.get(&caller, id).await {
            Ok(view) => result.account = Some(account_to_proto(view)),
            Err(Error::NotFound { .. }) => {
                result.success = false;
                result.error_code = code_name(Code::NotFound).to_owned();
                result.error_message = "the page's account was deleted since".to_owned();
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(first)
}

pub async fn set_messenger_persistent_menu(
    accounts: &Accounts,
    caller: Caller,
    request: Request<proto::SetMessengerPersistentMenuRequest>,
) -> Result<Response<proto::SetMessengerPersistentMenuResponse>, Status> {
    let request = request.into_inner();
    let id =
        parse_id(&request.account_id, "account_id").map_err(|v| Error::InvalidArgument(vec![v]))?;
    if request.delete && !request.persistent_menu.is_empty() {
        return Err(
            Error::InvalidArgument(vec![crate::domain::FieldViolation::new(
                "persistent_menu",
                "must be empty when delete is true",
            )])
            .into(),
        );
    }
    let menu = (!request.delete).then(|| {
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
            .collect()
    });
    accounts.set_persistent_menu(&caller, id, menu).await?;
    Ok(Response::new(proto::SetMessengerPersistentMenuResponse {
        success: true,
        deleted: request.delete,
    }))
}

/// The canonical name of a gRPC code (`FAILED_PRECONDITION`), as per-item results carry.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
