//! The SDK's DefaultAccounts, and defaults across replicas: a local copy that follows
//! every change, keeps answering while the server is away, and converges from a new
//! snapshot after a restart; and on PostgreSQL, a change made on one replica reaches
//! the watchers and the read cache of another.

use std::time::Duration;

use patchbay_e2e::proto::{self, Channel, watch_default_accounts_response::Event};
use patchbay_e2e::{
    Backend, TestApp, TestOptions, backend_tests, create, expect_code, new_whatsapp, try_default,
};
use patchbay_sdk::tonic::Code;
use patchbay_sdk::{DefaultAccounts, WatchOptions};

backend_tests!(sdk_copy_follows_changes_and_converges_after_a_restart);

fn fast_reconnect() -> WatchOptions {
    WatchOptions {
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        ..WatchOptions::default()
    }
}

/// Waits until `check` holds for the copy, at most 10 s.
async fn converge(
    defaults: &DefaultAccounts,
    what: &str,
    check: impl Fn(&DefaultAccounts) -> bool,
) {
    let mut updates = defaults.subscribe();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !check(defaults) {
            if updates.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(
        waited.is_ok() && check(defaults),
        "{what}: not reached; status {:?}",
        defaults.status()
    );
}

fn sender(defaults: &DefaultAccounts, division: Option<&str>) -> Option<String> {
    defaults
        .get(Channel::Whatsapp, division)
        .map(|account| account.id.clone())
}

async fn sdk_copy_follows_changes_and_converges_after_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let first = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_whatsapp("111", "t1")
        },
    )
    .await;
    let second = create(&admin, new_whatsapp("222", "t2")).await;

    let defaults = app.service().watch_default_accounts(fast_reconnect());
    defaults
        .wait_synchronised(Duration::from_secs(10))
        .await
        .expect("synchronised");
    assert_eq!(sender(&defaults, None), Some(first.id.clone()));
    assert_eq!(
        sender(&defaults, Some("sales")),
        Some(first.id.clone()),
        "no division default: the workspace-wide one"
    );
    assert!(defaults.get(Channel::Email, None).is_none());

    admin.set_default_account(&second.id).await.expect("set");
    converge(&defaults, "the new default", |d| {
        sender(d, None) == Some(second.id.clone())
    })
    .await;

    // The server goes away: the copy says so, and keeps its last answer.
    let addr = app.addr;
    let database_url = app.database_url.clone();
    let data_dir = app.stop().await;
    converge(&defaults, "unsynchronised", |d| !d.is_synchronised()).await;
    assert_eq!(sender(&defaults, None), Some(second.id.clone()));

    // Meanwhile another server on the same database changes the defaults.
    let elsewhere = TestApp::spawn_with(
        backend,
        TestOptions {
            database_url: Some(database_url.clone()),
            ..TestOptions::default()
        },
    )
    .await;
    let admin = elsewhere.admin();
    admin.set_default_account(&first.id).await.expect("set");
    let sales = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            division_id: Some("sales".into()),
            ..new_whatsapp("333", "t3")
        },
    )
    .await;
    elsewhere.stop().await;

    // The server comes back where the copy looks for it: a new snapshot brings it up
    // to date with everything it missed.
    let restarted = TestApp::spawn_with(
        backend,
        TestOptions {
            database_url: Some(database_url),
            listen: Some(addr),
            ..TestOptions::default()
        },
    )
    .await;
    defaults
        .wait_synchronised(Duration::from_secs(10))
        .await
        .expect("synchronised again");
    converge(&defaults, "what it missed", |d| {
        sender(d, None) == Some(first.id.clone())
            && sender(d, Some("sales")) == Some(sales.id.clone())
    })
    .await;
    assert!(defaults.status().last_error.is_none());
    drop(restarted);
    drop(data_dir);
}

async fn next_change(
    stream: &mut patchbay_sdk::tonic::Streaming<proto::WatchDefaultAccountsResponse>,
) -> proto::DefaultAccountChanged {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .expect("healthy stream")
            .expect("open stream");
        if let Some(Event::Changed(changed)) = message.event {
            return changed;
        }
    }
}

/// Two `patchbay` servers on one PostgreSQL database: what one writes, the other's
/// watchers and read cache learn (through LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_replica_reaches_the_other() {
    let one = TestApp::spawn(Backend::Postgres).await;
    let other = one.replica().await;
    let reader = other.service();
    // The other replica has answered (and cached) "no default" before the change.
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if try_default(&reader, Channel::Whatsapp, "")
                .await
                .err()
                .map(|s| s.code())
                == Some(Code::NotFound)
            {
                return;
            }
        }
    })
    .await;
    assert!(answered.is_ok());
    let mut watcher = reader
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let copy = reader.watch_default_accounts(fast_reconnect());
    copy.wait_synchronised(Duration::from_secs(10))
        .await
        .expect("synchronised");

    let account = create(
        &one.admin(),
        proto::CreateAccountRequest {
            is_default: true,
            ..new_whatsapp("111", "t1")
        },
    )
    .await;

    // The other replica's watcher hears of it ...
    let changed = next_change(&mut watcher).await;
    assert_eq!(changed.account.map(|a| a.id), Some(account.id.clone()));
    // ... its SDK copy too ...
    converge(&copy, "the other replica's change", |d| {
        sender(d, None) == Some(account.id.clone())
    })
    .await;
    // ... and its read cache no longer answers "no default".
    let read = reader
        .default_account(Channel::Whatsapp, None)
        .await
        .expect("the other replica reads the new default");
    assert_eq!(read.id, account.id);

    // And the other way round: a change there reaches a watcher here.
    let mut here = one
        .service()
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let admin = other.admin();
    admin
        .accounts()
        .update_account(proto::UpdateAccountRequest {
            id: account.id.clone(),
            is_active: Some(false),
            ..Default::default()
        })
        .await
        .expect("deactivate");
    let changed = next_change(&mut here).await;
    assert!(changed.account.is_none(), "{changed:?}");
    expect_code(
        try_default(&one.service(), Channel::Whatsapp, "").await,
        Code::NotFound,
    );
}
