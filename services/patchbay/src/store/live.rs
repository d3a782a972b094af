//! What the soft-deleted tables (accounts, integrations) share: a live row is one of
//! its workspace with no `deleted_at`; lists page by id; a delete hides the row, frees
//! its flag (default, primary) and bumps its revision; and a row whose secrets cannot be
//! opened can still be deleted, but not changed.

use sea_orm::sea_query::{Expr, IntoCondition};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use super::{db_error, readable};
use crate::domain::change::{Change, Deletion};
use crate::domain::{Error, RecordKind};

/// A table of records that are soft-deleted, with the columns the shared code names.
pub(crate) trait LiveTable: EntityTrait {
    const KIND: RecordKind;
    fn id() -> Self::Column;
    fn workspace() -> Self::Column;
    fn deleted_at() -> Self::Column;
    fn deleted_by() -> Self::Column;
    fn revision() -> Self::Column;
    fn updated_at() -> Self::Column;
    /// The set-level flag a deleted record gives up (`is_default`, `is_primary`).
    fn flag() -> Self::Column;
    fn row_id(row: &Self::Model) -> Uuid;
    /// The row with its sealed values dropped: what is left of a record whose secrets
    /// cannot be opened.
    fn without_secrets(row: Self::Model) -> Self::Model;
}

/// The live rows of a workspace.
pub(crate) fn live<E: LiveTable>(workspace_id: &str) -> Select<E> {
    E::find()
        .filter(E::workspace().eq(workspace_id))
        .filter(E::deleted_at().is_null())
}

/// A live row of the workspace, whatever its division.
pub(crate) async fn find<E: LiveTable, T>(
    conn: &impl ConnectionTrait,
    workspace_id: &str,
    id: Uuid,
    decode: impl Fn(E::Model) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    let row = live::<E>(workspace_id)
        .filter(E::id().eq(id))
        .one(conn)
        .await
        .map_err(db_error)?;
    row.map(decode).transpose()
}

/// A live record about to be changed: as [`find`], but one whose secrets cannot be
/// opened comes without them, with why (see [`ensure_changeable`]).
pub(crate) async fn find_for_change<E: LiveTable, T>(
    conn: &impl ConnectionTrait,
    workspace_id: &str,
    id: Uuid,
    decode: impl Fn(E::Model) -> Result<T, Error>,
) -> Result<Option<(T, Option<Error>)>, Error>
where
    E::Model: Clone,
{
    let row = live::<E>(workspace_id)
        .filter(E::id().eq(id))
        .one(conn)
        .await
        .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    match decode(row.clone()) {
        Ok(record) => Ok(Some((record, None))),
        Err(err) if readable::is_unreadable_record(&err) => {
            Ok(Some((decode(E::without_secrets(row))?, Some(err))))
        }
        Err(err) => Err(err),
    }
}

/// A record whose secrets cannot be opened can still be deleted (it would hold its key
/// forever otherwise); any other change needs what it holds.
pub(crate) fn ensure_changeable<T, D>(
    unreadable: Option<Error>,
    change: &Change<T, D>,
) -> Result<(), Error> {
    match unreadable {
        Some(err) if !change.is_delete() => Err(err),
        _ => Ok(()),
    }
}

/// Soft-deletes row `id` (at `revision`, before the delete): hidden, its flag dropped.
pub(crate) async fn soft_delete<E: LiveTable>(
    conn: &impl ConnectionTrait,
    id: Uuid,
    revision: i64,
    deletion: &Deletion,
) -> Result<(), Error> {
    E::update_many()
        .col_expr(E::deleted_at(), Expr::value(deletion.at))
        .col_expr(E::deleted_by(), Expr::value(deletion.deleted_by.clone()))
        .col_expr(E::flag(), Expr::value(false))
        .col_expr(E::revision(), Expr::value(revision + 1))
        .col_expr(E::updated_at(), Expr::value(deletion.at))
        .filter(E::id().eq(id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Up to `limit` readable records of `query`, in id order after `after` (see
/// `readable::read_page`: rows that do not open are skipped and the page topped up).
pub(crate) async fn page<E: LiveTable, T>(
    conn: &impl ConnectionTrait,
    query: Select<E>,
    after: Option<Uuid>,
    limit: u64,
    decode: impl Fn(E::Model) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let query = query.order_by_asc(E::id());
    readable::read_page(
        limit,
        after,
        E::KIND,
        |after, limit| {
            let mut page = query.clone();
            if let Some(after) = after {
                page = page.filter(E::id().gt(after).into_condition());
            }
            async move { page.limit(limit).all(conn).await.map_err(db_error) }
        },
        (E::row_id, E::row_id),
        decode,
    )
    .await
}
