use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: String,
    pub channel: String,
    pub account_key: String,
    pub display_name: String,
    pub is_active: bool,
    pub is_default: bool,
    pub division_id: Option<String>,
    pub config: Json,
    pub verify_token: String,
    pub revision: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
    pub deleted_by: Option<String>,
    pub setup_state: String,
    pub setup_registered: bool,
    pub verify_token_index: Option<String>,
    pub setup_error: Option<String>,
    pub reauthorization_required: bool,
    pub token_expires_at: Option<DateTimeUtc>,
    pub webhook_route: String,
    pub provider_id: Option<String>,
    pub ownership: String,
    pub data_access_expires_at: Option<DateTimeUtc>,
    pub reauthorization_reason: Option<String>,
    pub token_checked_at: Option<DateTimeUtc>,
    pub refresh_failures: i32,
    pub refresh_exhausted: bool,
    pub token_warned_days: Option<i32>,
    pub token_refreshed_at: Option<DateTimeUtc>,
    pub setup_retry_after: Option<DateTimeUtc>,
    pub display_phone_number: Option<String>,
    pub token_source: Option<String>,
    pub coexistence: Option<Json>,
    pub health: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
