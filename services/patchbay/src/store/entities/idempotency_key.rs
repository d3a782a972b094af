use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub caller_scope: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub method: String,
    pub request_hash: String,
    pub call_id: Uuid,
    pub record_kind: Option<String>,
    pub record_id: Option<String>,
    /// The sealed answer of a call that wrote no record (or changed nothing).
    pub response: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
