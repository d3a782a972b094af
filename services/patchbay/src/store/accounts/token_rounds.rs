//! The pages of the rounds (the token checker's, the refresher's, the health round's):
//! live accounts in every workspace, nearest token expiry first, then tokens without a
//! known expiry, each in id order. A page resumes after the [`ExpiryKey`] of the last account dealt with,
//! which a round keeps with its lease. The index `ix_accounts_token_expiry` serves the
//! first part; the second is read in id order.

use super::AccountsRepo;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, IntoCondition};
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::entities::account::{Column, Entity, Model};
use super::super::{db_error, readable};
use super::rows::to_domain;
use crate::domain::account::TokenSource;
use crate::domain::{Account, Channel, Error, RecordKind};

/// Where an account stands in a round's order. Ordered as the round goes: tokens with
/// an expiry (soonest first), then those without, each by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryKey {
    pub expires_at: Option<DateTime<Utc>>,
    pub id: Uuid,
}

impl ExpiryKey {
    pub fn of(account: &Account) -> Self {
        Self {
            expires_at: account.provider_state.token_expires_at,
            id: account.id,
        }
    }

    fn of_row(row: &Model) -> Self {
        Self {
            expires_at: row.token_expires_at,
            id: row.id,
        }
    }

    fn order(&self) -> (bool, Option<DateTime<Utc>>, Uuid) {
        (self.expires_at.is_none(), self.expires_at, self.id)
    }
}

impl PartialOrd for ExpiryKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ExpiryKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

impl AccountsRepo<'_> {
    /// The token checker's page: live accounts of `channels` after `after`, in round
    /// order, at most `limit`. A flagged token is not asked about again: Meta does not
    /// revive a token it refused, and the next one stored clears the flag.
    pub async fn accounts_by_token_expiry(
        &self,
        channels: &[Channel],
        after: Option<ExpiryKey>,
        limit: u64,
    ) -> Result<Vec<Account>, Error> {
        let query = Entity::find()
            .filter(Column::Channel.is_in(channels.iter().map(|c| c.as_str())))
            .filter(Column::DeletedAt.is_null())
            .filter(Column::ReauthorizationRequired.eq(false));
        self.in_round_order(query, after, limit, true).await
    }

    /// The health round's page: every live account after `after`, in round order, at
    /// most `limit` (a flagged token too: its health is counted).
    pub async fn accounts_in_round_order(
        &self,
        after: Option<ExpiryKey>,
        limit: u64,
    ) -> Result<Vec<Account>, Error> {
        let query = Entity::find().filter(Column::DeletedAt.is_null());
        self.in_round_order(query, after, limit, true).await
    }

    /// The active defaults of every workspace after id `after`, in id order, at most
    /// `limit` (those that cannot be read left out, and reported): the health round's
    /// census of the scopes on a fallback.
    pub async fn defaults_after(
        &self,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<Account>, Option<Uuid>), Error> {
        let mut query = Entity::find()
            .filter(Column::IsDefault.eq(true))
            .filter(Column::IsActive.eq(true))
            .filter(Column::DeletedAt.is_null());
        if let Some(after) = after {
            query = query.filter(Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        let last = rows.last().map(|row| row.id);
        let accounts = readable::keep_readable(
            rows,
            RecordKind::Account,
            |row| row.id,
            |row| to_domain(self.keys(), row),
        );
        Ok((accounts, last))
    }

    /// The refresher's page: live Instagram Login accounts whose token expires before
    /// `before`, was neither rejected nor given up on, and was not refreshed since
    /// `refreshed_before` (Meta refreshes only tokens at least 24 hours old), after
    /// `after`, soonest first. Rows from before token sources were recorded come too:
    /// their source is told when they are read.
    pub async fn tokens_expiring(
        &self,
        before: DateTime<Utc>,
        refreshed_before: DateTime<Utc>,
        after: Option<ExpiryKey>,
        limit: u64,
    ) -> Result<Vec<Account>, Error> {
        let query = Entity::find()
            .filter(Column::Channel.eq(Channel::Instagram.as_str()))
            .filter(
                Condition::any()
                    .add(Column::TokenSource.eq(TokenSource::InstagramLogin.as_str()))
                    .add(Column::TokenSource.is_null()),
            )
            .filter(
                Condition::any()
                    .add(Column::TokenRefreshedAt.is_null())
                    .add(Column::TokenRefreshedAt.lt(refreshed_before)),
            )
            .filter(Column::DeletedAt.is_null())
            .filter(Column::ReauthorizationRequired.eq(false))
            .filter(Column::RefreshExhausted.eq(false))
            .filter(Column::TokenExpiresAt.lt(before));
        self.in_round_order(query, after, limit, false).await
    }

    /// `query`'s rows in round order after `after`, topped up past unreadable rows (a
    /// row that cannot be opened is skipped, and cannot hold a round's place).
    async fn in_round_order(
        &self,
        query: Select<Entity>,
        after: Option<ExpiryKey>,
        limit: u64,
        without_expiry_too: bool,
    ) -> Result<Vec<Account>, Error> {
        let conn = self.conn();
        readable::read_page(
            limit,
            after,
            RecordKind::Account,
            |after: Option<ExpiryKey>, want| {
                let query = query.clone();
                async move {
                    let mut rows = Vec::new();
                    if after.as_ref().is_none_or(|key| key.expires_at.is_some()) {
                        let mut with_expiry = query
                            .clone()
                            .filter(Column::TokenExpiresAt.is_not_null())
                            .order_by_asc(Column::TokenExpiresAt)
                            .order_by_asc(Column::Id);
                        if let Some(ExpiryKey {
                            expires_at: Some(at),
                            id,
                        }) = &after
                        {
                            with_expiry = with_expiry.filter(
                                Condition::any()
                                    .add(Column::TokenExpiresAt.gt(*at))
                                    .add(Column::TokenExpiresAt.eq(*at).and(Column::Id.gt(*id))),
                            );
                        }
                        rows = with_expiry.limit(want).all(conn).await.map_err(db_error)?;
                    }
                    let left = want.saturating_sub(rows.len() as u64);
                    if without_expiry_too && left > 0 {
                        let mut without = query
                            .filter(Column::TokenExpiresAt.is_null())
                            .order_by_asc(Column::Id);
                        if let Some(ExpiryKey {
                            expires_at: None,
                            id,
                        }) = &after
                        {
                            without = without.filter(Column::Id.gt(*id).into_condition());
                        }
                        rows.extend(without.limit(left).all(conn).await.map_err(db_error)?);
                    }
                    Ok(rows)
                }
            },
            (ExpiryKey::of_row, |row: &Model| row.id),
            |row| to_domain(self.keys(), row),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_with_an_expiry_come_first_soonest_first() {
        let at = |s| DateTime::from_timestamp(s, 0);
        let key = |expires_at, n| ExpiryKey {
            expires_at,
            id: Uuid::from_u128(n),
        };
        let mut keys = vec![key(None, 1), key(at(20), 2), key(at(10), 3), key(at(10), 0)];
        keys.sort();
        assert_eq!(
            keys,
            [key(at(10), 0), key(at(10), 3), key(at(20), 2), key(None, 1)]
        );
    }
}
