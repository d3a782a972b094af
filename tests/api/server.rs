//! What operators use with no credentials: health and reflection.

use patchbay_e2e::{Backend, TestApp, backend_tests};
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

backend_tests!(
    health_reports_serving,
    reflection_lists_every_service,
    request_ids_come_back_on_answers_and_errors
);

async fn health_reports_serving(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut health = HealthClient::new(app.channel());
    for service in [
        "",
        "patchbay.v1.AccountService",
        "patchbay.v1.IntegrationService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("health of {service:?}: {s:?}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.v1.Nothing".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), patchbay_sdk::tonic::Code::NotFound);
}

async fn reflection_lists_every_service(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let expected = [
        "grpc.health.v1.Health",
        "patchbay.v1.AccountService",
        "patchbay.v1.IntegrationService",
        "patchbay.v1.AuditService",
    ];

    use tonic_reflection::pb::v1;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1")
        .into_inner();
    let response = responses.next().await.expect("a response").expect("ok");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for service in expected {
        assert!(
            names.iter().any(|n| n == service),
            "v1 lists {service}: {names:?}"
        );
    }

    use tonic_reflection::pb::v1alpha;
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "patchbay.v1.AccountService".into(),
            ),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let response = responses.next().await.expect("a response").expect("ok");
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        response.message_response
    else {
        panic!("unexpected reflection answer");
    };
    assert!(
        !files.file_descriptor_proto.is_empty(),
        "the service's file is served"
    );
}

async fn request_ids_come_back_on_answers_and_errors(backend: Backend) {
    use patchbay_e2e::proto;
    use patchbay_sdk::tonic::{Code, Request};
    use patchbay_sdk::tonic_types::StatusExt;

    let app = TestApp::spawn(backend).await;
    let with_id = |id: &str| {
        let mut request = Request::new(proto::CreateAccountRequest {
            channel: proto::Channel::Sms.into(),
            account_key: "bad key".into(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().expect("header"));
        request
    };
    let status = app
        .admin()
        .accounts()
        .create_account(with_id("req-err-0001"))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    assert_eq!(
        details.request_info().map(|r| r.request_id.as_str()),
        Some("req-err-0001")
    );
    assert!(
        details.bad_request().is_some(),
        "the field violations are kept"
    );

    let status = app
        .with_token("nope")
        .accounts()
        .create_account(with_id("req-err-0002"))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status
            .get_error_details()
            .request_info()
            .map(|r| r.request_id.clone()),
        Some("req-err-0002".to_owned())
    );

    let mut request = Request::new(proto::ListAccountsRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "req-ok-0003".parse().expect("header"));
    let response = app
        .admin()
        .accounts()
        .list_accounts(request)
        .await
        .expect("list");
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-ok-0003")
    );
    let generated = app
        .admin()
        .accounts()
        .list_accounts(proto::ListAccountsRequest::default())
        .await
        .expect("list");
    assert!(
        generated.metadata().get("x-request-id").is_some(),
        "an id is made up when none is sent"
    );
}
