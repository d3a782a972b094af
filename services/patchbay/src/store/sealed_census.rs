//! How many records still hold a value sealed under a key that is not the active one,
//! or a verify token not sealed at all: what `keys rotate` has left to do. Counted in
//! SQL from the sealed values' `pbx1.<key id>.` prefixes, so no secret is opened; live
//! rows only, as rotation rewrites them (a delete erases a record's secrets). A config
//! secret still in plaintext from before encryption is not seen here (telling it needs
//! the record's schema); `keys rotate` reports it.

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use super::{Store, db_error};
use crate::domain::Error;

/// The prefix of every sealed value (`crate::sealing`).
const SEALED: &str = "pbx1.";

impl Store {
    pub async fn records_off_active_key(&self) -> Result<u64, Error> {
        let active = format!("{SEALED}{}.", self.keys().active_key_id());
        if self.backend() != DbBackend::Postgres {
            return count_off_key(self.conn(), &active).await;
        }
        // A full scan of each table: on PostgreSQL, on one core (no parallel workers),
        // so that the count never takes the whole machine from the calls.
        let txn = self.conn().begin().await.map_err(db_error)?;
        txn.execute_unprepared("SET LOCAL max_parallel_workers_per_gather = 0")
            .await
            .map_err(db_error)?;
        let total = count_off_key(&txn, &active).await?;
        txn.commit().await.map_err(db_error)?;
        Ok(total)
    }
}

/// The census of every sealed table, through `conn`.
async fn count_off_key(conn: &impl ConnectionTrait, active: &str) -> Result<u64, Error> {
    let mut total = 0;
    for (table, verify_token, deletable) in [
        ("accounts", true, true),
        ("channel_settings", false, false),
        ("integrations", false, true),
    ] {
        let statement = census(
            conn.get_database_backend(),
            table,
            verify_token,
            deletable,
            active,
        );
        let row = conn.query_one_raw(statement).await.map_err(db_error)?;
        let count: i64 = match row {
            Some(row) => row.try_get("", "n").map_err(db_error)?,
            None => 0,
        };
        total += u64::try_from(count).unwrap_or_default();
    }
    Ok(total)
}

/// Rows of `table` where the sealed values of `config` are not all under the `active`
/// prefix (their count differs from the count of that prefix), or whose verify token
/// does not start with it.
fn census(
    backend: DbBackend,
    table: &str,
    verify_token: bool,
    deletable: bool,
    active: &str,
) -> Statement {
    let (config, sealed, current) = match backend {
        DbBackend::Postgres => ("config::text", "$1", "$2"),
        _ => ("config", "?1", "?2"),
    };
    let occurrences = |prefix: &str| {
        format!("(length({config}) - length(replace({config}, {prefix}, ''))) / length({prefix})")
    };
    let mut condition = format!("{} <> {}", occurrences(sealed), occurrences(current));
    if verify_token {
        condition.push_str(&format!(
            " OR substr(verify_token, 1, length({current})) <> {current}"
        ));
    }
    let live = if deletable {
        " AND deleted_at IS NULL"
    } else {
        ""
    };
    Statement::from_sql_and_values(
        backend,
        format!("SELECT COUNT(*) AS n FROM {table} WHERE ({condition}){live}"),
        [SEALED.into(), active.into()],
    )
}
