//! The `accounts` table. Every write takes the lock of its (workspace, channel) scope
//! first, so that key uniqueness and the one-default rule hold under any concurrency,
//! across replicas too; the partial unique indexes of the migration back both up.

mod channels;
mod routes;
pub(super) mod rows;
pub(crate) use rows::stored_health;
#[cfg(feature = "seeding")]
mod seeding;
mod token_rounds;
mod writes;

pub(super) use channels::KnownChannels;
pub use routes::{ROUTES_NOTIFY_CHANNEL, RoutedCursor};
pub use token_rounds::ExpiryKey;

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::account_events::EventsRecorded;
use super::default_changes::DefaultsChanged;
use super::entities::account::{Column, Entity};
use super::{Store, db_error, live, readable};
use crate::domain::defaults::DefaultsFilter;
use crate::domain::{Account, Channel, Error, RecordKind};
use rows::to_domain;

/// A stored write: the state it left, the default revision it recorded when it
/// touched a default (see `default_changes`), and the account whose webhook routing it
/// changed (see `routes`).
pub struct Written<T> {
    pub value: T,
    pub defaults: Option<DefaultsChanged>,
    pub routes: Option<Uuid>,
    /// The account events it recorded (see `account_events`).
    pub events: Option<EventsRecorded>,
}

/// Which accounts a list returns.
pub struct AccountFilter<'a> {
    pub workspace_id: &'a str,
    pub channel: Option<Channel>,
    /// A division-scoped caller sees its division's and workspace-wide accounts.
    pub caller_division: Option<&'a str>,
    /// Only ids after this one (the page token).
    pub after: Option<Uuid>,
    pub limit: u64,
}

/// The index of verify tokens (`KeyRing::index_of`).
pub const VERIFY_TOKEN_INDEX: &str = "verify_token";

/// Most accounts without an index entry a channel-wide handshake still compares against
/// (rows from before the index, until `keys rotate` fills it).
const MAX_UNINDEXED: u64 = 10_000;

impl AccountsRepo<'_> {
    /// The live accounts of `channel` whose verify token may be `token`: those its index
    /// entry finds, and those without an entry yet (compared one by one).
    pub async fn accounts_by_verify_token(
        &self,
        workspace_id: &str,
        channel: Channel,
        caller_division: Option<&str>,
        token: &str,
    ) -> Result<Vec<Account>, Error> {
        let mut base = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(Column::DeletedAt.is_null());
        if let Some(division) = caller_division {
            base = base.filter(seen_from_division(division));
        }
        // The index's matches first, on their own (a few rows at most), then the rows
        // without an entry yet, bounded: neither can push the other out.
        let mut rows = match self.keys().index_of(VERIFY_TOKEN_INDEX, token) {
            Some(index) => base
                .clone()
                .filter(Column::VerifyTokenIndex.eq(index))
                .limit(16)
                .all(self.conn())
                .await
                .map_err(db_error)?,
            None => Vec::new(),
        };
        rows.extend(
            base.filter(Column::VerifyTokenIndex.is_null())
                .order_by_asc(Column::Id)
                .limit(MAX_UNINDEXED)
                .all(self.conn())
                .await
                .map_err(db_error)?,
        );
        Ok(readable::keep_readable(
            rows,
            RecordKind::Account,
            |row| row.id,
            |row| to_domain(self.keys(), row),
        ))
    }

    pub async fn list_accounts(&self, filter: &AccountFilter<'_>) -> Result<Vec<Account>, Error> {
        let mut query = live::live::<Entity>(filter.workspace_id);
        if let Some(channel) = filter.channel {
            query = query.filter(Column::Channel.eq(channel.as_str()));
        }
        if let Some(division) = filter.caller_division {
            query = query.filter(seen_from_division(division));
        }
        live::page(self.conn(), query, filter.after, filter.limit, |row| {
            to_domain(self.keys(), row)
        })
        .await
    }

    /// A live account of the workspace, whatever its division.
    pub async fn find_account(
        &self,
        workspace_id: &str,
        id: Uuid,
    ) -> Result<Option<Account>, Error> {
        live::find::<Entity, _>(self.conn(), workspace_id, id, |row| {
            to_domain(self.keys(), row)
        })
        .await
    }

    /// The live account with this key on the channel.
    pub async fn find_account_by_key(
        &self,
        workspace_id: &str,
        channel: Channel,
        account_key: &str,
    ) -> Result<Option<Account>, Error> {
        let row = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(Column::AccountKey.eq(account_key))
            .filter(Column::DeletedAt.is_null())
            .one(self.conn())
            .await
            .map_err(db_error)?;
        row.map(|row| to_domain(self.keys(), row)).transpose()
    }

    /// The divisions (`None`: workspace-wide) of the workspace's live accounts of
    /// `channel` keyed `account_key` or naming `provider_id`: who holds an id, read
    /// without opening any record.
    pub async fn divisions_holding(
        &self,
        workspace_id: &str,
        channel: Channel,
        account_key: &str,
        provider_id: Option<&str>,
    ) -> Result<Vec<Option<String>>, Error> {
        let mut named = sea_orm::Condition::any().add(Column::AccountKey.eq(account_key));
        if let Some(id) = provider_id {
            named = named.add(Column::ProviderId.eq(id));
        }
        Entity::find()
            .select_only()
            .column(Column::DivisionId)
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(named)
            .filter(Column::DeletedAt.is_null())
            .into_tuple::<Option<String>>()
            .all(self.conn())
            .await
            .map_err(db_error)
    }

    /// Live accounts of `channels` in every workspace, in id order after `after`, at
    /// most `limit`: the ownership confirmations' pages.
    pub async fn accounts_of_channels(
        &self,
        channels: &[Channel],
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Account>, Error> {
        let query = Entity::find()
            .filter(Column::Channel.is_in(channels.iter().map(|c| c.as_str())))
            .filter(Column::DeletedAt.is_null());
        live::page(self.conn(), query, after, limit, |row| {
            to_domain(self.keys(), row)
        })
        .await
    }

    /// The active default of one scope: a division's (`Some`) or the workspace-wide one.
    pub async fn find_default_account(
        &self,
        workspace_id: &str,
        channel: Channel,
        division_id: Option<&str>,
    ) -> Result<Option<Account>, Error> {
        let row = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(division_condition(division_id))
            .filter(Column::IsDefault.eq(true))
            .filter(Column::IsActive.eq(true))
            .filter(Column::DeletedAt.is_null())
            .one(self.conn())
            .await
            .map_err(db_error)?;
        row.map(|row| to_domain(self.keys(), row)).transpose()
    }

    /// Every active default of the workspace the filter covers.
    pub async fn list_default_accounts(
        &self,
        workspace_id: &str,
        filter: &DefaultsFilter,
    ) -> Result<Vec<Account>, Error> {
        let mut query = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::IsDefault.eq(true))
            .filter(Column::IsActive.eq(true))
            .filter(Column::DeletedAt.is_null());
        if !filter.channels.is_empty() {
            query = query.filter(Column::Channel.is_in(filter.channels.iter().map(|c| c.as_str())));
        }
        if let Some(division) = &filter.division_id {
            query = query.filter(seen_from_division(division));
        }
        let rows = query
            .order_by_asc(Column::Id)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        Ok(readable::keep_readable(
            rows,
            RecordKind::Account,
            |row| row.id,
            |row| to_domain(self.keys(), row),
        ))
    }
}

pub(super) fn scope_key(workspace_id: &str, channel: Channel) -> String {
    format!("accounts/{workspace_id}/{}", channel.as_str())
}

/// The accounts a division sees: its own and the workspace-wide ones.
fn seen_from_division(division: &str) -> Condition {
    Condition::any()
        .add(Column::DivisionId.is_null())
        .add(Column::DivisionId.eq(division))
}

pub(super) fn division_condition(division_id: Option<&str>) -> Condition {
    match division_id {
        Some(division) => Condition::all().add(Column::DivisionId.eq(division)),
        None => Condition::all().add(Column::DivisionId.is_null()),
    }
}

/// The repository of the `accounts` table: reads, writes under the scope lock, routing, the token rounds' pages: `store.accounts()`.
pub struct AccountsRepo<'a>(&'a Store);

impl Store {
    pub fn accounts(&self) -> AccountsRepo<'_> {
        AccountsRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for AccountsRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
