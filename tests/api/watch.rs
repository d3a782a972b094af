//! WatchDefaultAccounts and the default-account read cache: the snapshot matches
//! GetDefaultAccount, every kind of change arrives as an event with a growing revision,
//! watchers see only what they may, a stalled watcher is ended instead of buffered, and
//! a write is read back at once from the replica that made it.

use std::time::Duration;

use patchbay::config::ServerSettings;
use patchbay::views::defaults::DefaultsSettings;
use patchbay_e2e::proto::{self, Channel, watch_default_accounts_response::Event};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, TestOptions, WORKSPACE, backend_tests, create, expect_code,
    new_account, new_whatsapp, try_default, update,
};
use patchbay_sdk::Client;
use patchbay_sdk::tonic::{Code, Streaming};
use serde_json::json;

backend_tests!(
    snapshot_matches_get_default_account,
    every_kind_of_change_arrives_in_revision_order,
    watchers_see_only_their_workspace_and_division,
    a_stalled_watcher_is_ended_not_buffered,
    a_write_is_read_back_at_once_from_the_cache,
    bad_watch_requests_are_refused_with_the_field_named,
    open_watch_streams_are_limited,
    a_watch_ends_with_its_token_and_a_token_source_carries_on,
    a_stopped_feed_task_is_restarted_and_its_watchers_told,
    a_snapshot_over_four_mebibytes_arrives_in_parts,
);

type Watch = Streaming<proto::WatchDefaultAccountsResponse>;

async fn watch(client: &Client, channels: &[Channel], division: &str) -> Watch {
    client
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest {
            channels: channels.iter().map(|&c| c.into()).collect(),
            division_id: division.to_owned(),
        })
        .await
        .expect("watch opens")
        .into_inner()
}

async fn next(stream: &mut Watch) -> proto::WatchDefaultAccountsResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .expect("the stream is healthy")
        .expect("the stream is open")
}

/// No event arrives within a short wait.
async fn quiet(stream: &mut Watch) {
    if let Ok(message) = tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
        panic!("expected no event, got {message:?}");
    }
}

async fn snapshot(stream: &mut Watch) -> (i64, Vec<proto::Account>) {
    let message = next(stream).await;
    match message.event {
        Some(Event::Snapshot(snapshot)) => (message.revision, snapshot.defaults),
        other => panic!("expected a snapshot first, got {other:?}"),
    }
}

async fn change(stream: &mut Watch) -> (i64, proto::DefaultAccountChanged) {
    let message = next(stream).await;
    match message.event {
        Some(Event::Changed(changed)) => (message.revision, changed),
        other => panic!("expected a change, got {other:?}"),
    }
}

fn division(key: &str, division: &str, channel: Channel) -> proto::CreateAccountRequest {
    let request = match channel {
        Channel::Whatsapp => new_whatsapp(key, "EAAG-division-token"),
        other => new_account(other, key, json!({})),
    };
    proto::CreateAccountRequest {
        division_id: Some(division.to_owned()),
        ..request
    }
}

async fn snapshot_matches_get_default_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let wa = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_whatsapp("111", "EAAG-secret-token-111")
        },
    )
    .await;
    create(&admin, new_whatsapp("222", "EAAG-secret-token-222")).await;
    let sales_sms = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..division("sales-sms", "sales", Channel::Sms)
        },
    )
    .await;
    let email = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(Channel::Email, "mail", json!({}))
        },
    )
    .await;

    let service = app.service();
    let mut stream = watch(&service, &[], "").await;
    let (revision, defaults) = snapshot(&mut stream).await;
    assert!(
        revision >= 3,
        "three defaults were set: revision {revision}"
    );
    let mut ids: Vec<&str> = defaults.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![wa.id.as_str(), sales_sms.id.as_str(), email.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "every default, in every division");

    // Each snapshot entry is what GetDefaultAccount answers for its scope, field for field.
    for account in &defaults {
        let channel = Channel::try_from(account.channel).expect("channel");
        let asked = service
            .default_account(channel, account.division_id.as_deref())
            .await
            .expect("default");
        assert_eq!(&asked, account);
    }
    let shown = serde_json::to_string(&format!("{defaults:?}")).expect("debug");
    assert!(!shown.contains("secret-token"), "no secret in a snapshot");
    quiet(&mut stream).await;

    // A division's watch: its own defaults and the workspace-wide ones only.
    let mut sales = watch(&service, &[Channel::Sms, Channel::Whatsapp], "sales").await;
    let (_, defaults) = snapshot(&mut sales).await;
    let mut ids: Vec<&str> = defaults.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![wa.id.as_str(), sales_sms.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
}

async fn every_kind_of_change_arrives_in_revision_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let first = create(&admin, new_whatsapp("111", "t1")).await;
    let second = create(&admin, new_whatsapp("222", "t2")).await;
    let mut stream = watch(&app.service(), &[], "").await;
    let (mut revision, defaults) = snapshot(&mut stream).await;
    assert!(defaults.is_empty());
    let mut expect_change = async |stream: &mut Watch,
                                   division: Option<&str>,
                                   account: Option<&str>|
           -> proto::DefaultAccountChanged {
        let (next_revision, changed) = change(stream).await;
        assert!(
            next_revision > revision,
            "revisions grow: {next_revision} after {revision}"
        );
        revision = next_revision;
        assert_eq!(changed.channel, i32::from(Channel::Whatsapp));
        assert_eq!(changed.division_id.as_deref(), division);
        assert_eq!(
            changed.account.as_ref().map(|a| a.id.as_str()),
            account,
            "{changed:?}"
        );
        changed
    };

    // Set a default.
    admin.set_default_account(&first.id).await.expect("set");
    expect_change(&mut stream, None, Some(&first.id)).await;
    // Change it to another account: one event, the scope's new default.
    admin.set_default_account(&second.id).await.expect("set");
    expect_change(&mut stream, None, Some(&second.id)).await;
    // Change the default account itself: watchers get its new state.
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: second.id.clone(),
            display_name: Some("Renamed".into()),
            ..Default::default()
        },
    )
    .await;
    let changed = expect_change(&mut stream, None, Some(&second.id)).await;
    assert_eq!(changed.account.expect("account").display_name, "Renamed");
    // Deactivate it: the scope has no default any more.
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: second.id.clone(),
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await;
    expect_change(&mut stream, None, None).await;
    // A division default added, then removed by deleting it.
    let sales = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..division("5550001", "sales", Channel::Whatsapp)
        },
    )
    .await;
    // Created PENDING, then its set-up at Meta is recorded DONE: two changes.
    expect_change(&mut stream, Some("sales"), Some(&sales.id)).await;
    let done = expect_change(&mut stream, Some("sales"), Some(&sales.id)).await;
    assert_eq!(
        done.account.expect("account").setup_state,
        i32::from(proto::SetupState::Done)
    );
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: sales.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    expect_change(&mut stream, Some("sales"), None).await;
    // Set again, then delete the workspace-wide default.
    admin.set_default_account(&first.id).await.expect("set");
    expect_change(&mut stream, None, Some(&first.id)).await;
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: first.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    expect_change(&mut stream, None, None).await;

    // Writes that touch no default say nothing.
    let third = create(&admin, new_whatsapp("333", "t3")).await;
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: third.id.clone(),
            display_name: Some("Not a default".into()),
            ..Default::default()
        },
    )
    .await;
    quiet(&mut stream).await;

    // A new watch starts where this one is.
    let mut again = watch(&app.service(), &[], "").await;
    let (snapshot_revision, defaults) = snapshot(&mut again).await;
    assert_eq!(snapshot_revision, revision);
    assert!(defaults.is_empty());
}

async fn watchers_see_only_their_workspace_and_division(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let mut other_workspace = watch(&app.client("service", OTHER_WORKSPACE, None), &[], "").await;
    let mut support = watch(&app.client("service", WORKSPACE, Some("support")), &[], "").await;
    let mut email_only = watch(&app.service(), &[Channel::Email], "").await;
    for stream in [&mut other_workspace, &mut support, &mut email_only] {
        assert!(snapshot(stream).await.1.is_empty());
    }

    create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..division("5550001", "sales", Channel::Whatsapp)
        },
    )
    .await;
    let wide = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_whatsapp("111", "t1")
        },
    )
    .await;
    // The support division sees the workspace-wide default, not the sales one: created,
    // then its set-up recorded.
    for _ in 0..2 {
        let (_, changed) = change(&mut support).await;
        assert_eq!(changed.account.expect("account").id, wide.id);
        assert!(changed.division_id.is_none());
    }
    quiet(&mut support).await;
    // Another workspace and another channel see nothing.
    quiet(&mut other_workspace).await;
    quiet(&mut email_only).await;

    // A division-scoped caller may not watch another division; a supervisor may watch;
    // a token without a role may not.
    let status = expect_code(
        app.client("service", WORKSPACE, Some("support"))
            .accounts()
            .watch_default_accounts(proto::WatchDefaultAccountsRequest {
                division_id: "sales".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("division"), "{status:?}");
    let mut supervised = watch(&app.supervisor(), &[], "").await;
    assert_eq!(snapshot(&mut supervised).await.1.len(), 2);
    expect_code(
        app.client("guest", WORKSPACE, None)
            .accounts()
            .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
            .await,
        Code::PermissionDenied,
    );
}

async fn a_stalled_watcher_is_ended_not_buffered(backend: Backend) {
    const BUFFER: usize = 8;
    const CHANGES: usize = 300;
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            defaults: DefaultsSettings {
                watch_buffer: BUFFER,
                ..DefaultsSettings::default()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let admin = app.admin();
    let first = create(&admin, new_account(Channel::Sms, "a", json!({}))).await;
    let second = create(&admin, new_account(Channel::Sms, "b", json!({}))).await;
    // HTTP/2 lets a client buffer what its receive window allows (hyper's default is
    // 2 MiB); this watcher's is small, so that what it holds does not hide what the
    // server holds.
    let small_window =
        patchbay_sdk::tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
            .expect("endpoint")
            .initial_stream_window_size(8 * 1024)
            .connect()
            .await
            .expect("connect");
    let watcher = Client::from_channel(
        small_window,
        &patchbay_e2e::token("service", WORKSPACE, None),
    )
    .expect("client");
    let mut stalled = watch(&watcher, &[], "").await;
    assert!(snapshot(&mut stalled).await.1.is_empty());

    // The watcher reads nothing while its workspace's default flips many times.
    for i in 0..CHANGES {
        let id = if i % 2 == 0 { &first.id } else { &second.id };
        admin.set_default_account(id).await.expect("set");
    }
    // Give the server time to publish the last changes.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // What it finds when it reads again: what fit in the buffers, then the end.
    let mut received = 0;
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), stalled.message()).await {
            Ok(Ok(Some(_))) => received += 1,
            Ok(Ok(None)) => panic!("the stream ended without a status after {received} events"),
            Ok(Err(status)) => break status,
            Err(_) => panic!("the stream neither ended nor sent after {received} events"),
        }
    };
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert!(status.message().contains("watch again"), "{status:?}");
    assert!(
        received < CHANGES / 4,
        "a stalled watcher got {received} of {CHANGES} changes: the server buffered them"
    );

    // A new watch resynchronises from a snapshot showing the last default.
    let mut fresh = watch(&app.service(), &[], "").await;
    let (_, defaults) = snapshot(&mut fresh).await;
    let last = if CHANGES.is_multiple_of(2) {
        &second.id
    } else {
        &first.id
    };
    assert_eq!(defaults.len(), 1);
    assert_eq!(&defaults[0].id, last);
}

async fn a_write_is_read_back_at_once_from_the_cache(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let service = app.service();
    let first = create(&admin, new_whatsapp("111", "t1")).await;
    let second = create(&admin, new_whatsapp("222", "t2")).await;
    expect_code(
        try_default(&service, Channel::Whatsapp, "").await,
        Code::NotFound,
    );

    // Readers keep the cache warm while the default flips; each write is visible to
    // the very next read, never the cached answer before it.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    let _ = service.default_account(Channel::Whatsapp, None).await;
                }
            })
        })
        .collect();
    for round in 0..30 {
        let id = if round % 2 == 0 {
            &first.id
        } else {
            &second.id
        };
        admin.set_default_account(id).await.expect("set");
        let read = service
            .default_account(Channel::Whatsapp, None)
            .await
            .expect("default");
        assert_eq!(&read.id, id, "round {round}: the write is read back");
    }
    for reader in readers {
        reader.await.expect("reader");
    }

    // Renaming the default, deactivating it, and a division default: all read back.
    let current = service
        .default_account(Channel::Whatsapp, None)
        .await
        .expect("default");
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: current.id.clone(),
            display_name: Some("Renamed".into()),
            ..Default::default()
        },
    )
    .await;
    let read = service
        .default_account(Channel::Whatsapp, None)
        .await
        .expect("default");
    assert_eq!(read.display_name, "Renamed");
    let _ = service
        .default_account(Channel::Whatsapp, Some("sales"))
        .await;
    let sales = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..proto::CreateAccountRequest {
                division_id: Some("sales".into()),
                ..new_whatsapp("333", "t3")
            }
        },
    )
    .await;
    let read = service
        .default_account(Channel::Whatsapp, Some("sales"))
        .await
        .expect("default");
    assert_eq!(read.id, sales.id);
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: current.id.clone(),
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await;
    expect_code(
        try_default(&service, Channel::Whatsapp, "").await,
        Code::NotFound,
    );
}

async fn bad_watch_requests_are_refused_with_the_field_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let status = expect_code(
        app.service()
            .accounts()
            .watch_default_accounts(proto::WatchDefaultAccountsRequest {
                channels: vec![Channel::Sms.into(), 0, 99],
                division_id: "no spaces allowed".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    let fields = patchbay_e2e::violated_fields(&status);
    assert!(fields.contains(&"channels[1]".to_owned()), "{fields:?}");
    assert!(fields.contains(&"channels[2]".to_owned()), "{fields:?}");
}

async fn open_watch_streams_are_limited(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            server: ServerSettings {
                max_watch_streams: 2,
                ..ServerSettings::default()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let service = app.service();
    let mut first = watch(&service, &[], "").await;
    let mut second = watch(&service, &[], "").await;
    snapshot(&mut first).await;
    snapshot(&mut second).await;
    let status = expect_code(
        service
            .accounts()
            .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
            .await,
        Code::ResourceExhausted,
    );
    assert!(status.message().contains("watch streams"), "{status:?}");
    // Unary calls are not affected by open streams.
    expect_code(
        try_default(&service, Channel::Sms, "").await,
        Code::NotFound,
    );

    // A closed stream gives its place back.
    drop(first);
    let reopened = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match service
                .accounts()
                .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
                .await
            {
                Ok(stream) => return stream.into_inner(),
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
    .await;
    let mut reopened = reopened.expect("a place frees up once a watcher leaves");
    snapshot(&mut reopened).await;
}

fn short_token(role: &str, ttl: Duration) -> String {
    patchbay::auth::mint(
        &patchbay_e2e::jwt_settings(),
        &patchbay::auth::TokenRequest {
            subject: format!("{role}-user"),
            role: role.to_owned(),
            workspace_id: Some(WORKSPACE.to_owned()),
            division_id: None,
            ttl,
        },
    )
    .expect("token")
}

/// A watch lives no longer than its token (exp plus the leeway, here none); an SDK copy
/// given a token source reconnects with the fresh token and goes on.
async fn a_watch_ends_with_its_token_and_a_token_source_carries_on(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            jwt: patchbay::auth::JwtSettings {
                leeway: Duration::ZERO,
                ..patchbay_e2e::jwt_settings()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let mut stream = watch(
        &app.with_token(&short_token("service", Duration::from_secs(2))),
        &[],
        "",
    )
    .await;
    snapshot(&mut stream).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ends within 10 s")
        .expect_err("it ends with an error");
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");

    // The application keeps the token fresh; the copy follows it.
    let current = std::sync::Arc::new(std::sync::Mutex::new(short_token(
        "service",
        Duration::from_secs(2),
    )));
    let source = current.clone();
    let client = Client::from_channel_with_token_source(app.channel(), move || {
        source.lock().map(|t| t.clone()).unwrap_or_default()
    });
    let copy = client.watch_default_accounts(patchbay_sdk::WatchOptions::default());
    copy.wait_synchronised(Duration::from_secs(10))
        .await
        .expect("synchronised");
    *current.lock().expect("token") = short_token("service", Duration::from_secs(600));
    let mut status = copy.subscribe();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| {
            !s.synchronised
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("expired"))
        }),
    )
    .await
    .expect("the first stream ends with its token")
    .expect("status");
    copy.wait_synchronised(Duration::from_secs(10))
        .await
        .expect("synchronised again with the fresh token");
    let made = create(
        &app.admin(),
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(Channel::Sms, "after-refresh", json!({}))
        },
    )
    .await;
    let mut seen = false;
    for _ in 0..100 {
        if copy
            .get(Channel::Sms, None)
            .is_some_and(|account| account.id == made.id)
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "a change after the refresh reaches the copy");
}

/// The task that publishes changes stops: its watchers are told (UNAVAILABLE, so the
/// SDK resynchronises), its health service reports it, and it is restarted.
async fn a_stopped_feed_task_is_restarted_and_its_watchers_told(backend: Backend) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let app = TestApp::spawn(backend).await;
    let mut stream = watch(&app.service(), &[], "").await;
    snapshot(&mut stream).await;
    assert!(app.supervisor.stop_child("defaults"), "the feed task runs");
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the watcher is told within 10 s")
        .expect_err("its stream ends");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");

    let mut health = HealthClient::new(app.channel());
    let mut serving = false;
    for _ in 0..100 {
        let status = health
            .check(HealthCheckRequest {
                service: "patchbay.defaults".into(),
            })
            .await
            .map(|r| r.into_inner().status);
        if status.is_ok_and(|s| s == ServingStatus::Serving as i32) {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(serving, "the feed task is back");
    // The restarted task publishes to new watchers.
    let mut again = watch(&app.service(), &[], "").await;
    snapshot(&mut again).await;
    let made = create(
        &app.admin(),
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(Channel::Sms, "after-restart", json!({}))
        },
    )
    .await;
    let (_, changed) = change(&mut again).await;
    assert_eq!(changed.account.expect("account").id, made.id);
}

/// A watch whose snapshot would pass a default client's 4 MiB message limit gets it in
/// parts, the last one complete; the SDK's copy synchronises once it has them all.
async fn a_snapshot_over_four_mebibytes_arrives_in_parts(backend: Backend) {
    const DIVISIONS: usize = 100;
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let filler = "x".repeat(50 * 1024);
    for i in 0..DIVISIONS {
        create(
            &admin,
            proto::CreateAccountRequest {
                is_default: true,
                config: Some(patchbay_e2e::to_struct(json!({"footer": filler}))),
                ..division(&format!("big-{i}"), &format!("d{i}"), Channel::Email)
            },
        )
        .await;
    }
    // A list of them all comes in pages that fit a message, too.
    let listed = admin
        .list_all_accounts(Some(Channel::Email))
        .await
        .expect("every page fits a default client");
    assert_eq!(listed.len(), DIVISIONS);
    let mut stream = watch(&app.service(), &[Channel::Email], "").await;
    let mut parts = 0;
    let mut defaults = 0;
    loop {
        let message = next(&mut stream).await;
        let Some(Event::Snapshot(snapshot)) = message.event else {
            panic!("expected snapshot parts first");
        };
        parts += 1;
        defaults += snapshot.defaults.len();
        if snapshot.complete {
            break;
        }
    }
    assert!(parts >= 2, "over 4 MiB comes in parts: {parts}");
    assert_eq!(defaults, DIVISIONS);

    let copy = app
        .service()
        .watch_default_accounts(patchbay_sdk::WatchOptions {
            channels: vec![Channel::Email],
            ..Default::default()
        });
    copy.wait_synchronised(Duration::from_secs(30))
        .await
        .expect("the copy synchronises after the last part");
    for i in 0..DIVISIONS {
        assert!(
            copy.get(Channel::Email, Some(&format!("d{i}"))).is_some(),
            "d{i}"
        );
    }
}
