//! Account health (#30): `accounts.health` holds what stands against an account (JSON:
//! its reasons, each with its code, class, detail, since and until, and when it was
//! last read); `account_events.previous_health` holds, for a HEALTH_CHANGED event,
//! the health before the change. Both nullable: an account without a reading is read
//! as the reasons its own state gives (its token, its set-up), and a replica of the
//! previous version, which knows neither column, leaves them as they are.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Health,
}

#[derive(DeriveIden)]
enum AccountEvents {
    Table,
    PreviousHealth,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::add_columns(
            manager,
            Accounts::Table,
            vec![ColumnDef::new(Accounts::Health).json().null().to_owned()],
        )
        .await?;
        crate::columns::add_columns(
            manager,
            AccountEvents::Table,
            vec![
                ColumnDef::new(AccountEvents::PreviousHealth)
                    .json()
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::drop_columns(manager, Accounts::Table, vec![Accounts::Health]).await?;
        crate::columns::drop_columns(
            manager,
            AccountEvents::Table,
            vec![AccountEvents::PreviousHealth],
        )
        .await
    }
}
