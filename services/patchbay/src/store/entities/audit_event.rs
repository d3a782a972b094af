use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: String,
    pub division_id: Option<String>,
    pub actor: String,
    pub actor_role: String,
    pub record_kind: String,
    pub record_id: String,
    pub action: String,
    pub changed_fields: Json,
    pub request_id: String,
    pub occurred_at: DateTimeUtc,
    pub outcome: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
