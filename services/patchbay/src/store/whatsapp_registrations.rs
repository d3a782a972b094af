//! Meta's register allowance per WhatsApp number (`domain::account::registration`),
//! kept across accounts, workspaces and replicas. An attempt is reserved before the
//! call, under the number's lock, so that two set-ups of one number at once cannot both
//! take the last place; an attempt Meta never judged gives its place back.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::entities::whatsapp_registration::{ActiveModel, Entity, Model};
use super::{Store, db_error, lock_scope};
use crate::domain::Error;
use crate::domain::account::registration::{RegisterAnswer, Registrations};

impl WhatsAppRegistrationsRepo<'_> {
    /// Takes a place for an attempt at `now`, or says until when none is free.
    pub async fn reserve_register_attempt(
        &self,
        phone_number_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        self.change_registrations(phone_number_id, |registrations| {
            match registrations.wait_until(now) {
                Some(until) => Err(until),
                None => {
                    registrations.record(now, RegisterAnswer::Accepted);
                    Ok(())
                }
            }
        })
        .await
        .map(|reserved| reserved.err())
    }

    /// Settles the attempt reserved at `at` with Meta's answer: a place given back
    /// when Meta never judged the number, a wait recorded when Meta asked for one.
    pub async fn settle_register_attempt(
        &self,
        phone_number_id: &str,
        at: DateTime<Utc>,
        answer: RegisterAnswer,
    ) -> Result<Registrations, Error> {
        let mut settled = Registrations::default();
        // Always written: the change never declines.
        let _always: Result<(), std::convert::Infallible> = self
            .change_registrations(phone_number_id, |registrations| {
                if let Some(place) = registrations.attempts.iter().position(|t| *t == at) {
                    registrations.attempts.remove(place);
                }
                registrations.record(at, answer);
                settled = registrations.clone();
                Ok(())
            })
            .await?;
        Ok(settled)
    }

    /// Reads, changes and writes one number's record under its lock. `change` says
    /// whether to write (`Ok`) or leave it (`Err`, handed back).
    async fn change_registrations<E>(
        &self,
        phone_number_id: &str,
        change: impl FnOnce(&mut Registrations) -> Result<(), E>,
    ) -> Result<Result<(), E>, Error> {
        let txn = self.begin_write().await?;
        lock_scope(&txn, &format!("whatsapp-register/{phone_number_id}")).await?;
        let row = Entity::find_by_id(phone_number_id.to_owned())
            .one(&*txn)
            .await
            .map_err(db_error)?;
        let mut registrations = row.as_ref().map(to_domain).unwrap_or_default();
        if let Err(refused) = change(&mut registrations) {
            return Ok(Err(refused));
        }
        let model = ActiveModel {
            phone_number_id: Set(phone_number_id.to_owned()),
            attempts: Set(serde_json::json!(
                registrations
                    .attempts
                    .iter()
                    .map(DateTime::to_rfc3339)
                    .collect::<Vec<_>>()
            )),
            blocked_until: Set(registrations.blocked_until),
        };
        match row {
            Some(_) => {
                Entity::update(model).exec(&*txn).await.map_err(db_error)?;
            }
            None => {
                Entity::insert(model)
                    .exec_without_returning(&*txn)
                    .await
                    .map_err(db_error)?;
            }
        }
        txn.commit().await?;
        Ok(Ok(()))
    }
}

fn to_domain(row: &Model) -> Registrations {
    let attempts = row
        .attempts
        .as_array()
        .map(|times| {
            times
                .iter()
                .filter_map(|time| time.as_str())
                .filter_map(|time| DateTime::parse_from_rfc3339(time).ok())
                .map(|time| time.with_timezone(&Utc))
                .collect()
        })
        .unwrap_or_default();
    Registrations {
        attempts,
        blocked_until: row.blocked_until,
    }
}

/// The repository of WhatsApp registration PINs: `store.whatsapp_registrations()`.
pub struct WhatsAppRegistrationsRepo<'a>(&'a Store);

impl Store {
    pub fn whatsapp_registrations(&self) -> WhatsAppRegistrationsRepo<'_> {
        WhatsAppRegistrationsRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for WhatsAppRegistrationsRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
