//! Ownership of provider ids by Meta's word (#27):
//!
//! - `ownership` replaces `provider_id_confirmed`: `confirmed` (Meta vouched for the
//!   account's token for its provider id: the id's webhooks are the account's across
//!   workspaces), `unconfirmed` (a claim Meta has not vouched for: it routes nothing on
//!   the app-level callback), `lost` (another account took the id through a flow Meta
//!   vouches for; only such a flow gives it back). At most one live account holds an id
//!   `confirmed` (the partial unique index `ux_accounts_owned_provider_id`).
//! - Only the WhatsApp confirmations stay confirmed: the set-up gave them, when Meta
//!   took the account's token for the number's callback. Messenger and Instagram
//!   confirmations were given by migration 000017 to the oldest claimant, without
//!   asking Meta, and nothing records which of the later ones Meta gave: every one
//!   becomes `unconfirmed`, and the start-up confirmation pass asks Meta about each.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Ownership,
    ProviderIdConfirmed,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::add_columns(
            manager,
            Accounts::Table,
            vec![
                ColumnDef::new(Accounts::Ownership)
                    .string()
                    .not_null()
                    .default("unconfirmed")
                    .to_owned(),
            ],
        )
        .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE accounts SET ownership = 'confirmed' \
             WHERE provider_id_confirmed AND channel = 'whatsapp'",
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ux_accounts_confirmed_provider_id")
                    .table(Accounts::Table)
                    .to_owned(),
            )
            .await?;
        crate::columns::drop_columns(
            manager,
            Accounts::Table,
            vec![Accounts::ProviderIdConfirmed],
        )
        .await?;
        // sea-query has no partial index for both backends: the same SQL works on each.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_accounts_owned_provider_id ON accounts (channel, provider_id) \
             WHERE ownership = 'confirmed' AND deleted_at IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_accounts_owned_provider_id")
                    .table(Accounts::Table)
                    .to_owned(),
            )
            .await?;
        crate::columns::add_columns(
            manager,
            Accounts::Table,
            vec![
                ColumnDef::new(Accounts::ProviderIdConfirmed)
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
            ],
        )
        .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE accounts SET provider_id_confirmed = TRUE WHERE ownership = 'confirmed'",
        )
        .await?;
        crate::columns::drop_columns(manager, Accounts::Table, vec![Accounts::Ownership]).await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_accounts_confirmed_provider_id ON accounts (channel, provider_id) \
             WHERE provider_id_confirmed AND deleted_at IS NULL",
        )
        .await?;
        Ok(())
    }
}
