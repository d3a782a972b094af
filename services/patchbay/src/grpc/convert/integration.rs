//! Integrations and the provider catalog between the wire and the domain: requests
//! become domain values (every bad field reported), records become messages.

use patchbay_sdk::proto;

use super::writes::Update;

use super::{
    channel_to_proto, json_from_proto_value, optional_channel, optional_document,
    proto_value_from_json, struct_from_document, timestamp,
};
use crate::domain::ids::parse_id;
use crate::domain::integration::{
    Condition, ConditionOperator, Integration, IntegrationPatch, MAX_CONDITIONS, NewIntegration,
    validate_condition,
};
use crate::domain::provider::{FieldKind, FieldSpec, Provider};
use crate::domain::{Error, FieldViolation, Violations};

impl TryFrom<proto::CreateIntegrationRequest> for NewIntegration {
    type Error = Error;

    fn try_from(request: proto::CreateIntegrationRequest) -> Result<Self, Error> {
        let mut violations = Violations::new();
        if request.provider.is_empty() {
            violations.add("provider", "is required");
        }
        let channel = violations
            .check(optional_channel(request.channel, "channel"))
            .flatten();
        let conditions = conditions_from_proto(request.conditions, &mut violations);
        let account_id = request
            .account_id
            .filter(|id| !id.is_empty())
            .and_then(|id| violations.check(parse_id(&id, "account_id")));
        let config = optional_document(request.config, "config", &mut violations);
        violations.into_result()?;
        Ok(NewIntegration {
            provider: request.provider,
            name: request.name,
            identifier: request.identifier,
            channel,
            active: request.active,
            primary: request.primary,
            conditions,
            account_id,
            config: config.unwrap_or_default(),
            check: request.check,
        })
    }
}

impl TryFrom<proto::UpdateIntegrationRequest> for Update<IntegrationPatch> {
    type Error = Error;

    fn try_from(request: proto::UpdateIntegrationRequest) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let id = violations.checked(parse_id(&request.id, "id"));
        let conditions = request
            .conditions
            .map(|list| conditions_from_proto(list.conditions, &mut violations));
        let account_id = match request.account_id {
            None => None,
            Some(id) if id.is_empty() => Some(None),
            Some(id) => violations.check(parse_id(&id, "account_id")).map(Some),
        };
        let config = optional_document(request.config, "config", &mut violations);
        let id = violations.finish(id)?;
        Ok(Update {
            id,
            patch: IntegrationPatch {
                name: request.name,
                identifier: request.identifier,
                active: request.active,
                primary: request.primary,
                conditions,
                account_id,
                config,
                expected_revision: request.expected_revision,
                check: request.check,
            },
        })
    }
}

/// Conditions as domain values, every one checked (by its index in the request) so that
/// all bad conditions are reported together.
fn conditions_from_proto(
    conditions: Vec<proto::Condition>,
    violations: &mut Violations,
) -> Vec<Condition> {
    if conditions.len() > MAX_CONDITIONS {
        violations.add("conditions", format!("at most {MAX_CONDITIONS} conditions"));
        return Vec::new();
    }
    let mut built = Vec::with_capacity(conditions.len());
    for (i, condition) in conditions.into_iter().enumerate() {
        let path = format!("conditions[{i}]");
        let operator = violations.check(operator_from_proto(condition.operator, &path));
        let value = match condition
            .value
            .map(|v| json_from_proto_value(v, &format!("{path}.value")))
        {
            None => None,
            Some(Ok(json)) if json.is_null() => None,
            Some(Ok(json)) => Some(json),
            Some(Err(found)) => {
                violations.extend(found);
                None
            }
        };
        match operator {
            Some(operator) => {
                let condition = Condition {
                    field: condition.field,
                    operator,
                    value,
                };
                violations.extend(validate_condition(&condition, &path));
                built.push(condition);
            }
            None if condition.field.trim().is_empty() => {
                violations.add(format!("{path}.field"), "must be 1 to 128 characters");
            }
            None => {}
        }
    }
    built
}

fn operator_from_proto(value: i32, path: &str) -> Result<ConditionOperator, FieldViolation> {
    let field = format!("{path}.operator");
    match proto::ConditionOperator::try_from(value) {
        Ok(proto::ConditionOperator::Equal) => Ok(ConditionOperator::Equal),
        Ok(proto::ConditionOperator::NotEqual) => Ok(ConditionOperator::NotEqual),
        Ok(proto::ConditionOperator::In) => Ok(ConditionOperator::In),
        Ok(proto::ConditionOperator::NotIn) => Ok(ConditionOperator::NotIn),
        Ok(proto::ConditionOperator::Contains) => Ok(ConditionOperator::Contains),
        Ok(proto::ConditionOperator::StartsWith) => Ok(ConditionOperator::StartsWith),
        Ok(proto::ConditionOperator::Exists) => Ok(ConditionOperator::Exists),
        Ok(proto::ConditionOperator::Unspecified) => Err(FieldViolation::new(field, "is required")),
        Err(_) => Err(FieldViolation::new(
            field,
            format!("{value} is not a known operator"),
        )),
    }
}

fn operator_to_proto(operator: ConditionOperator) -> proto::ConditionOperator {
    match operator {
        ConditionOperator::Equal => proto::ConditionOperator::Equal,
        ConditionOperator::NotEqual => proto::ConditionOperator::NotEqual,
        ConditionOperator::In => proto::ConditionOperator::In,
        ConditionOperator::NotIn => proto::ConditionOperator::NotIn,
        ConditionOperator::Contains => proto::ConditionOperator::Contains,
        ConditionOperator::StartsWith => proto::ConditionOperator::StartsWith,
        ConditionOperator::Exists => proto::ConditionOperator::Exists,
    }
}

pub fn integration_to_proto(integration: Integration) -> proto::Integration {
    proto::Integration {
        id: integration.id.to_string(),
        provider: integration.provider,
        name: integration.name,
        identifier: integration.identifier,
        channel: integration
            .channel
            .map(channel_to_proto)
            .unwrap_or(proto::Channel::Unspecified)
            .into(),
        active: integration.active,
        primary: integration.primary,
        conditions: integration
            .conditions
            .into_iter()
            .map(|c| proto::Condition {
                field: c.field,
                operator: operator_to_proto(c.operator).into(),
                value: c.value.as_ref().map(proto_value_from_json),
            })
            .collect(),
        account_id: integration.account_id.map(|id| id.to_string()),
        config: Some(struct_from_document(&integration.config)),
        revision: integration.revision,
        created_at: Some(timestamp(integration.created_at)),
        updated_at: Some(timestamp(integration.updated_at)),
        deleted_at: integration.deleted_at.map(timestamp),
        deleted_by: integration.deleted_by.unwrap_or_default(),
    }
}

pub fn provider_to_proto(provider: &Provider) -> proto::Provider {
    proto::Provider {
        slug: provider.slug.clone(),
        name: provider.name.clone(),
        description: provider.description.clone(),
        category: provider.category.clone(),
        channel: provider
            .channel
            .map(channel_to_proto)
            .unwrap_or(proto::Channel::Unspecified)
            .into(),
        config_schema: provider.fields.iter().map(field_to_proto).collect(),
    }
}

fn field_to_proto(field: &FieldSpec) -> proto::ProviderField {
    let kind = match field.kind {
        FieldKind::String => proto::FieldType::String,
        FieldKind::Integer => proto::FieldType::Integer,
        FieldKind::Boolean => proto::FieldType::Boolean,
        FieldKind::Url => proto::FieldType::Url,
        FieldKind::Phone => proto::FieldType::Phone,
        FieldKind::Email => proto::FieldType::Email,
        FieldKind::Enum => proto::FieldType::Enum,
        FieldKind::Object => proto::FieldType::Object,
    };
    proto::ProviderField {
        name: field.name.clone(),
        r#type: kind.into(),
        required: field.required,
        default_value: field.default.as_ref().map(proto_value_from_json),
        allowed_values: field.values.clone(),
        secret: field.secret,
        description: field.description.clone(),
        fields: field.fields.iter().map(field_to_proto).collect(),
        carries_secrets: field.carries_secrets.clone(),
    }
}
