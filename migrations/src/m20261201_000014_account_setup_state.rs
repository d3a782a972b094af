//! Accounts say where their set-up at the provider stands (`setup_state`): not needed,
//! pending, done or failed, beside `setup_error` (the provider's reason). Before, an
//! empty `setup_error` read as done even for a set-up that never ran.
//!
//! Existing rows: a refusal on record is `failed`; a WhatsApp Cloud account (config with
//! `phone_number_id`, `waba_id` and `access_token`) without one is `pending` — whether
//! its set-up finished is not known, and the next update runs it again (registration
//! and subscription are idempotent at Meta); every other account is `not_needed`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    SetupState,
    SetupError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(
                        ColumnDef::new(Accounts::SetupState)
                            .string()
                            .not_null()
                            .default("not_needed"),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute(
            &Query::update()
                .table(Accounts::Table)
                .value(Accounts::SetupState, "failed")
                .and_where(Expr::col(Accounts::SetupError).is_not_null())
                .to_owned(),
        )
        .await?;
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT id, CAST(config AS TEXT) AS config FROM accounts \
                 WHERE channel = 'whatsapp' AND setup_error IS NULL",
            ))
            .await?;
        for row in rows {
            let id: Uuid = row.try_get("", "id")?;
            let text: String = row.try_get("", "config")?;
            let config: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            // The server's rule: non-empty strings (the token, sealed, is an envelope).
            let present = |key: &str| match config.get(key) {
                Some(Value::String(text)) => !text.is_empty(),
                Some(Value::Object(envelope)) => envelope.contains_key("$patchbay_sealed"),
                _ => false,
            };
            let cloud = ["phone_number_id", "waba_id", "access_token"]
                .iter()
                .all(|key| present(key));
            if cloud {
                db.execute(
                    &Query::update()
                        .table(Accounts::Table)
                        .value(Accounts::SetupState, "pending")
                        .and_where(Expr::col(Accounts::Id).eq(id))
                        .to_owned(),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::SetupState)
                    .to_owned(),
            )
            .await
    }
}
