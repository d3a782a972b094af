//! Accounts get what routes their webhooks across workspaces:
//!
//! - `webhook_route`: an opaque id, unique across all workspaces and fixed for the
//!   account's life, that names the account in its webhook URL
//!   (`<base>/webhooks/<channel>/<route>`). Account keys are unique only per workspace,
//!   so two workspaces could share a URL made of them.
//! - `provider_id`: the provider's id that Meta's app-level webhooks name the account by
//!   (the WhatsApp phone number id, the Messenger page id, the Instagram account id),
//!   derived from the config on every write.
//! - `provider_id_confirmed`: the provider accepted the account's token for that id. At
//!   most one live account confirms an id across all workspaces (a partial unique
//!   index).
//!
//! Existing accounts get a random route; the oldest live claimant of each provider id
//! confirms it (on WhatsApp, only one whose set-up completed). Webhook URLs change:
//! providers pointed at the old `<base>/webhooks/<channel>/<account_key>` must be
//! pointed at the new ones (docs/operations.md).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Channel,
    WebhookRoute,
    ProviderId,
    ProviderIdConfirmed,
}

const PROVIDER_IDS: [(&str, &str); 3] = [
    ("whatsapp", "phone_number_id"),
    ("messenger", "page_id"),
    ("instagram", "instagram_user_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::add_columns(
            manager,
            Accounts::Table,
            vec![
                ColumnDef::new(Accounts::WebhookRoute)
                    .string()
                    .not_null()
                    .default("")
                    .to_owned(),
                ColumnDef::new(Accounts::ProviderId)
                    .string()
                    .null()
                    .to_owned(),
                ColumnDef::new(Accounts::ProviderIdConfirmed)
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
            ],
        )
        .await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        // Only ids as the application reads them: strings of digits, no leading zero.
        let (random_route, id_of) = match backend {
            DbBackend::Postgres => (
                "md5(random()::text || clock_timestamp()::text || id::text)",
                "CASE WHEN json_typeof(config->'{key}') = 'string' \
                 AND config->>'{key}' ~ '^[1-9][0-9]{0,31}$' THEN config->>'{key}' END",
            ),
            _ => (
                "lower(hex(randomblob(16)))",
                "CASE WHEN json_type(config, '$.{key}') = 'text' \
                 AND json_extract(config, '$.{key}') GLOB '[1-9]*' \
                 AND NOT json_extract(config, '$.{key}') GLOB '*[^0-9]*' \
                 AND length(json_extract(config, '$.{key}')) <= 32 \
                 THEN json_extract(config, '$.{key}') END",
            ),
        };
        db.execute_unprepared(&format!(
            "UPDATE accounts SET webhook_route = {random_route}"
        ))
        .await?;
        for (channel, key) in PROVIDER_IDS {
            let value = id_of.replace("{key}", key);
            db.execute_unprepared(&format!(
                "UPDATE accounts SET provider_id = {value} WHERE channel = '{channel}'"
            ))
            .await?;
        }
        // What stands at the upgrade is trusted once: the oldest live claimant of each
        // id confirms it (on WhatsApp, one whose set-up completed), so that no later
        // claim can block it.
        db.execute_unprepared(
            "UPDATE accounts SET provider_id_confirmed = TRUE \
             WHERE provider_id IS NOT NULL AND deleted_at IS NULL \
             AND (channel <> 'whatsapp' OR setup_state = 'done') AND NOT EXISTS ( \
               SELECT 1 FROM accounts older WHERE older.channel = accounts.channel \
               AND older.provider_id = accounts.provider_id AND older.deleted_at IS NULL \
               AND (older.channel <> 'whatsapp' OR older.setup_state = 'done') \
               AND (older.created_at < accounts.created_at \
               OR (older.created_at = accounts.created_at AND older.id < accounts.id)))",
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_accounts_webhook_route")
                    .table(Accounts::Table)
                    .col(Accounts::WebhookRoute)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_accounts_provider_id")
                    .table(Accounts::Table)
                    .col(Accounts::Channel)
                    .col(Accounts::ProviderId)
                    .to_owned(),
            )
            .await?;
        // sea-query has no partial index for both backends: the same SQL works on each.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_accounts_confirmed_provider_id ON accounts (channel, provider_id) \
             WHERE provider_id_confirmed AND deleted_at IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in [
            "ux_accounts_confirmed_provider_id",
            "ix_accounts_provider_id",
            "ux_accounts_webhook_route",
        ] {
            manager
                .drop_index(Index::drop().name(index).table(Accounts::Table).to_owned())
                .await?;
        }
        crate::columns::drop_columns(
            manager,
            Accounts::Table,
            vec![
                Accounts::WebhookRoute,
                Accounts::ProviderId,
                Accounts::ProviderIdConfirmed,
            ],
        )
        .await?;
        Ok(())
    }
}
