//! Seeding for tests and benchmarks, behind the `seeding` feature: never in the shipped
//! binary, never for a caller's request.

use super::AccountsRepo;
use sea_orm::EntityTrait;

use super::super::db_error;
use super::super::entities::account::Entity;
use super::rows::to_active;
use crate::domain::{Account, Error};

impl AccountsRepo<'_> {
    /// Writes accounts as they are, with no audit event and no default rules.
    pub async fn seed_accounts(&self, accounts: &[Account]) -> Result<(), Error> {
        for chunk in accounts.chunks(200) {
            let rows = chunk
                .iter()
                .map(|account| to_active(self.keys(), account))
                .collect::<Result<Vec<_>, _>>()?;
            Entity::insert_many(rows)
                .exec_without_returning(self.conn())
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}
