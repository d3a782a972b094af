//! Persistence: the only place that talks to the database. Rows are written here, in
//! transactions; the rules that decide what to write live in `domain` and come here as
//! a `domain::change::Change`.
//!
//! The store enforces what holds across a set of rows, inside the transaction, under
//! the lock of the set's scope: one account key per (workspace, channel), one default
//! per scope, one integration identifier per workspace and one primary per scope, the
//! audit event of every write, and the default change it records. Secrets are sealed
//! on the way in and opened on the way out (`secret_fields`); a row that does not open
//! fails only its own read (`readable`).

pub mod account_events;
pub mod accounts;
pub mod audit;
pub mod channel_settings;
pub mod default_changes;
mod entities;
pub mod fallbacks;
pub mod idempotency;
pub mod integrations;
pub mod leases;
mod live;
pub mod providers;
pub mod readable;
pub mod rotation;
mod sealed_census;
mod secret_fields;
pub mod whatsapp_registrations;

use std::{ops::Deref, sync::Arc, time::Duration};

use patchbay_migrations::MigratorTrait;
use sea_orm::{
    ConnAcquireErr, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, RuntimeErr, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait, sqlx,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::domain::Error;
use crate::sealing::KeyRing;

/// How the store reaches its database.
#[derive(Clone)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    /// How long a call waits for a connection before it fails with UNAVAILABLE.
    pub acquire_timeout: Duration,
}

/// The URL's password, if any, is left out.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_password(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The database handle shared by every request.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite allows one writer at a time. Write transactions begin IMMEDIATE (taking
    /// the write lock up front, waiting up to the busy timeout), so that a transaction
    /// that reads and then writes never fails because another process — `patchbay keys
    /// rotate`, say — wrote in between; this lock makes the writers of this process
    /// queue in order instead of polling. PostgreSQL needs neither.
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// Seals secret fields on write and opens them on read.
    keys: Arc<KeyRing>,
    /// The channels of accounts writes have looked up (`accounts::KnownChannels`).
    known_channels: Arc<accounts::KnownChannels>,
}

/// A write transaction; on SQLite it also holds the process-wide writer lock.
pub(crate) struct WriteTxn<'a> {
    txn: DatabaseTransaction,
    _writer: Option<MutexGuard<'a, ()>>,
    /// PostgreSQL notifications (channel, payload) to send with the commit: PostgreSQL
    /// delivers them at commit anyway, so they go in one statement just before it
    /// instead of one round trip each.
    notices: std::sync::Mutex<Vec<(&'static str, String)>>,
}

impl Deref for WriteTxn<'_> {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn<'_> {
    /// Sends `payload` on `channel` to the replicas when this transaction commits
    /// (PostgreSQL; nothing on SQLite, which has one replica).
    pub(crate) fn notify_at_commit(&self, channel: &'static str, payload: String) {
        if self.txn.get_database_backend() != DbBackend::Postgres {
            return;
        }
        if let Ok(mut notices) = self.notices.lock() {
            notices.push((channel, payload));
        }
    }

    pub(crate) async fn commit(self) -> Result<(), Error> {
        let notices = self
            .notices
            .into_inner()
            .map_err(|_| Error::Internal("a write's notifications were lost".to_owned()))?;
        if !notices.is_empty() {
            let calls: Vec<String> = (0..notices.len())
                .map(|n| format!("pg_notify(${}, ${})", 2 * n + 1, 2 * n + 2))
                .collect();
            let values = notices
                .into_iter()
                .flat_map(|(channel, payload)| [channel.into(), payload.into()]);
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!("SELECT {}", calls.join(", ")),
                    values,
                ))
                .await
                .map_err(db_error)?;
        }
        self.txn.commit().await.map_err(db_error)
    }
}

/// The level of sqlx's per-acquire event (`crate::telemetry::POOL_ACQUIRE_TARGET`).
const ACQUIRE_EVENTS: log::LevelFilter = log::LevelFilter::Trace;

impl Store {
    pub async fn connect(settings: &DatabaseSettings, keys: KeyRing) -> Result<Store, DbErr> {
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.max_connections)
            .min_connections(1)
            .connect_timeout(settings.acquire_timeout)
            .acquire_timeout(settings.acquire_timeout)
            .sqlx_logging(false)
            // Every connection handed out is reported as a `sqlx::pool::acquire` event
            // with its wait; `telemetry` turns them into the pool's acquire histogram
            // (waits shorter than the timeout, which the timeout counter cannot see).
            // With metrics off, that layer returns before reading the event.
            .map_sqlx_postgres_pool_opts(|opts| opts.acquire_time_level(ACQUIRE_EVENTS))
            .map_sqlx_sqlite_pool_opts(|opts| opts.acquire_time_level(ACQUIRE_EVENTS))
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // Overwrite freed content, so that a copy of the file holds no
                    // superseded secret (an old ciphertext, or pre-encryption plaintext).
                    .pragma("secure_delete", "ON")
            });
        let db = Database::connect(options).await?;
        let sqlite_writer = match db.get_database_backend() {
            DbBackend::Sqlite => Some(Arc::new(Mutex::new(()))),
            _ => None,
        };
        let known_channels = Arc::<accounts::KnownChannels>::default();
        crate::memory::register("known_channels", &known_channels, |known| known.len());
        Ok(Store {
            db,
            sqlite_writer,
            keys: Arc::new(keys),
            known_channels,
        })
    }

    /// Brings the schema up to date. Safe to run on every start.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        patchbay_migrations::Migrator::up(&self.db, None).await
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Sets the pool gauges (`patchbay_db_pool_connections{state}`): open and idle.
    pub fn report_pool(&self) {
        let (size, idle) = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        metrics::gauge!("patchbay_db_pool_connections", "state" => "open").set(f64::from(size));
        metrics::gauge!("patchbay_db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("patchbay_db_pool_connections", "state" => "in_use")
            .set(f64::from(size).max(idle as f64) - idle as f64);
    }

    pub(crate) fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(crate) async fn begin_write(&self) -> Result<WriteTxn<'_>, Error> {
        let writer = match &self.sqlite_writer {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let options = TransactionOptions {
            sqlite_transaction_mode: writer.as_ref().map(|_| SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let txn = self
            .db
            .begin_with_options(options)
            .await
            .map_err(db_error)?;
        Ok(WriteTxn {
            txn,
            _writer: writer,
            notices: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }

    pub async fn close(self) {
        if let Err(err) = self.db.close().await {
            tracing::warn!(error = %err, "closing the database pool failed");
        }
    }
}

/// Brings a database's schema up to date without opening a store (`patchbay migrate`).
pub async fn migrate_database(settings: &DatabaseSettings) -> Result<(), DbErr> {
    let db = Database::connect(settings.url.as_str()).await?;
    let result = patchbay_migrations::Migrator::up(&db, None).await;
    let _ = db.close().await;
    result
}

/// Whether the error is a unique-index violation, and of which index when the backend
/// names it.
pub(crate) fn unique_violation(err: &DbErr) -> Option<String> {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) => Some(message),
        _ => None,
    }
}

/// Maps a database error to the domain: the database being away is UNAVAILABLE (the
/// caller may retry), anything else is a logged internal error.
pub(crate) fn db_error(err: DbErr) -> Error {
    let timed_out = matches!(err, DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))
        || matches!(&err, DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
            if matches!(e.deref(), sqlx::Error::PoolTimedOut));
    if timed_out {
        // A call that waited the whole acquire timeout for a connection: the pool is
        // too small for the load (shorter waits: the acquire histogram).
        metrics::counter!("patchbay_db_pool_acquire_timeouts_total").increment(1);
    }
    if is_unavailable(&err) {
        tracing::warn!(error = %err, "database unavailable");
        Error::Unavailable("database unavailable, retry later".to_owned())
    } else {
        Error::Internal(format!("database error: {err}"))
    }
}

fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.deref() {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // Transient contention: SQLite busy/locked past the busy timeout,
                // PostgreSQL lock timeouts and servers shutting down.
                sqlx::Error::Database(db) => matches!(
                    db.code().as_deref(),
                    Some("5" | "6" | "517" | "55P03" | "57P01" | "57P02" | "57P03")
                ),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Runs a write that returns the `revision` it took (`… RETURNING revision`).
pub(crate) async fn returned_revision<S: sea_orm::StatementBuilder>(
    txn: &DatabaseTransaction,
    statement: &S,
    what: &str,
) -> Result<i64, Error> {
    let row = txn
        .query_one(statement)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::Internal(format!("{what} returned no row")))?;
    row.try_get::<i64>("", "revision").map_err(db_error)
}

/// Advisory locks are a PostgreSQL feature; SQLite serialises writers instead.
fn supports_row_locks(conn: &impl ConnectionTrait) -> bool {
    conn.get_database_backend() == DbBackend::Postgres
}

/// Serialises the writers of one scope (say, the accounts of one workspace and channel)
/// until the transaction ends. On PostgreSQL this is a transaction-level advisory lock,
/// so replicas sharing the database serialise too; on SQLite the writer lock already
/// holds every other writer back.
pub(crate) async fn lock_scope(txn: &DatabaseTransaction, scope: &str) -> Result<(), Error> {
    lock_scopes(txn, &[scope]).await
}

/// Takes the locks of several scopes in one round trip, in the order given (writers
/// that take the same locks must name them in the same order, or two could deadlock).
/// `ORDER BY` makes PostgreSQL call the volatile lock function row by row after the
/// sort, so the order holds.
pub(crate) async fn lock_scopes(txn: &DatabaseTransaction, scopes: &[&str]) -> Result<(), Error> {
    if scopes.is_empty() || !supports_row_locks(txn) {
        return Ok(());
    }
    let sql = if let [_] = scopes {
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))".to_owned()
    } else {
        let rows: Vec<String> = (1..=scopes.len())
            .map(|n| format!("({n}, ${n}::text)"))
            .collect();
        format!(
            "SELECT pg_advisory_xact_lock(hashtextextended(scope, 0)) \
             FROM (VALUES {}) AS scopes(n, scope) ORDER BY n",
            rows.join(", ")
        )
    };
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        scopes.iter().map(|scope| (*scope).into()),
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_do_not_reach_debug_output() {
        let settings = DatabaseSettings {
            url: "postgres://patchbay:hunter2@db:5432/patchbay".into(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(1),
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("postgres://patchbay:***@db:5432/patchbay"));
    }
}
