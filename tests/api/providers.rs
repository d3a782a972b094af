//! The provider catalog, as any role sees it.

use patchbay_e2e::proto::{self, Channel, FieldType};
use patchbay_e2e::{Backend, TestApp, backend_tests, expect_code, violated_fields};
use patchbay_sdk::tonic::Code;

backend_tests!(
    catalog_lists_every_provider_with_its_schema,
    unknown_provider_is_not_found
);

const SLUGS: [&str; 14] = [
    "adobe_sign",
    "certisign",
    "chatwoot",
    "clicksign",
    "d4sign",
    "docusign",
    "instagram",
    "messenger",
    "openai",
    "sendgrid",
    "smtp",
    "twilio_sms",
    "whatsapp_cloud",
    "whatsapp_twilio",
];

async fn catalog_lists_every_provider_with_its_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for client in [app.admin(), app.supervisor(), app.service()] {
        let providers = client
            .integrations()
            .list_providers(proto::ListProvidersRequest {})
            .await
            .expect("list providers")
            .into_inner()
            .providers;
        let slugs: Vec<_> = providers.iter().map(|p| p.slug.as_str()).collect();
        assert_eq!(slugs, SLUGS);
        assert!(
            providers
                .iter()
                .all(|p| !p.config_schema.is_empty() && !p.name.is_empty())
        );
    }

    let chatwoot = app
        .service()
        .integrations()
        .get_provider(proto::GetProviderRequest {
            slug: "chatwoot".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .provider
        .expect("provider");
    assert_eq!(chatwoot.channel, i32::from(Channel::Chat));
    let field = |name: &str| {
        chatwoot
            .config_schema
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("field {name}"))
            .clone()
    };
    assert_eq!(field("chatwootURL").r#type, i32::from(FieldType::Url));
    assert!(field("chatwootURL").required);
    assert!(field("chatwootAccessToken").secret);
    let enabled = field("enabled").default_value.expect("default");
    assert_eq!(
        enabled.kind,
        Some(prost_types::value::Kind::BoolValue(true))
    );
    let options = field("integrationOptions");
    assert_eq!(options.r#type, i32::from(FieldType::Object));
    let start = options
        .fields
        .iter()
        .find(|f| f.name == "startConversationAs")
        .expect("nested");
    assert_eq!(start.allowed_values, ["open", "pending"]);
    assert_eq!(
        start.default_value.as_ref().and_then(|v| v.kind.clone()),
        Some(prost_types::value::Kind::StringValue("open".into()))
    );

    let twilio = app
        .admin()
        .integrations()
        .get_provider(proto::GetProviderRequest {
            slug: "whatsapp_twilio".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .provider
        .expect("provider");
    let names: Vec<_> = twilio
        .config_schema
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    for seed_field in [
        "changeKeys",
        "phone_number",
        "autoclose_hours",
        "autoclose_minutes",
        "send_autoclose_message_minutes",
        "autoclose_message",
        "post_autoclose_message",
        "account_sid",
        "auth_token",
    ] {
        assert!(names.contains(&seed_field), "{seed_field}");
    }
}

async fn unknown_provider_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut integrations = app.admin().integrations();
    expect_code(
        integrations
            .get_provider(proto::GetProviderRequest { slug: "fax".into() })
            .await,
        Code::NotFound,
    );
    let status = expect_code(
        integrations
            .get_provider(proto::GetProviderRequest {
                slug: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["slug"]);
}
