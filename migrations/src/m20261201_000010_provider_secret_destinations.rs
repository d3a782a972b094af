//! The provider schemas learn which URL field carries which secret (`carries_secrets`):
//! changing such a URL requires the secret again in the same request, so a stored secret
//! only goes where its sender sent it. The catalog is written again from
//! `providers.json`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::catalog::upsert(manager).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The attribute is additive: older servers ignore it.
        Ok(())
    }
}
