//! The WhatsApp set-up as Meta expects it (#26):
//!
//! - `whatsapp_registrations`: Meta allows 10 `/register` calls per phone number in a
//!   72-hour moving window (error 133016 past it, and then none for 72 hours), whoever
//!   makes them. Per number, across accounts and workspaces: the times of the attempts
//!   Meta counted within the window, and until when Meta said to wait (133015, 133016).
//! - accounts get `setup_retry_after` (an update skips the set-up until then, saying so
//!   in `setup_error`), `display_phone_number` (what Meta says the number is) and
//!   `token_source` (how the Meta token was obtained: `instagram_login`,
//!   `facebook_login`, `system_user`, `pasted`; which check applies to it) and
//!   `coexistence` (JSON: a WhatsApp Business app number's onboarding and syncs).
//! - the provider catalog again: the WhatsApp Cloud integration's `api_version` now
//!   defaults to v25.0 (Meta stops serving v21.0 on 2027-01-21).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WhatsappRegistrations {
    Table,
    PhoneNumberId,
    Attempts,
    BlockedUntil,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    SetupRetryAfter,
    DisplayPhoneNumber,
    TokenSource,
    Coexistence,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WhatsappRegistrations::Table)
                    .col(string(WhatsappRegistrations::PhoneNumberId).primary_key())
                    // The attempts' times, RFC 3339, as a JSON array (at most 10).
                    .col(json(WhatsappRegistrations::Attempts))
                    .col(timestamp_with_time_zone_null(
                        WhatsappRegistrations::BlockedUntil,
                    ))
                    .to_owned(),
            )
            .await?;
        crate::columns::add_columns(
            manager,
            Accounts::Table,
            vec![
                ColumnDef::new(Accounts::SetupRetryAfter)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
                ColumnDef::new(Accounts::DisplayPhoneNumber)
                    .string()
                    .null()
                    .to_owned(),
                ColumnDef::new(Accounts::TokenSource)
                    .string()
                    .null()
                    .to_owned(),
                ColumnDef::new(Accounts::Coexistence)
                    .json()
                    .null()
                    .to_owned(),
            ],
        )
        .await?;
        crate::catalog::upsert(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::drop_columns(
            manager,
            Accounts::Table,
            vec![
                Accounts::SetupRetryAfter,
                Accounts::DisplayPhoneNumber,
                Accounts::TokenSource,
                Accounts::Coexistence,
            ],
        )
        .await?;
        manager
            .drop_table(Table::drop().table(WhatsappRegistrations::Table).to_owned())
            .await
    }
}
