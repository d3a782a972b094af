//! The `providers` table: the catalog the migrations seeded, read once at start.

use sea_orm::{EntityTrait, QueryOrder};

use super::entities::provider::{Column, Entity};
use super::{Store, db_error};
use crate::domain::provider::{Catalog, FieldSpec, Provider};
use crate::domain::{Channel, Error};

impl Store {
    pub async fn load_catalog(&self) -> Result<Catalog, Error> {
        let rows = Entity::find()
            .order_by_asc(Column::Slug)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        let mut providers = Vec::with_capacity(rows.len());
        for row in rows {
            let channel = match row.channel.as_deref() {
                None => None,
                Some(name) => Some(Channel::parse(name).ok_or_else(|| {
                    Error::Internal(format!(
                        "provider {} has unknown channel {name:?}",
                        row.slug
                    ))
                })?),
            };
            let fields: Vec<FieldSpec> = serde_json::from_value(row.fields).map_err(|err| {
                Error::Internal(format!(
                    "provider {} has an unreadable schema: {err}",
                    row.slug
                ))
            })?;
            let provider = Provider::new(
                row.slug,
                row.name,
                row.description,
                row.category,
                channel,
                fields,
            );
            if let Some(problem) = provider.schema_problems().into_iter().next() {
                return Err(Error::Internal(format!("provider schema: {problem}")));
            }
            providers.push(provider);
        }
        Ok(Catalog::new(providers))
    }
}
