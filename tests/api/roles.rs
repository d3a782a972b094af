//! The role table, walked: every method of the descriptor set (so RPCs added later are
//! covered), called with an empty request by every role, is refused by role exactly
//! where the role table of docs/api.md says "no" — and a method the table does not list fails the
//! walk.

use std::collections::BTreeMap;

use patchbay_e2e::{Backend, TestApp, WORKSPACE, backend_tests};
use patchbay_sdk::codec::PatchbayCodec;
use patchbay_sdk::tonic::codegen::http::uri::PathAndQuery;
use patchbay_sdk::tonic::{Code, Request, Status};
use prost::Message;

backend_tests!(every_method_is_open_to_exactly_the_roles_the_api_doc_lists);

/// (service, method, server streaming) of every Patchbay RPC.
fn methods() -> Vec<(String, String, bool)> {
    let set = prost_types::FileDescriptorSet::decode(patchbay_sdk::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut methods = Vec::new();
    for file in set.file {
        if file.package() != "patchbay.v1" {
            continue;
        }
        for service in file.service {
            let service_name = service.name().to_owned();
            for method in service.method {
                methods.push((
                    service_name.clone(),
                    method.name().to_owned(),
                    method.server_streaming(),
                ));
            }
        }
    }
    methods
}

/// "Service.Method" → (admin, supervisor, service), from the role table of docs/api.md.
fn role_table() -> BTreeMap<String, [bool; 3]> {
    let api_doc = include_str!("../../docs/api.md");
    let mut table = BTreeMap::new();
    let start = api_doc
        .find("| RPC | admin | supervisor | service |")
        .expect("the table");
    for line in api_doc[start..].lines().skip(2) {
        if !line.starts_with("| `") {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let roles = [cells[2] == "yes", cells[3] == "yes", cells[4] == "yes"];
        let mut service = String::new();
        for name in cells[1].split('`').skip(1).step_by(2) {
            let method = match name.split_once('.') {
                Some((svc, method)) => {
                    service = svc.to_owned();
                    method
                }
                None => name,
            };
            table.insert(format!("{service}.{method}"), roles);
        }
    }
    table
}

async fn call(
    app: &TestApp,
    token: &str,
    service: &str,
    method: &str,
    streaming: bool,
) -> Result<(), Status> {
    let mut grpc = patchbay_sdk::tonic::client::Grpc::new(app.channel());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::try_from(format!("/patchbay.v1.{service}/{method}")).expect("path");
    let mut request = Request::new(());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let codec = PatchbayCodec::<(), ()>::default();
    if streaming {
        grpc.server_streaming(request, path, codec)
            .await
            .map(|_| ())
    } else {
        grpc.unary(request, path, codec).await.map(|_| ())
    }
}

async fn every_method_is_open_to_exactly_the_roles_the_api_doc_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let table = role_table();
    let methods = methods();
    assert!(methods.len() >= 30, "the descriptor set lists every RPC");
    for (service, method, streaming) in methods {
        let name = format!("{service}.{method}");
        let allowed = table
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is missing from the role table of docs/api.md"));
        for (index, role) in ["admin", "supervisor", "service"].into_iter().enumerate() {
            let token = patchbay_e2e::token(role, WORKSPACE, None);
            let result = call(&app, &token, &service, &method, streaming).await;
            let refused_by_role = matches!(&result, Err(status)
                if status.code() == Code::PermissionDenied && status.message().contains("may not call"));
            assert_eq!(
                !refused_by_role, allowed[index],
                "{name} as {role}: {result:?}"
            );
        }
        // A role Patchbay does not know may call nothing.
        let guest = patchbay_e2e::token("guest", WORKSPACE, None);
        let result = call(&app, &guest, &service, &method, streaming).await;
        assert!(
            matches!(&result, Err(status) if status.code() == Code::PermissionDenied),
            "{name} as guest: {result:?}"
        );
    }
    // A method in no table is refused for every role, before any handler.
    let result = call(
        &app,
        &patchbay_e2e::token("admin", WORKSPACE, None),
        "AccountService",
        "DropEverything",
        false,
    )
    .await;
    assert!(
        matches!(&result, Err(status) if status.code() == Code::PermissionDenied),
        "{result:?}"
    );
}
