//! A deleted account stops its webhooks at Meta (#27, item 3): its callback is removed
//! with the stored token, best effort, and what came of it is recorded in the delete's
//! audit event and in the DELETED account event. A failure never blocks the delete.

use patchbay_e2e::proto::{self, AccountEventKind, Channel};
use patchbay_e2e::{
    Backend, TestApp, backend_tests, create, graph_path, new_account, new_whatsapp,
    spawn_with_fake_meta, test_meta,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    a_deleted_number_and_page_stop_their_webhooks_at_meta,
    a_refused_release_is_recorded_and_the_delete_goes_through,
    another_number_releases_the_former_one
);

async fn app_with_fake(
    backend: Backend,
) -> (TestApp, patchbay_e2e::meta_fake::FakeMeta, MockServer) {
    spawn_with_fake_meta(backend, test_meta(), None).await
}

/// The DELETE audit event of `id`, and the DELETED account event's reason.
async fn delete_records(app: &TestApp, id: &str) -> (String, String) {
    let audit = app
        .admin()
        .audit()
        .list_audit_events(proto::ListAuditEventsRequest {
            record_id: id.to_owned(),
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner();
    let deleted = audit
        .events
        .iter()
        .find(|event| event.action == i32::from(proto::AuditAction::Delete))
        .expect("a delete event");
    let mut stream = app
        .service()
        .accounts()
        .watch_account_events(proto::WatchAccountEventsRequest {
            after_revision: Some(0),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    loop {
        let event = stream.message().await.expect("stream").expect("open");
        if event.kind == i32::from(AccountEventKind::Deleted)
            && event.account.as_ref().is_some_and(|a| a.id == id)
        {
            return (deleted.outcome.clone(), event.reason);
        }
    }
}

async fn a_deleted_number_and_page_stop_their_webhooks_at_meta(backend: Backend) {
    let (app, fake, _meta) = app_with_fake(backend).await;
    fake.add_number("8001", "900000001", None);
    let number = create(&app.admin(), new_whatsapp("8001", "EAAG-eight")).await;
    assert_eq!(fake.webhook_target("8001"), number.webhook_url);
    app.admin()
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: number.id.clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");
    // Meta now sends the number's webhooks to the app's callback, where nothing owns it.
    assert_ne!(fake.webhook_target("8001"), number.webhook_url);
    let (outcome, reason) = delete_records(&app, &number.id).await;
    assert_eq!(outcome, "webhook callback removed at Meta");
    assert_eq!(reason, outcome);

    let page = create(
        &app.admin(),
        new_account(
            Channel::Messenger,
            "301",
            json!({"page_id": "301", "page_access_token": "EAAP-301"}),
        ),
    )
    .await;
    app.admin()
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: page.id.clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");
    assert_eq!(fake.unsubscribed(), ["301"]);
}

async fn a_refused_release_is_recorded_and_the_delete_goes_through(backend: Backend) {
    let (app, _fake, meta) = app_with_fake(backend).await;
    // Meta rejects the stored page token (Graph API, "Handling errors": 190).
    Mock::given(method("DELETE"))
        .and(path(graph_path("302/subscribed_apps")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: The session has been invalidated.",
            "type": "OAuthException", "code": 190, "error_subcode": 460, "fbtrace_id": "AbE"}})))
        .expect(1)
        .mount(&meta)
        .await;
    let page = create(
        &app.admin(),
        new_account(
            Channel::Messenger,
            "302",
            json!({"page_id": "302", "page_access_token": "EAAP-302-secret"}),
        ),
    )
    .await;
    app.admin()
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: page.id.clone(),
            ..Default::default()
        })
        .await
        .expect("the delete goes through");
    let (outcome, reason) = delete_records(&app, &page.id).await;
    assert!(
        outcome.contains("rejected the token") && outcome.contains("190"),
        "{outcome}"
    );
    assert!(!outcome.contains("EAAP-302-secret"));
    assert_eq!(reason, outcome);
    assert!(
        app.admin()
            .accounts()
            .get_account(proto::GetAccountRequest { id: page.id })
            .await
            .is_err(),
        "deleted"
    );
}

/// An update giving the account another number removes the former number's callback,
/// as a delete would, and sets the new one's.
async fn another_number_releases_the_former_one(backend: Backend) {
    let (app, fake, _meta) = app_with_fake(backend).await;
    fake.add_number("8101", "900000001", None);
    fake.add_number("8102", "900000001", None);
    let account = create(&app.admin(), new_whatsapp("8101", "EAAG-moving")).await;
    assert_eq!(fake.webhook_target("8101"), account.webhook_url);
    let moved = patchbay_e2e::update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            config: Some(patchbay_e2e::to_struct(json!({"phone_number_id": "8102"}))),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(fake.webhook_target("8102"), moved.webhook_url);
    assert_ne!(fake.webhook_target("8101"), account.webhook_url);
}
