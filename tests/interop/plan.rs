//! What each client is asked to do, and what it must then see. The requests are
//! encoded here with prost (and shown to buf curl as JSON, through the descriptor
//! set); the clients send them as they are and report what came back.

use std::collections::BTreeMap;

use base64::Engine;
use patchbay_e2e::proto::{self, Channel};
use patchbay_sdk::tonic::Code;
use prost::Message;
use serde::Serialize;

use crate::fixtures::Fixture;

const ACCOUNTS: &str = "/patchbay.v1.AccountService/";
const INTEGRATIONS: &str = "/patchbay.v1.IntegrationService/";
const AUDIT: &str = "/patchbay.v1.AuditService/";
const WEBHOOKS: &str = "/patchbay.v1.WebhookService/";

/// One call, as the clients read it from the plan.
#[derive(Serialize, Clone, Debug)]
pub struct Call {
    pub name: String,
    pub method: String,
    pub stream: bool,
    pub token: Option<String>,
    /// The request's bytes, base64.
    pub request: String,
    pub compress: bool,
    /// The call's deadline; 0 for none (a watch held until the server stops).
    pub timeout_ms: u64,
    /// Streams: cancel after this many messages (`None`: read to the end).
    pub take: Option<usize>,
    pub metadata: BTreeMap<String, String>,
}

/// What a client must have seen.
#[derive(Clone, Debug)]
pub enum Expect {
    /// OK, with at least one answer that decodes as the method's answer type.
    Ok,
    /// This code.
    Code(Code),
    /// INVALID_ARGUMENT naming exactly these fields, decoded by the client.
    Violations(&'static [&'static str]),
}

#[derive(Clone, Debug)]
pub struct Case {
    pub call: Call,
    pub expect: Expect,
    /// Also check the answer carried an `x-request-id`.
    pub request_id: bool,
}

pub fn encode(message: &impl Message) -> String {
    base64::engine::general_purpose::STANDARD.encode(message.encode_to_vec())
}

pub fn call(name: &str, method: &str, token: Option<&str>, request: &impl Message) -> Call {
    Call {
        name: name.to_owned(),
        method: method.to_owned(),
        stream: method.ends_with("/WatchDefaultAccounts")
            || method.ends_with("/WatchAccountEvents")
            || method.ends_with("/Watch"),
        token: token.map(str::to_owned),
        request: encode(request),
        compress: false,
        timeout_ms: 10_000,
        take: None,
        metadata: BTreeMap::new(),
    }
}

fn ok(call: Call) -> Case {
    let call = if call.stream {
        Call {
            take: Some(1),
            ..call
        }
    } else {
        call
    };
    Case {
        call,
        expect: Expect::Ok,
        request_id: false,
    }
}

fn fails(call: Call, code: Code) -> Case {
    Case {
        call,
        expect: Expect::Code(code),
        request_id: false,
    }
}

fn named(name: &str, method: &str) -> String {
    format!("{name}:{}", method.rsplit('/').next().unwrap_or_default())
}

/// Every RPC of the descriptor set once with success, then the errors every client
/// must tell apart.
pub fn cases(f: &Fixture) -> Vec<Case> {
    let (admin, service) = (Some(f.admin.as_str()), Some(f.service.as_str()));
    let gateway = Some(f.gateway.as_str());
    let a = |m: &str| format!("{ACCOUNTS}{m}");
    let i = |m: &str| format!("{INTEGRATIONS}{m}");
    let id = |id: &str| id.to_owned();
    let mut cases = Vec::new();
    let list = proto::ListAccountsRequest::default();

    let get_default = proto::GetDefaultAccountRequest {
        channel: Channel::Email.into(),
        division_id: String::new(),
        no_fallback: false,
    };
    let watch_defaults = proto::WatchDefaultAccountsRequest {
        channels: vec![Channel::Email.into()],
        division_id: String::new(),
    };
    // Every RPC once, with success.
    {
        let mut push =
            |name: &str, method: String, token: Option<&str>, request: &dyn EncodedRequest| {
                cases.push(ok(Call {
                    name: named(name, &method),
                    ..call_raw(&method, token, request.bytes())
                }));
            };
        push("ok", a("ListAccounts"), service, &list);
        push(
            "ok",
            a("CreateAccount"),
            admin,
            &proto::CreateAccountRequest {
                channel: Channel::Email.into(),
                account_key: format!("created-by-{}", f.tag),
                display_name: "Created".into(),
                config: Some(patchbay_e2e::to_struct(
                    serde_json::json!({"from": "hello@acme.test"}),
                )),
                ..Default::default()
            },
        );
        push(
            "ok",
            a("GetAccount"),
            service,
            &proto::GetAccountRequest {
                id: id(&f.default_email),
            },
        );
        push(
            "ok",
            a("UpdateAccount"),
            admin,
            &proto::UpdateAccountRequest {
                id: id(&f.other_email),
                display_name: Some("Renamed".into()),
                ..Default::default()
            },
        );
        push(
            "ok",
            a("DeleteAccount"),
            admin,
            &proto::DeleteAccountRequest {
                id: id(&f.doomed_account),
                expected_revision: None,
            },
        );
        push(
            "ok",
            a("SetDefaultAccount"),
            admin,
            &proto::SetDefaultAccountRequest {
                id: id(&f.default_email),
                expected_revision: None,
            },
        );
        push("ok", a("GetDefaultAccount"), service, &get_default);
        // The other email account as the workspace's email fallback: the watch after it
        // carries the list in its snapshot (checked in `check`).
        push(
            "ok",
            a("SetFallbackAccounts"),
            admin,
            &proto::SetFallbackAccountsRequest {
                channel: Channel::Email.into(),
                division_id: String::new(),
                account_ids: vec![id(&f.other_email)],
            },
        );
        push(
            "ok",
            a("GetFallbackAccounts"),
            service,
            &proto::GetFallbackAccountsRequest {
                channel: Channel::Email.into(),
                division_id: String::new(),
            },
        );
        push("ok", a("WatchDefaultAccounts"), service, &watch_defaults);
        push(
            "ok",
            a("WatchAccountEvents"),
            service,
            &proto::WatchAccountEventsRequest {
                after_revision: Some(0),
                ..Default::default()
            },
        );
        push(
            "ok",
            a("GetAccountCredentials"),
            service,
            &proto::GetAccountCredentialsRequest {
                id: id(&f.default_email),
            },
        );
        push(
            "ok",
            a("GetWhatsAppHealth"),
            admin,
            &proto::GetWhatsAppHealthRequest {
                id: id(&f.whatsapp),
            },
        );
        push(
            "ok",
            a("CompleteWhatsAppSignup"),
            admin,
            &proto::CompleteWhatsAppSignupRequest {
                code: format!("wa-{}", f.tag),
                waba_id: f.waba_id.clone(),
                phone_number_id: f.signup_phone.clone(),
                division_id: None,
                event: proto::WhatsappSignupEvent::Finish.into(),
            },
        );
        push(
            "ok",
            a("ConnectInstagram"),
            admin,
            &proto::ConnectInstagramRequest {
                code: format!("ig-{}", f.tag),
                redirect_uri: crate::REDIRECT.into(),
                division_id: None,
            },
        );
        push(
            "ok",
            a("ConnectMessenger"),
            admin,
            &proto::ConnectMessengerRequest {
                code: format!("fb-{}", f.tag),
                redirect_uri: crate::REDIRECT.into(),
            },
        );
        push(
            "ok",
            a("SubscribeMessengerPages"),
            admin,
            &proto::SubscribeMessengerPagesRequest {
                user_token: f.messenger_handle.clone(),
                page_ids: vec![crate::meta::page_id(&f.tag, 2)],
                division_id: None,
            },
        );
        push(
            "ok",
            a("SetMessengerPersistentMenu"),
            admin,
            &proto::SetMessengerPersistentMenuRequest {
                account_id: id(&f.page_account),
                persistent_menu: Vec::new(),
                delete: true,
            },
        );
        // IntegrationService
        push(
            "ok",
            i("ListChannelSettings"),
            admin,
            &proto::ListChannelSettingsRequest {},
        );
        push(
            "ok",
            i("GetChannelSettings"),
            admin,
            &proto::GetChannelSettingsRequest {
                channel: Channel::Email.into(),
            },
        );
        push(
            "ok",
            i("UpsertChannelSettings"),
            admin,
            &proto::UpsertChannelSettingsRequest {
                channel: Channel::Email.into(),
                is_active: Some(true),
                ..Default::default()
            },
        );
        push(
            "ok",
            i("ListProviders"),
            admin,
            &proto::ListProvidersRequest {},
        );
        push(
            "ok",
            i("GetProvider"),
            admin,
            &proto::GetProviderRequest {
                slug: "sendgrid".into(),
            },
        );
        push(
            "ok",
            i("CreateIntegration"),
            admin,
            &proto::CreateIntegrationRequest {
                provider: "openai".into(),
                name: format!("AI {}", f.tag),
                config: Some(patchbay_e2e::to_struct(
                    serde_json::json!({"api_key": "sk-interop"}),
                )),
                ..Default::default()
            },
        );
        push(
            "ok",
            i("ListIntegrations"),
            admin,
            &proto::ListIntegrationsRequest::default(),
        );
        push(
            "ok",
            i("GetIntegration"),
            admin,
            &proto::GetIntegrationRequest {
                id: id(&f.integration),
            },
        );
        push(
            "ok",
            i("UpdateIntegration"),
            admin,
            &proto::UpdateIntegrationRequest {
                id: id(&f.integration),
                name: Some("Mail, renamed".into()),
                ..Default::default()
            },
        );
        push(
            "ok",
            i("SetPrimaryIntegration"),
            admin,
            &proto::SetPrimaryIntegrationRequest {
                id: id(&f.integration),
                ..Default::default()
            },
        );
        push(
            "ok",
            i("CheckIntegration"),
            admin,
            &proto::CheckIntegrationRequest {
                id: id(&f.integration),
            },
        );
        push(
            "ok",
            i("DeleteIntegration"),
            admin,
            &proto::DeleteIntegrationRequest {
                id: id(&f.doomed_integration),
                ..Default::default()
            },
        );
        push(
            "ok",
            format!("{AUDIT}ListAuditEvents"),
            admin,
            &proto::ListAuditEventsRequest::default(),
        );
        push(
            "ok",
            format!("{WEBHOOKS}RouteWebhook"),
            gateway,
            &proto::RouteWebhookRequest {
                method: "GET".into(),
                url: format!(
                    "{}/webhooks/meta?hub.mode=subscribe&hub.verify_token={}&hub.challenge=1158201444",
                    patchbay_e2e::PUBLIC_BASE_URL,
                    patchbay_e2e::META_WEBHOOK_VERIFY_TOKEN
                ),
                ..Default::default()
            },
        );
        push(
            "ok",
            format!("{WEBHOOKS}VerifyWebhookSubscription"),
            service,
            &proto::VerifyWebhookSubscriptionRequest {
                channel: Channel::Messenger.into(),
                account_key: f.page_key.clone(),
                mode: "subscribe".into(),
                verify_token: f.page_verify_token.clone(),
                challenge: "1158201444".into(),
            },
        );
        push(
            "ok",
            format!("{WEBHOOKS}VerifyWebhookSignature"),
            service,
            &crate::fixtures::signed_meta_webhook(&f.page_key),
        );
        push(
            "ok",
            "/grpc.health.v1.Health/Check".to_owned(),
            None,
            &tonic_health::pb::HealthCheckRequest::default(),
        );
    }

    // The answer's x-request-id, on a plain call.
    if let Some(case) = cases
        .iter_mut()
        .find(|c| c.call.method.ends_with("/GetDefaultAccount"))
    {
        case.request_id = true;
    }

    // Compressed requests; ListProviders' answer is large enough to come back
    // compressed too.
    for (method, request) in [
        (a("GetDefaultAccount"), encode(&get_default)),
        (i("ListProviders"), encode(&proto::ListProvidersRequest {})),
    ] {
        cases.push(ok(Call {
            name: named("gzip", &method),
            compress: true,
            ..call_raw(
                &method,
                if method.contains("Providers") {
                    admin
                } else {
                    service
                },
                request,
            )
        }));
    }

    // Refusals every client must tell apart.
    let list_accounts = a("ListAccounts");
    cases.push(fails(
        Call {
            name: "no_token:ListAccounts".into(),
            ..call_raw(&list_accounts, None, encode(&list))
        },
        Code::Unauthenticated,
    ));
    cases.push(fails(
        Call {
            name: "bad_token:ListAccounts".into(),
            ..call_raw(&list_accounts, Some("not.a.jwt"), encode(&list))
        },
        Code::Unauthenticated,
    ));
    cases.push(fails(
        Call {
            name: "supervisor_may_not:CreateAccount".into(),
            ..call_raw(
                &a("CreateAccount"),
                Some(&f.supervisor),
                encode(&proto::CreateAccountRequest::default()),
            )
        },
        Code::PermissionDenied,
    ));
    cases.push(Case {
        call: Call {
            name: "invalid:CreateAccount".into(),
            ..call_raw(
                &a("CreateAccount"),
                admin,
                encode(&proto::CreateAccountRequest {
                    channel: Channel::Email.into(),
                    account_key: "x".repeat(300),
                    display_name: "y".repeat(300),
                    division_id: Some("\u{0}".into()),
                    ..Default::default()
                }),
            )
        },
        expect: Expect::Violations(&["division_id", "account_key", "display_name"]),
        request_id: false,
    });

    // Server streams: every error arrives with its status.
    let watch_defaults_method = a("WatchDefaultAccounts");
    let watch_events_method = a("WatchAccountEvents");
    let stream = |name: &str, method: &str, token: Option<&str>, request: String| Call {
        name: name.to_owned(),
        ..call_raw(method, token, request)
    };
    cases.push(fails(
        stream(
            "watch_no_token:WatchDefaultAccounts",
            &watch_defaults_method,
            None,
            encode(&watch_defaults),
        ),
        Code::Unauthenticated,
    ));
    cases.push(fails(
        stream(
            "watch_bad_token:WatchDefaultAccounts",
            &watch_defaults_method,
            Some("not.a.jwt"),
            encode(&watch_defaults),
        ),
        Code::Unauthenticated,
    ));
    cases.push(Case {
        call: stream(
            "watch_unknown_channel:WatchDefaultAccounts",
            &watch_defaults_method,
            service,
            encode(&proto::WatchDefaultAccountsRequest {
                channels: vec![99],
                division_id: String::new(),
            }),
        ),
        expect: Expect::Violations(&["channels[0]"]),
        request_id: false,
    });
    cases.push(fails(
        stream(
            "watch_gateway_may_not:WatchAccountEvents",
            &watch_events_method,
            gateway,
            encode(&proto::WatchAccountEventsRequest::default()),
        ),
        Code::PermissionDenied,
    ));
    cases.push(fails(
        stream(
            "watch_from_the_future:WatchAccountEvents",
            &watch_events_method,
            service,
            encode(&proto::WatchAccountEventsRequest {
                after_revision: Some(1_000_000),
                ..Default::default()
            }),
        ),
        Code::FailedPrecondition,
    ));
    cases.push(fails(
        stream(
            "watch_no_longer_kept:WatchAccountEvents",
            &watch_events_method,
            Some(&f.pruned_service),
            encode(&proto::WatchAccountEventsRequest {
                after_revision: Some(0),
                ..Default::default()
            }),
        ),
        Code::FailedPrecondition,
    ));
    cases.push(fails(
        Call {
            timeout_ms: 700,
            ..stream(
                "watch_deadline:WatchDefaultAccounts",
                &watch_defaults_method,
                service,
                encode(&watch_defaults),
            )
        },
        Code::DeadlineExceeded,
    ));
    cases
}

/// A request already encoded, or a message to encode.
pub trait EncodedRequest {
    fn bytes(&self) -> String;
}

impl<M: Message> EncodedRequest for M {
    fn bytes(&self) -> String {
        encode(self)
    }
}

pub fn call_raw(method: &str, token: Option<&str>, request: String) -> Call {
    Call {
        request,
        ..call("", method, token, &())
    }
}

/// A gzip-compressed CreateAccount whose 6 MiB display name inflates past the 4 MiB
/// message limit: RESOURCE_EXHAUSTED proves the client compressed it (sent plain, it
/// would be refused by its length before any inflating).
pub fn gzip_bomb(f: &Fixture) -> Case {
    Case {
        call: Call {
            name: "gzip_bomb:CreateAccount".into(),
            compress: true,
            ..call_raw(
                &format!("{ACCOUNTS}CreateAccount"),
                Some(&f.admin),
                encode(&proto::CreateAccountRequest {
                    channel: Channel::Email.into(),
                    account_key: "bomb".into(),
                    display_name: "a".repeat(6 << 20),
                    ..Default::default()
                }),
            )
        },
        expect: Expect::Code(Code::ResourceExhausted),
        request_id: false,
    }
}
