//! What routing needs of the accounts table: the one-owner rule of provider ids
//! (checked in the write's transaction, under the id's lock, backed by the partial
//! unique index `ux_accounts_owned_provider_id`), the notification that tells
//! other replicas an account's routing changed, and the reads that fill the index.

use super::AccountsRepo;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::rows::to_domain;
use crate::domain::account::{Ownership, provider_id, provider_id_field};
use crate::domain::webhook_routes::ROUTED_CHANNELS;
use crate::domain::{Account, Channel, Error, RecordKind};
use crate::store::entities::account::{Column, Entity};
use crate::store::{WriteTxn, db_error, lock_scope};

/// Where a page of [`Store::routed_accounts_page`] starts: the first one by default.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoutedCursor {
    /// Of `ROUTED_CHANNELS`.
    channel: usize,
    after: Option<Uuid>,
}

/// The PostgreSQL notification channel of routing changes (payload: the account id).
pub const ROUTES_NOTIFY_CHANNEL: &str = "patchbay_account_routes";

/// How many rows one read of a full index load takes.
const LOAD_PAGE: u64 = 2000;

/// Refuses `account`'s confirmation of its provider id when another live account, in
/// any workspace, owns it confirmed (a taking makes that owner LOST first). Takes the
/// id's lock first (after the scope lock, always in that order), so two confirmations
/// cannot both pass. An account that does not claim the id confirmed needs nothing.
pub(super) async fn ensure_claim_free(txn: &WriteTxn<'_>, account: &Account) -> Result<(), Error> {
    if account.provider_state.ownership != Ownership::Confirmed {
        return Ok(());
    }
    let Some(id) = provider_id(account.channel, &account.config) else {
        return Ok(());
    };
    lock_scope(txn, &format!("provider-id/{}/{id}", account.channel)).await?;
    let taken = Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::Channel.eq(account.channel.as_str()))
        .filter(Column::ProviderId.eq(id))
        .filter(Column::Ownership.eq(Ownership::Confirmed.as_str()))
        .filter(Column::DeletedAt.is_null())
        .filter(Column::Id.ne(account.id))
        .into_tuple::<Uuid>()
        .one(&**txn)
        .await
        .map_err(db_error)?
        .is_some();
    if taken {
        return Err(claim_taken(account));
    }
    Ok(())
}

/// Names the id, never the workspace or account that holds it.
pub(super) fn claim_taken(account: &Account) -> Error {
    Error::AlreadyExists {
        kind: RecordKind::Account,
        field: provider_id_field(account.channel),
        message: format!(
            "{} {} is already connected to another account",
            provider_id_field(account.channel).trim_start_matches("config."),
            provider_id(account.channel, &account.config).unwrap_or_default()
        ),
    }
}

/// Tells the other replicas (PostgreSQL, delivered at commit) that `id`'s routing
/// changed.
pub(super) fn notify_route_change(txn: &WriteTxn<'_>, id: Uuid) {
    txn.notify_at_commit(ROUTES_NOTIFY_CHANNEL, id.to_string());
}

impl AccountsRepo<'_> {
    /// The live accounts, in whichever workspace, that own `channel`'s `id` confirmed
    /// (one, which the partial unique index keeps so): `(workspace, account)`.
    pub async fn confirmed_owners(
        &self,
        channel: Channel,
        id: &str,
    ) -> Result<Vec<(String, Uuid)>, Error> {
        Entity::find()
            .select_only()
            .column(Column::WorkspaceId)
            .column(Column::Id)
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(Column::ProviderId.eq(id))
            .filter(Column::Ownership.eq(Ownership::Confirmed.as_str()))
            .filter(Column::DeletedAt.is_null())
            .into_tuple::<(String, Uuid)>()
            .all(self.conn())
            .await
            .map_err(db_error)
    }

    /// Account `id` in whichever workspace, live or not (`None` once deleted): what
    /// the routing index reloads on a change.
    pub async fn routed_account(&self, id: Uuid) -> Result<Option<Account>, Error> {
        let row = Entity::find_by_id(id)
            .filter(Column::DeletedAt.is_null())
            .one(self.conn())
            .await
            .map_err(db_error)?;
        row.map(|row| to_domain(self.keys(), row)).transpose()
    }

    /// Every live account of a routed channel, a page at a time, a channel after the
    /// other in id order (`ix_accounts_channel_id` serves each page as one range): what
    /// the routing index is built from. Returns where the next page starts. A row
    /// whose secrets do not open is left out, and said so.
    pub async fn routed_accounts_page(
        &self,
        from: RoutedCursor,
    ) -> Result<(Vec<Account>, Option<RoutedCursor>), Error> {
        let Some(channel) = ROUTED_CHANNELS.get(from.channel) else {
            return Ok((Vec::new(), None));
        };
        let mut query = Entity::find()
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(Column::DeletedAt.is_null())
            .order_by_asc(Column::Id)
            .limit(LOAD_PAGE);
        if let Some(after) = from.after {
            query = query.filter(Column::Id.gt(after));
        }
        let rows = query.all(self.conn()).await.map_err(db_error)?;
        let next = match rows.last() {
            Some(last) if rows.len() as u64 == LOAD_PAGE => Some(RoutedCursor {
                channel: from.channel,
                after: Some(last.id),
            }),
            _ => (from.channel + 1 < ROUTED_CHANNELS.len()).then_some(RoutedCursor {
                channel: from.channel + 1,
                after: None,
            }),
        };
        // Decoding a page (JSON, unsealing) takes tens of milliseconds: on a blocking
        // thread, not on a runtime worker, where the calls queued behind it would wait
        // that long while a replica loads a large index.
        let keys = self.keys.clone();
        let decode = move || {
            rows.into_iter()
                .filter_map(|row| {
                    let id = row.id;
                    match to_domain(&keys, row) {
                        Ok(account) => Some(account),
                        Err(err) => {
                            tracing::warn!(account_id = %id, error = %err, "account left out of webhook routing");
                            None
                        }
                    }
                })
                .collect()
        };
        let accounts = tokio::task::spawn_blocking(decode)
            .await
            .map_err(|err| Error::Internal(format!("decoding a page of routes failed: {err}")))?;
        Ok((accounts, next))
    }
}
