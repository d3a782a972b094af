//! Key rotation: re-seal every stored secret under the active key, live rows and
//! soft-deleted ones alike, in batches, while the server keeps serving.
//!
//! Each row is rewritten by one conditional UPDATE (`WHERE revision = <read revision>`),
//! never inside a long transaction: a row changed by the server meanwhile is read again
//! and retried, so a concurrent write is never overwritten with older content. Rotation
//! changes no revision: it is not a change of the record.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entities::{account, channel_settings, integration};
use super::secret_fields::{Owner, is_current_text, open_text, reseal_document, seal_text};
use super::{Store, db_error};
use crate::domain::{Error, RecordKind};

/// What a rotation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub records_checked: u64,
    pub records_rewritten: u64,
    pub secrets_resealed: u64,
}

/// How often one row is retried when the server keeps changing it.
const MAX_ATTEMPTS: usize = 10;

impl Store {
    pub async fn rotate_keys(&self, batch_size: u64) -> Result<RotationReport, Error> {
        let batch_size = batch_size.max(1);
        let mut report = RotationReport::default();
        let mut after = Uuid::nil();
        loop {
            let rows = account::Entity::find()
                .filter(account::Column::Id.gt(after))
                .order_by_asc(account::Column::Id)
                .limit(batch_size)
                .all(self.conn())
                .await
                .map_err(db_error)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows {
                report.records_checked += 1;
                self.rotate_account(row, &mut report).await?;
            }
        }
        let mut after = Uuid::nil();
        loop {
            let rows = channel_settings::Entity::find()
                .filter(channel_settings::Column::Id.gt(after))
                .order_by_asc(channel_settings::Column::Id)
                .limit(batch_size)
                .all(self.conn())
                .await
                .map_err(db_error)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows {
                report.records_checked += 1;
                self.rotate_channel_settings(row, &mut report).await?;
            }
        }
        let mut after = Uuid::nil();
        loop {
            let rows = integration::Entity::find()
                .filter(integration::Column::Id.gt(after))
                .order_by_asc(integration::Column::Id)
                .limit(batch_size)
                .all(self.conn())
                .await
                .map_err(db_error)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows {
                report.records_checked += 1;
                self.rotate_integration(row, &mut report).await?;
            }
        }
        Ok(report)
    }

    async fn rotate_integration(
        &self,
        mut row: integration::Model,
        report: &mut RotationReport,
    ) -> Result<(), Error> {
        let owner = Owner {
            kind: RecordKind::Integration,
            id: row.id,
        };
        for _ in 0..MAX_ATTEMPTS {
            let config = as_document(&row.config, owner)?;
            let (sealed, stale) = reseal_document(self.keys(), owner, "config", &config)?;
            if stale == 0 {
                return Ok(());
            }
            let written = integration::Entity::update_many()
                .col_expr(
                    integration::Column::Config,
                    Expr::value(serde_json::Value::Object(sealed)),
                )
                .filter(integration::Column::Id.eq(row.id))
                .filter(integration::Column::Revision.eq(row.revision))
                .exec(self.conn())
                .await
                .map_err(db_error)?;
            if written.rows_affected == 1 {
                report.records_rewritten += 1;
                report.secrets_resealed += stale as u64;
                return Ok(());
            }
            match integration::Entity::find_by_id(row.id)
                .one(self.conn())
                .await
                .map_err(db_error)?
            {
                Some(fresh) => row = fresh,
                None => return Ok(()),
            }
        }
        Err(Error::Aborted(format!(
            "integration {} kept changing during rotation; run the rotation again",
            row.id
        )))
    }

    async fn rotate_account(
        &self,
        mut row: account::Model,
        report: &mut RotationReport,
    ) -> Result<(), Error> {
        let owner = Owner {
            kind: RecordKind::Account,
            id: row.id,
        };
        for _ in 0..MAX_ATTEMPTS {
            let config = as_document(&row.config, owner)?;
            let (sealed, mut stale) = reseal_document(self.keys(), owner, "config", &config)?;
            let sealed_token = if is_current_text(self.keys(), &row.verify_token) {
                row.verify_token.clone()
            } else {
                stale += 1;
                let token = open_text(self.keys(), owner, "verify_token", &row.verify_token)?;
                seal_text(self.keys(), owner, "verify_token", &token)?
            };
            if stale == 0 {
                return Ok(());
            }
            let written = account::Entity::update_many()
                .col_expr(
                    account::Column::Config,
                    Expr::value(serde_json::Value::Object(sealed)),
                )
                .col_expr(account::Column::VerifyToken, Expr::value(sealed_token))
                .filter(account::Column::Id.eq(row.id))
                .filter(account::Column::Revision.eq(row.revision))
                .exec(self.conn())
                .await
                .map_err(db_error)?;
            if written.rows_affected == 1 {
                report.records_rewritten += 1;
                report.secrets_resealed += stale as u64;
                return Ok(());
            }
            // Changed meanwhile: the server sealed its write under the active key
            // already, but read it again to be sure.
            match account::Entity::find_by_id(row.id)
                .one(self.conn())
                .await
                .map_err(db_error)?
            {
                Some(fresh) => row = fresh,
                None => return Ok(()),
            }
        }
        Err(Error::Aborted(format!(
            "account {} kept changing during rotation; run the rotation again",
            row.id
        )))
    }

    async fn rotate_channel_settings(
        &self,
        mut row: channel_settings::Model,
        report: &mut RotationReport,
    ) -> Result<(), Error> {
        let owner = Owner {
            kind: RecordKind::ChannelSettings,
            id: row.id,
        };
        for _ in 0..MAX_ATTEMPTS {
            let config = as_document(&row.config, owner)?;
            let (sealed, stale) = reseal_document(self.keys(), owner, "config", &config)?;
            if stale == 0 {
                return Ok(());
            }
            let written = channel_settings::Entity::update_many()
                .col_expr(
                    channel_settings::Column::Config,
                    Expr::value(serde_json::Value::Object(sealed)),
                )
                .filter(channel_settings::Column::Id.eq(row.id))
                .filter(channel_settings::Column::Revision.eq(row.revision))
                .exec(self.conn())
                .await
                .map_err(db_error)?;
            if written.rows_affected == 1 {
                report.records_rewritten += 1;
                report.secrets_resealed += stale as u64;
                return Ok(());
            }
            match channel_settings::Entity::find_by_id(row.id)
                .one(self.conn())
                .await
                .map_err(db_error)?
            {
                Some(fresh) => row = fresh,
                None => return Ok(()),
            }
        }
        Err(Error::Aborted(format!(
            "channel settings {} kept changing during rotation; run the rotation again",
            row.id
        )))
    }
}

fn as_document(
    config: &serde_json::Value,
    owner: Owner,
) -> Result<crate::domain::config_document::Document, Error> {
    match config {
        serde_json::Value::Object(document) => Ok(document.clone()),
        _ => Err(Error::Internal(format!(
            "{} {} has a config that is not a JSON object",
            owner.kind.as_str(),
            owner.id
        ))),
    }
}
