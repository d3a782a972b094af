//! WatchAccountEvents: every change of an account is an event, numbered per workspace,
//! recorded with the change; a watch resumed after a revision gets exactly the events
//! after it; the division scope of reads holds; a revision older than what is kept is
//! FAILED_PRECONDITION; the SDK's watch resumes by itself.

use std::time::Duration;

use patchbay_e2e::proto::{self, AccountEventKind, Channel};
use patchbay_e2e::{
    Backend, TestApp, WORKSPACE, backend_tests, create, expect_code, new_account, update,
};
use patchbay_sdk::Client;
use patchbay_sdk::tonic::{Code, Streaming};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::json;

backend_tests!(
    each_change_is_an_event_and_a_resumed_watch_gets_exactly_the_later_ones,
    a_division_watcher_sees_its_division_and_workspace_wide_accounts,
    a_revision_no_longer_kept_is_failed_precondition,
    a_watcher_that_falls_behind_is_aborted_with_where_to_resume,
    the_sdk_watch_resumes_after_the_last_event_it_gave
);

async fn watch(
    client: &Client,
    after_revision: Option<i64>,
) -> Result<Streaming<proto::AccountEvent>, patchbay_sdk::tonic::Status> {
    client
        .accounts()
        .watch_account_events(proto::WatchAccountEventsRequest {
            after_revision,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn next(stream: &mut Streaming<proto::AccountEvent>) -> proto::AccountEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .expect("healthy stream")
        .expect("open stream")
}

/// Nothing more arrives for a moment.
async fn quiet(stream: &mut Streaming<proto::AccountEvent>) {
    let more = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(more.is_err(), "unexpected event: {more:?}");
}

fn kind(event: &proto::AccountEvent) -> AccountEventKind {
    AccountEventKind::try_from(event.kind).expect("known kind")
}

async fn each_change_is_an_event_and_a_resumed_watch_gets_exactly_the_later_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let service = app.service();
    let mut live = watch(&service, None).await.expect("watch");
    let account = create(
        &app.admin(),
        new_account(
            Channel::Sms,
            "s1",
            json!({"account_sid": "AC1", "auth_token": "tw-secret-token"}),
        ),
    )
    .await;
    let created = next(&mut live).await;
    assert_eq!(kind(&created), AccountEventKind::Created);
    let shown = created.account.as_ref().expect("account");
    assert_eq!(shown.id, account.id);
    assert!(
        !format!("{shown:?}").contains("tw-secret-token"),
        "the account is masked"
    );
    assert!(created.occurred_at.is_some());
    update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("Renamed".into()),
            ..Default::default()
        },
    )
    .await;
    app.admin()
        .set_default_account(&account.id)
        .await
        .expect("default");
    app.admin()
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: account.id.clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");
    let mut later = Vec::new();
    for _ in 0..3 {
        later.push(next(&mut live).await);
    }
    let kinds: Vec<_> = later.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            AccountEventKind::Updated,
            AccountEventKind::DefaultChanged,
            AccountEventKind::Deleted
        ]
    );
    let revisions: Vec<_> = std::iter::once(&created)
        .chain(&later)
        .map(|e| e.revision)
        .collect();
    assert!(
        revisions.windows(2).all(|w| w[1] == w[0] + 1),
        "{revisions:?}"
    );
    assert_eq!(
        later[2].account.as_ref().map(|a| a.display_name.as_str()),
        Some("Renamed"),
        "a deleted account is shown as it was"
    );
    quiet(&mut live).await;

    // Resumed after the creation: exactly the three later events.
    let mut resumed = watch(&service, Some(created.revision))
        .await
        .expect("watch");
    for expected in &later {
        let event = next(&mut resumed).await;
        assert_eq!(
            (event.revision, event.kind),
            (expected.revision, expected.kind)
        );
    }
    quiet(&mut resumed).await;
    // The other workspace has none of them.
    let mut theirs = watch(
        &app.client("service", patchbay_e2e::OTHER_WORKSPACE, None),
        Some(0),
    )
    .await
    .expect("watch");
    quiet(&mut theirs).await;
}

async fn a_division_watcher_sees_its_division_and_workspace_wide_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let in_division = |key: &str, division: &str| proto::CreateAccountRequest {
        division_id: Some(division.into()),
        ..new_account(Channel::Email, key, json!({}))
    };
    let ours = create(&app.admin(), in_division("d1@acme.test", "d1")).await;
    let shared = create(
        &app.admin(),
        proto::CreateAccountRequest {
            division_id: Some(String::new()),
            ..new_account(Channel::Email, "all@acme.test", json!({}))
        },
    )
    .await;
    create(&app.admin(), in_division("d2@acme.test", "d2")).await;
    let scoped = app.client("service", WORKSPACE, Some("d1"));
    let mut stream = watch(&scoped, Some(0)).await.expect("watch");
    let seen = [next(&mut stream).await, next(&mut stream).await];
    let ids: Vec<_> = seen
        .iter()
        .map(|e| e.account.as_ref().expect("account").id.clone())
        .collect();
    assert_eq!(ids, [ours.id, shared.id]);
    quiet(&mut stream).await;
    // Asking for another division is not allowed to it.
    let status = expect_code(
        scoped
            .accounts()
            .watch_account_events(proto::WatchAccountEventsRequest {
                division_id: "d2".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("division"));
}

async fn a_revision_no_longer_kept_is_failed_precondition(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for key in ["a@acme.test", "b@acme.test", "c@acme.test"] {
        create(&app.admin(), new_account(Channel::Email, key, json!({}))).await;
    }
    let service = app.service();
    let mut stream = watch(&service, Some(1)).await.expect("kept");
    assert_eq!(next(&mut stream).await.revision, 2);
    // The retention passes (the purge is given its time: no waiting).
    let later = chrono::Utc::now() + chrono::Duration::days(31);
    let dropped = app
        .store()
        .await
        .events()
        .purge_account_events(later)
        .await
        .expect("purged");
    assert_eq!(dropped, 3);
    let status = expect_code(watch(&service, Some(1)).await, Code::FailedPrecondition);
    assert!(status.message().contains("no longer kept"), "{status:?}");
    expect_code(watch(&service, Some(99)).await, Code::FailedPrecondition);
    let status = expect_code(watch(&service, Some(-1)).await, Code::InvalidArgument);
    assert_eq!(patchbay_e2e::violated_fields(&status), ["after_revision"]);
    // From the latest revision, or from now, a watch goes on: numbers keep growing.
    let mut from_latest = watch(&service, Some(3)).await.expect("latest");
    create(
        &app.admin(),
        new_account(Channel::Email, "d@acme.test", json!({})),
    )
    .await;
    assert_eq!(next(&mut from_latest).await.revision, 4);
}

async fn the_sdk_watch_resumes_after_the_last_event_it_gave(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create(
        &app.admin(),
        new_account(Channel::Email, "a@acme.test", json!({})),
    )
    .await;
    let mut events = app
        .service()
        .watch_account_events(proto::WatchAccountEventsRequest {
            after_revision: Some(0),
            ..Default::default()
        });
    let first = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("event");
    assert_eq!(first.revision, 1);
    create(
        &app.admin(),
        new_account(Channel::Email, "b@acme.test", json!({})),
    )
    .await;
    let second = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("event");
    assert_eq!(second.revision, 2);
}

/// Two servers on one PostgreSQL database: a watcher on one sees the other's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_on_one_replica_sees_the_others_events() {
    let one = TestApp::spawn(Backend::Postgres).await;
    let other = one.replica().await;
    let mut stream = watch(&other.service(), None).await.expect("watch");
    let account = create(
        &one.admin(),
        new_account(Channel::Email, "r@acme.test", json!({})),
    )
    .await;
    let event = next(&mut stream).await;
    assert_eq!(kind(&event), AccountEventKind::Created);
    assert_eq!(event.account.map(|a| a.id), Some(account.id));
}

/// A replica still on the previous version numbers events under the advisory lock
/// `account-events/{workspace}`: a write of this version waits for it (and then takes
/// the next number), so a rolling upgrade never numbers two events alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_waits_for_the_numbering_lock_of_the_previous_version() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let admin = app.admin();
    create(
        &admin,
        new_account(Channel::Email, "first@acme.test", json!({})),
    )
    .await;

    // The older replica's transaction, holding the lock it numbered events under.
    let db = app.database().await;
    let older = db.begin().await.expect("begin");
    older
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("account-events/{WORKSPACE}").into()],
        ))
        .await
        .expect("lock");
    // A default: the write takes the revision lock and the numbering lock together.
    let write = tokio::spawn({
        let admin = admin.clone();
        async move {
            let request = proto::CreateAccountRequest {
                is_default: true,
                ..new_account(Channel::Email, "second@acme.test", json!({}))
            };
            create(&admin, request).await
        }
    });
    // Its session shows up waiting for an advisory lock, and stays there.
    let waiting = Statement::from_string(
        DbBackend::Postgres,
        "SELECT COUNT(*) AS n FROM pg_stat_activity \
         WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'",
    );
    let mut waited = false;
    for _ in 0..100 {
        let row = db
            .query_one_raw(waiting.clone())
            .await
            .expect("query")
            .expect("row");
        if row.try_get::<i64>("", "n").expect("count") > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(waited, "the write waits for the older replica's lock");
    assert!(!write.is_finished(), "the write has not gone past the lock");
    older.commit().await.expect("commit");
    let second = tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("the write goes on once the lock is given back")
        .expect("task");

    let mut stream = watch(&app.service(), Some(0)).await.expect("watch");
    let mut numbers = Vec::new();
    for _ in 0..2 {
        let event = next(&mut stream).await;
        numbers.push((event.revision, event.account.map(|a| a.id)));
    }
    assert_eq!(numbers[0].0, 1);
    assert_eq!(numbers[1], (2, Some(second.id)));
}

/// A watcher that stops reading falls behind its workspace's tail: once its queue of 256
/// events is full it is ended ABORTED, saying the revision to resume from, and never
/// holds the tail (nor the writes) back; a watch resumed from there gets the rest.
async fn a_watcher_that_falls_behind_is_aborted_with_where_to_resume(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A client whose HTTP/2 window holds about one event: what it does not read stays
    // with the server.
    let narrow =
        patchbay_sdk::tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
            .expect("endpoint")
            .initial_stream_window_size(Some(1024))
            .initial_connection_window_size(Some(1024))
            .connect()
            .await
            .expect("connect");
    let slow = Client::from_channel(narrow, &patchbay_e2e::token("service", WORKSPACE, None))
        .expect("client");
    let mut behind = watch(&slow, None).await.expect("watch");
    let mut keeping_up = watch(&app.service(), None).await.expect("watch");
    let account = create(&app.admin(), new_account(Channel::Sms, "busy", json!({}))).await;
    // 1 creation and 299 updates: more than the queue, the one-message hand-over and
    // what the window holds.
    const EVENTS: i64 = 300;
    for n in 1..EVENTS {
        update(
            &app.admin(),
            proto::UpdateAccountRequest {
                id: account.id.clone(),
                display_name: Some(format!("busy {n}")),
                ..Default::default()
            },
        )
        .await;
    }
    // The watcher that keeps up got every event, while the other stalled.
    let mut last = 0;
    for _ in 0..EVENTS {
        let event = next(&mut keeping_up).await;
        assert!(event.revision > last, "in order");
        last = event.revision;
    }
    // The stalled one: what it was given, then ABORTED naming where to resume.
    let mut received = Vec::new();
    let aborted = loop {
        match tokio::time::timeout(Duration::from_secs(10), behind.message())
            .await
            .expect("an answer within 10 s")
        {
            Ok(Some(event)) => received.push(event.revision),
            Ok(None) => panic!("the stream ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(aborted.code(), Code::Aborted, "{aborted:?}");
    let resume_from = *received.last().expect("some events first");
    assert!(
        (received.len() as i64) < EVENTS,
        "it fell behind: {} events",
        received.len()
    );
    assert!(
        aborted
            .message()
            .contains(&format!("after revision {resume_from}")),
        "{aborted:?}"
    );
    // The same, machine-readable: the trailer a client resumes from.
    assert_eq!(
        aborted
            .metadata()
            .get("patchbay-after-revision")
            .and_then(|v| v.to_str().ok()),
        Some(resume_from.to_string().as_str())
    );
    // Resumed from there: exactly the rest.
    let mut resumed = watch(&app.service(), Some(resume_from))
        .await
        .expect("resume");
    let mut expected = resume_from;
    while expected < last {
        let event = next(&mut resumed).await;
        expected += 1;
        assert_eq!(event.revision, expected);
    }
}
