//! What a recorded default change is about (#30): `default_account_changes.fallbacks`
//! is true when the row records a change of the scope's fallbacks (its list replaced,
//! an account leaving it, or what a listed account shows changing) rather than of its
//! default. Watchers are told one or the other, one message per revision. Not null,
//! false by default: the rows before it, and those a replica of the previous version
//! writes, are changes of a default (that replica records a list change as one, which
//! a watcher reads as the default again: harmless).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DefaultAccountChanges {
    Table,
    Fallbacks,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::add_columns(
            manager,
            DefaultAccountChanges::Table,
            vec![
                ColumnDef::new(DefaultAccountChanges::Fallbacks)
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::drop_columns(
            manager,
            DefaultAccountChanges::Table,
            vec![DefaultAccountChanges::Fallbacks],
        )
        .await
    }
}
