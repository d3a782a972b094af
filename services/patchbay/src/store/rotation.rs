//! Key rotation: re-seal every stored secret under the active key, in batches, while
//! the server keeps serving. Soft-deleted rows are passed over: their secrets were
//! erased by the delete (migration 000022 erased the older ones).
//!
//! Each row is rewritten by one conditional UPDATE (`WHERE revision = <read revision>`),
//! never inside a long transaction: a row changed by the server meanwhile is read again
//! and retried, so a concurrent write is never overwritten with older content. Rotation
//! changes no revision: it is not a change of the record.

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, EntityTrait, PrimaryKeyTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entities::{account, channel_settings, integration};
use super::secret_fields::{Owner, is_current_text, open_text, reseal_document, seal_text};
use super::{Store, db_error};
use crate::domain::config_document::SecretRule;
use crate::domain::provider::Catalog;
use crate::domain::{Error, RecordKind};
use crate::sealing::KeyRing;

/// What a rotation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub records_checked: u64,
    pub records_rewritten: u64,
    pub secrets_resealed: u64,
    /// Records whose secrets could not be opened (`<kind> <id>: <why>`), left as they
    /// are; every other record was rotated.
    pub unreadable: Vec<String>,
}

/// How often one row is retried when the server keeps changing it.
const MAX_ATTEMPTS: usize = 10;

/// Column updates that re-seal a row, and how many values they change (0: none).
type Resealed<C> = (Vec<(C, SimpleExpr)>, usize);

/// A table whose rows hold sealed secrets: where they are and how to rewrite them.
trait SealedTable: EntityTrait {
    const KIND: RecordKind;
    fn id_column() -> Self::Column;
    fn revision_column() -> Self::Column;
    /// The column that marks a soft-deleted row, for the tables that have one.
    fn deleted_column() -> Option<Self::Column> {
        None
    }
    fn id(row: &Self::Model) -> Uuid;
    fn revision(row: &Self::Model) -> i64;
    /// The row's secrets re-sealed under the active key, as column updates, and how many
    /// values changed (0: nothing to write). The catalog tells a provider config's
    /// secrets (its schema); other configs go by name.
    fn reseal(
        keys: &KeyRing,
        catalog: &Catalog,
        row: &Self::Model,
    ) -> Result<Resealed<Self::Column>, Error>;
}

fn owner(kind: RecordKind, id: Uuid) -> Owner {
    Owner { kind, id }
}

fn config_update(
    keys: &KeyRing,
    kind: RecordKind,
    id: Uuid,
    config: &serde_json::Value,
    rule: SecretRule<'_>,
) -> Result<(SimpleExpr, usize), Error> {
    let serde_json::Value::Object(document) = config else {
        return Err(Error::Internal(format!(
            "{} {id} has a config that is not a JSON object",
            kind.as_str()
        )));
    };
    let (sealed, changed) = reseal_document(keys, owner(kind, id), "config", document, rule)?;
    Ok((Expr::value(serde_json::Value::Object(sealed)), changed))
}

impl SealedTable for account::Entity {
    const KIND: RecordKind = RecordKind::Account;
    fn id_column() -> account::Column {
        account::Column::Id
    }
    fn revision_column() -> account::Column {
        account::Column::Revision
    }
    fn deleted_column() -> Option<account::Column> {
        Some(account::Column::DeletedAt)
    }
    fn id(row: &account::Model) -> Uuid {
        row.id
    }
    fn revision(row: &account::Model) -> i64 {
        row.revision
    }
    fn reseal(
        keys: &KeyRing,
        _: &Catalog,
        row: &account::Model,
    ) -> Result<Resealed<account::Column>, Error> {
        let (config, mut changed) =
            config_update(keys, Self::KIND, row.id, &row.config, SecretRule::ByName)?;
        let mut updates = vec![(account::Column::Config, config)];
        let stale = !is_current_text(keys, &row.verify_token);
        let unindexed = row.verify_token_index.is_none()
            && keys
                .index_of(super::accounts::VERIFY_TOKEN_INDEX, "")
                .is_some();
        if stale || unindexed {
            let who = owner(Self::KIND, row.id);
            let token = open_text(keys, who, "verify_token", &row.verify_token)?;
            if stale {
                let sealed = seal_text(keys, who, "verify_token", &token)?;
                updates.push((account::Column::VerifyToken, Expr::value(sealed)));
                changed += 1;
            }
            if unindexed {
                // Rows from before the verify-token index get their entry.
                let index = keys.index_of(super::accounts::VERIFY_TOKEN_INDEX, &token);
                updates.push((account::Column::VerifyTokenIndex, Expr::value(index)));
                changed += 1;
            }
        }
        Ok((updates, changed))
    }
}

impl SealedTable for channel_settings::Entity {
    const KIND: RecordKind = RecordKind::ChannelSettings;
    fn id_column() -> channel_settings::Column {
        channel_settings::Column::Id
    }
    fn revision_column() -> channel_settings::Column {
        channel_settings::Column::Revision
    }
    fn id(row: &channel_settings::Model) -> Uuid {
        row.id
    }
    fn revision(row: &channel_settings::Model) -> i64 {
        row.revision
    }
    fn reseal(
        keys: &KeyRing,
        _: &Catalog,
        row: &channel_settings::Model,
    ) -> Result<Resealed<channel_settings::Column>, Error> {
        let (config, changed) =
            config_update(keys, Self::KIND, row.id, &row.config, SecretRule::ByName)?;
        Ok((vec![(channel_settings::Column::Config, config)], changed))
    }
}

impl SealedTable for integration::Entity {
    const KIND: RecordKind = RecordKind::Integration;
    fn id_column() -> integration::Column {
        integration::Column::Id
    }
    fn revision_column() -> integration::Column {
        integration::Column::Revision
    }
    fn deleted_column() -> Option<integration::Column> {
        Some(integration::Column::DeletedAt)
    }
    fn id(row: &integration::Model) -> Uuid {
        row.id
    }
    fn revision(row: &integration::Model) -> i64 {
        row.revision
    }
    fn reseal(
        keys: &KeyRing,
        catalog: &Catalog,
        row: &integration::Model,
    ) -> Result<Resealed<integration::Column>, Error> {
        let provider = catalog.get(&row.provider).ok_or_else(|| {
            Error::Internal(format!(
                "integration {} has unknown provider {:?}",
                row.id, row.provider
            ))
        })?;
        let rule = SecretRule::Schema(provider.secret_paths());
        let (config, changed) = config_update(keys, Self::KIND, row.id, &row.config, rule)?;
        Ok((vec![(integration::Column::Config, config)], changed))
    }
}

impl Store {
    pub async fn rotate_keys(&self, batch_size: u64) -> Result<RotationReport, Error> {
        let batch_size = batch_size.max(1);
        let catalog = self.load_catalog().await?;
        let mut report = RotationReport::default();
        self.rotate_table::<account::Entity>(batch_size, &catalog, &mut report)
            .await?;
        self.rotate_table::<channel_settings::Entity>(batch_size, &catalog, &mut report)
            .await?;
        self.rotate_table::<integration::Entity>(batch_size, &catalog, &mut report)
            .await?;
        let answers = self
            .idempotency()
            .reseal_idempotency_answers(&mut report.unreadable)
            .await?;
        report.secrets_resealed += answers;
        Ok(report)
    }

    /// Walks a table in id order, batch by batch.
    async fn rotate_table<E>(
        &self,
        batch_size: u64,
        catalog: &Catalog,
        report: &mut RotationReport,
    ) -> Result<(), Error>
    where
        E: SealedTable,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
    {
        let mut after = Uuid::nil();
        loop {
            let mut query = E::find().filter(E::id_column().gt(after));
            if let Some(deleted) = E::deleted_column() {
                query = query.filter(deleted.is_null());
            }
            let rows = query
                .order_by_asc(E::id_column())
                .limit(batch_size)
                .all(self.conn())
                .await
                .map_err(db_error)?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = E::id(last);
            for row in rows {
                report.records_checked += 1;
                self.rotate_row::<E>(row, catalog, report).await?;
            }
        }
    }

    /// Re-seals one row, reading it again whenever the server changed it in between.
    async fn rotate_row<E>(
        &self,
        mut row: E::Model,
        catalog: &Catalog,
        report: &mut RotationReport,
    ) -> Result<(), Error>
    where
        E: SealedTable,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
    {
        for _ in 0..MAX_ATTEMPTS {
            // A record that cannot be opened is reported and passed over: the others
            // still move to the active key.
            let (updates, changed) = match E::reseal(self.keys(), catalog, &row) {
                Ok(resealed) => resealed,
                Err(err) => {
                    let id = E::id(&row);
                    super::readable::report_unreadable(E::KIND, id, &err);
                    let why = match &err {
                        Error::Internal(detail) => detail.clone(),
                        other => other.to_string(),
                    };
                    report
                        .unreadable
                        .push(format!("{} {id}: {why}", E::KIND.as_str()));
                    return Ok(());
                }
            };
            if changed == 0 {
                return Ok(());
            }
            let mut statement = E::update_many();
            for (column, value) in updates {
                statement = statement.col_expr(column, value);
            }
            let written = statement
                .filter(E::id_column().eq(E::id(&row)))
                .filter(E::revision_column().eq(E::revision(&row)))
                .exec(self.conn())
                .await
                .map_err(db_error)?;
            if written.rows_affected == 1 {
                report.records_rewritten += 1;
                report.secrets_resealed += changed as u64;
                return Ok(());
            }
            match E::find_by_id(E::id(&row))
                .one(self.conn())
                .await
                .map_err(db_error)?
            {
                Some(fresh) => row = fresh,
                None => return Ok(()),
            }
        }
        Err(Error::Aborted(format!(
            "{} {} kept changing during rotation; run the rotation again",
            E::KIND.as_str(),
            E::id(&row)
        )))
    }
}
