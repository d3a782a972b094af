//! Ordered fallbacks per scope (#30, item 3): SetFallbackAccounts replaces a scope's
//! list (admin only, idempotent, audited), every bad entry named `account_ids[i]`, an
//! id the scope cannot see NOT_FOUND as a missing one; an account that becomes the
//! scope's default, or is deleted, deactivated or moved out of the scope, leaves it;
//! watchers of the defaults are told of each list as it changes.

use patchbay_e2e::proto::watch_default_accounts_response::Event;
use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, backend_tests, create, expect_code, new_account, update,
    violated_fields,
};
use patchbay_sdk::Client;
use patchbay_sdk::tonic::{Code, Request, Status, Streaming};
use serde_json::json;

backend_tests!(
    a_scope_s_list_is_kept_in_order_and_every_bad_entry_is_named,
    an_account_leaves_the_lists_it_no_longer_belongs_in,
    a_division_s_watcher_is_told_only_of_its_own_and_the_workspace_s_lists
);

async fn sms(client: &Client, key: &str, division: Option<&str>) -> proto::Account {
    let mut request = new_account(Channel::Sms, key, json!({"from": key}));
    request.division_id = division.map(str::to_owned);
    create(client, request).await
}

async fn set(client: &Client, division: &str, ids: &[&str]) -> Result<Vec<proto::Account>, Status> {
    client
        .accounts()
        .set_fallback_accounts(proto::SetFallbackAccountsRequest {
            channel: Channel::Sms.into(),
            division_id: division.to_owned(),
            account_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        })
        .await
        .map(|answer| answer.into_inner().accounts)
}

async fn listed(client: &Client, division: &str) -> Vec<String> {
    client
        .accounts()
        .get_fallback_accounts(proto::GetFallbackAccountsRequest {
            channel: Channel::Sms.into(),
            division_id: division.to_owned(),
        })
        .await
        .expect("the list")
        .into_inner()
        .accounts
        .into_iter()
        .map(|account| account.id)
        .collect()
}

fn ids(accounts: &[proto::Account]) -> Vec<String> {
    accounts.iter().map(|account| account.id.clone()).collect()
}

async fn a_scope_s_list_is_kept_in_order_and_every_bad_entry_is_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let default = sms(&admin, "+15550000001", None).await;
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: default.id.clone(),
            is_default: Some(true),
            ..Default::default()
        },
    )
    .await;
    let first = sms(&admin, "+15550000002", None).await;
    let second = sms(&admin, "+15550000003", None).await;
    let sales_only = sms(&admin, "+15550000004", Some("sales")).await;

    // In order, as asked; read back the same.
    let stored = set(&admin, "", &[&second.id, &first.id])
        .await
        .expect("set");
    assert_eq!(ids(&stored), [second.id.clone(), first.id.clone()]);
    assert_eq!(
        listed(&admin, "").await,
        [second.id.clone(), first.id.clone()]
    );
    assert_eq!(
        listed(&app.service(), "").await.len(),
        2,
        "services read it"
    );

    // Every bad entry, named by its index.
    let eleven: Vec<String> = (0..11).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let status = expect_code(set(&admin, "", &eleven).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["account_ids[10]"]);
    let status = expect_code(
        set(&admin, "", &[&first.id, &first.id, "not-an-id"]).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["account_ids[1]", "account_ids[2]"]
    );
    let email = create(
        &admin,
        new_account(
            Channel::Email,
            "ops@acme.example",
            json!({"from_name": "Ops"}),
        ),
    )
    .await;
    let status = expect_code(
        set(&admin, "", &[&first.id, &email.id]).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["account_ids[1]"],
        "another channel"
    );
    let status = expect_code(set(&admin, "", &[&default.id]).await, Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["account_ids[0]"],
        "the scope's default"
    );
    // A division's account is not in the workspace's scope; another workspace's is
    // nowhere: both as missing as a made-up id.
    let theirs = sms(
        &app.client("admin", OTHER_WORKSPACE, None),
        "+15550000009",
        None,
    )
    .await;
    for unseen in [
        &sales_only.id,
        &theirs.id,
        &uuid::Uuid::now_v7().to_string(),
    ] {
        let status = expect_code(set(&admin, "", &[unseen]).await, Code::NotFound);
        assert!(!status.message().contains("sales"), "{status:?}");
    }
    // Nothing of a refused list was written.
    assert_eq!(
        listed(&admin, "").await,
        [second.id.clone(), first.id.clone()]
    );

    // A division's scope holds its own and workspace-wide accounts.
    let stored = set(&admin, "sales", &[&sales_only.id, &first.id])
        .await
        .expect("set");
    assert_eq!(ids(&stored), [sales_only.id.clone(), first.id.clone()]);
    // A division's admin writes its own division's list, no other.
    let sales_admin = app.client("admin", patchbay_e2e::WORKSPACE, Some("sales"));
    assert!(
        set(&sales_admin, "", &[&first.id]).await.is_ok(),
        "its own division"
    );
    assert_eq!(
        listed(&sales_admin, "").await,
        std::slice::from_ref(&first.id)
    );
    expect_code(
        set(&sales_admin, "support", &[]).await,
        Code::PermissionDenied,
    );
    // Admin only.
    expect_code(set(&app.service(), "", &[]).await, Code::PermissionDenied);
    expect_code(
        set(&app.supervisor(), "", &[]).await,
        Code::PermissionDenied,
    );

    // Idempotent: the same key answers as the first call, and writes once.
    let keyed = |ids: Vec<String>| {
        let mut request = Request::new(proto::SetFallbackAccountsRequest {
            channel: Channel::Sms.into(),
            division_id: String::new(),
            account_ids: ids,
        });
        request
            .metadata_mut()
            .insert("idempotency-key", "fallbacks-1".parse().expect("header"));
        request
    };
    let first_answer = admin
        .accounts()
        .set_fallback_accounts(keyed(vec![first.id.clone()]))
        .await
        .expect("first")
        .into_inner();
    let again = admin
        .accounts()
        .set_fallback_accounts(keyed(vec![first.id.clone()]))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(again, first_answer);

    // An empty list clears it.
    assert!(set(&admin, "", &[]).await.expect("cleared").is_empty());
    assert!(listed(&admin, "").await.is_empty());

    // One account stands in for 32 scopes at most (each write of it tells every list's
    // watchers): the 33rd list naming it is refused, naming the entry.
    let hub = sms(&admin, "+15550000099", None).await;
    for n in 0..32 {
        set(&admin, &format!("branch-{n}"), &[&hub.id])
            .await
            .expect("room");
    }
    let status = expect_code(
        set(&admin, "branch-32", &[&second.id, &hub.id]).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["account_ids[1]"]);
    assert!(
        listed(&admin, "branch-32").await.is_empty(),
        "nothing written"
    );
    // Replacing one of its lists is no new list.
    set(&admin, "branch-0", &[&second.id, &hub.id])
        .await
        .expect("its own list again");
}

/// Every message a watch gets until it has been quiet for half a second.
async fn drain(
    watch: &mut Streaming<proto::WatchDefaultAccountsResponse>,
) -> Vec<proto::WatchDefaultAccountsResponse> {
    let mut messages = Vec::new();
    while let Ok(message) =
        tokio::time::timeout(std::time::Duration::from_millis(500), watch.message()).await
    {
        messages.push(message.expect("healthy").expect("open"));
    }
    messages
}

/// Each list a watch was told of, in order: (division, ids).
fn lists_told(messages: &[proto::WatchDefaultAccountsResponse]) -> Vec<(String, Vec<String>)> {
    messages
        .iter()
        .filter_map(|message| match &message.event {
            Some(Event::FallbacksChanged(list)) => Some((
                list.division_id.clone().unwrap_or_default(),
                ids(&list.accounts),
            )),
            _ => None,
        })
        .collect()
}

async fn an_account_leaves_the_lists_it_no_longer_belongs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    // A watcher of the SMS defaults is told of each list as it changes.
    let mut watch = app
        .service()
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest {
            channels: vec![Channel::Sms.into()],
            division_id: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = drain(&mut watch).await;
    assert!(
        matches!(
            first[..],
            [proto::WatchDefaultAccountsResponse {
                event: Some(Event::Snapshot(_)),
                ..
            }]
        ),
        "{first:?}"
    );
    let becomes_default = sms(&admin, "+15550000011", Some("sales")).await;
    let deactivated = sms(&admin, "+15550000012", None).await;
    let deleted = sms(&admin, "+15550000013", None).await;
    let moved = sms(&admin, "+15550000014", Some("sales")).await;
    let stays = sms(&admin, "+15550000015", None).await;
    let all = [
        becomes_default.id.as_str(),
        &deactivated.id,
        &deleted.id,
        &moved.id,
        &stays.id,
    ];
    set(&admin, "sales", &all).await.expect("set");
    set(&admin, "", &[&deactivated.id, &stays.id])
        .await
        .expect("set");
    let all_ids: Vec<String> = all.iter().map(|id| (*id).to_owned()).collect();
    assert_eq!(
        lists_told(&drain(&mut watch).await),
        [
            ("sales".to_owned(), all_ids.clone()),
            (
                String::new(),
                vec![deactivated.id.clone(), stays.id.clone()]
            ),
        ]
    );

    admin
        .set_default_account(&becomes_default.id)
        .await
        .expect("default");
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: deactivated.id.clone(),
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await;
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: deleted.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: moved.id.clone(),
            division_id: Some("support".to_owned()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        listed(&admin, "sales").await,
        std::slice::from_ref(&stays.id)
    );
    assert_eq!(listed(&admin, "").await, std::slice::from_ref(&stays.id));
    // Each write that took an account out told the watcher of each list it left (five
    // lists in all), the new default's scope first as a default; each list as it is
    // when told, which may already be a later write's (a change is state, not a
    // delta), so the last told of each scope is as it ends. Revisions only grow.
    let messages = drain(&mut watch).await;
    assert!(
        messages.windows(2).all(|w| w[0].revision < w[1].revision),
        "{messages:?}"
    );
    let told = lists_told(&messages);
    let scopes: Vec<&str> = told.iter().map(|(scope, _)| scope.as_str()).collect();
    assert_eq!(scopes, ["sales", "", "sales", "sales", "sales"], "{told:?}");
    let last_of = |scope: &str| {
        told.iter()
            .rev()
            .find(|(s, _)| s == scope)
            .map(|(_, ids)| ids.clone())
    };
    assert_eq!(last_of("sales"), Some(vec![stays.id.clone()]));
    assert_eq!(last_of(""), Some(vec![stays.id.clone()]));
    // A change of what a listed account shows (its name here; its health alike) is
    // told as its lists, with it as it is now.
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: stays.id.clone(),
            display_name: Some("Renamed".to_owned()),
            ..Default::default()
        },
    )
    .await;
    let messages = drain(&mut watch).await;
    let renamed: Vec<(String, String)> = messages
        .iter()
        .filter_map(|message| match &message.event {
            Some(Event::FallbacksChanged(list)) => Some((
                list.division_id.clone().unwrap_or_default(),
                list.accounts.first()?.display_name.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        renamed,
        [
            (String::new(), "Renamed".to_owned()),
            ("sales".to_owned(), "Renamed".to_owned())
        ]
    );

    // A replica of the previous version prunes nothing: an entry it left behind (here
    // the moved and the deactivated accounts, put back by hand) is not read back.
    for (position, id) in [(7, &moved.id), (8, &deactivated.id)] {
        let id = uuid::Uuid::parse_str(id).expect("id");
        app.execute(
            "INSERT INTO fallback_accounts (workspace_id, channel, scope, position, account_id) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                patchbay_e2e::WORKSPACE.into(),
                "sms".into(),
                "sales".into(),
                position.into(),
                id.into(),
            ],
        )
        .await;
    }
    assert_eq!(
        listed(&admin, "sales").await,
        std::slice::from_ref(&stays.id)
    );
}

async fn a_division_s_watcher_is_told_only_of_its_own_and_the_workspace_s_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let shared = sms(&admin, "+15550000031", None).await;
    let sales = sms(&admin, "+15550000032", Some("sales")).await;
    let support = sms(&admin, "+15550000033", Some("support")).await;
    set(&admin, "", &[&shared.id]).await.expect("workspace");
    set(&admin, "sales", &[&sales.id]).await.expect("sales");
    set(&admin, "support", &[&support.id])
        .await
        .expect("support");
    // A service token of the sales division, watching every channel it may.
    let mut watch = app
        .client("service", patchbay_e2e::WORKSPACE, Some("sales"))
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let first = drain(&mut watch).await;
    let Some(Event::Snapshot(snapshot)) = first.first().and_then(|m| m.event.clone()) else {
        panic!("a snapshot first: {first:?}");
    };
    let mut scopes: Vec<(String, Vec<String>)> = snapshot
        .fallbacks
        .iter()
        .map(|list| {
            (
                list.division_id.clone().unwrap_or_default(),
                ids(&list.accounts),
            )
        })
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            (String::new(), vec![shared.id.clone()]),
            ("sales".to_owned(), vec![sales.id.clone()]),
        ]
    );
    // Another division's list changes: nothing; its own does: told.
    set(&admin, "support", &[]).await.expect("support cleared");
    set(&admin, "sales", &[&shared.id, &sales.id])
        .await
        .expect("sales");
    let told = lists_told(&drain(&mut watch).await);
    assert_eq!(
        told,
        [(
            "sales".to_owned(),
            vec![shared.id.clone(), sales.id.clone()]
        )]
    );
}
