//! IntegrationService channel settings: defaults for unconfigured channels, upsert and
//! list.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{Backend, TestApp, backend_tests, expect_code, settings_config, to_struct};
use patchbay_sdk::tonic::Code;
use serde_json::json;

backend_tests!(
    unconfigured_channel_has_empty_settings,
    upsert_creates_then_updates_and_lists
);

async fn unconfigured_channel_has_empty_settings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let settings = app
        .supervisor()
        .integrations()
        .get_channel_settings(proto::GetChannelSettingsRequest {
            channel: Channel::Instagram.into(),
        })
        .await
        .expect("never configured is not an error")
        .into_inner()
        .channel_settings
        .expect("settings");
    assert_eq!(settings.channel, i32::from(Channel::Instagram));
    assert!(settings.id.is_empty());
    assert!(!settings.is_active);
    assert_eq!(settings_config(&settings), json!({}));
    assert_eq!(settings.revision, 0);
    assert!(settings.created_at.is_none());
}

async fn upsert_creates_then_updates_and_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut integrations = app.admin().integrations();

    // expected_revision 0 means "only if never configured".
    let created = integrations
        .upsert_channel_settings(proto::UpsertChannelSettingsRequest {
            channel: Channel::Email.into(),
            is_active: Some(true),
            config: Some(to_struct(json!({"from": "a@acme.com"}))),
            division_id: Some("sales".into()),
            expected_revision: Some(0),
        })
        .await
        .expect("create")
        .into_inner()
        .channel_settings
        .expect("settings");
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert!(created.is_active);
    assert_eq!(created.revision, 1);
    assert_eq!(created.division_id.as_deref(), Some("sales"));

    let updated = integrations
        .upsert_channel_settings(proto::UpsertChannelSettingsRequest {
            channel: Channel::Email.into(),
            is_active: Some(false),
            division_id: Some(String::new()),
            expected_revision: Some(1),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner()
        .channel_settings
        .expect("settings");
    assert_eq!(updated.id, created.id, "one row per channel");
    assert!(!updated.is_active);
    assert_eq!(updated.division_id, None);
    assert_eq!(updated.revision, 2);
    assert_eq!(settings_config(&updated), json!({"from": "a@acme.com"}));
    assert_eq!(updated.created_at, created.created_at);

    expect_code(
        integrations
            .upsert_channel_settings(proto::UpsertChannelSettingsRequest {
                channel: Channel::Email.into(),
                is_active: Some(true),
                expected_revision: Some(1),
                ..Default::default()
            })
            .await,
        Code::Aborted,
    );

    integrations
        .upsert_channel_settings(proto::UpsertChannelSettingsRequest {
            channel: Channel::Sms.into(),
            ..Default::default()
        })
        .await
        .expect("sms");
    let listed = integrations
        .list_channel_settings(proto::ListChannelSettingsRequest {})
        .await
        .expect("list")
        .into_inner()
        .channel_settings;
    let channels: Vec<_> = listed.iter().map(|s| s.channel).collect();
    assert_eq!(
        channels,
        [i32::from(Channel::Email), i32::from(Channel::Sms)]
    );
    let fetched = integrations
        .get_channel_settings(proto::GetChannelSettingsRequest {
            channel: Channel::Email.into(),
        })
        .await
        .expect("get")
        .into_inner()
        .channel_settings
        .expect("settings");
    assert_eq!(fetched, updated);
}
