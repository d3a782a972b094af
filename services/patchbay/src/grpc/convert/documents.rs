//! `google.protobuf.Struct` ↔ JSON documents, with the document rules (depth, finite
//! numbers) applied to what arrives.

use prost_types::{ListValue, Struct, Value, value::Kind};
use serde_json::{Map, Number, Value as Json};

use crate::domain::config_document::{Document, MAX_DEPTH};
use crate::domain::{FieldViolation, Violations};

/// A `Struct` as a JSON document. Integral numbers become JSON integers (a `Struct`
/// carries every number as a double); NaN and infinities, which JSON cannot hold, and
/// nesting deeper than the document limit are violations.
pub fn document_from_struct(value: Struct, field: &str) -> Result<Document, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let document = object_from_struct(value, field, 1, &mut violations);
    if violations.is_empty() {
        Ok(document)
    } else {
        Err(violations)
    }
}

/// An optional `Struct` field (a create's config, an update's merge patch) as a JSON
/// document, recording its violations. `None` when absent or invalid.
pub fn optional_document(
    value: Option<Struct>,
    field: &str,
    violations: &mut Violations,
) -> Option<Document> {
    match document_from_struct(value?, field) {
        Ok(document) => Some(document),
        Err(found) => {
            violations.extend(found);
            None
        }
    }
}

fn object_from_struct(
    value: Struct,
    path: &str,
    depth: usize,
    violations: &mut Vec<FieldViolation>,
) -> Map<String, Json> {
    if depth > MAX_DEPTH {
        violations.push(FieldViolation::new(
            path,
            format!("nests deeper than {MAX_DEPTH} levels"),
        ));
        return Map::new();
    }
    value
        .fields
        .into_iter()
        .map(|(key, item)| {
            let field = format!("{path}.{key}");
            let json = json_from_value(item, &field, depth, violations);
            (key, json)
        })
        .collect()
}

fn json_from_value(
    value: Value,
    path: &str,
    depth: usize,
    violations: &mut Vec<FieldViolation>,
) -> Json {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::StringValue(s)) => Json::String(s),
        Some(Kind::NumberValue(n)) => json_number(n).unwrap_or_else(|| {
            violations.push(FieldViolation::new(path, "must be a finite number"));
            Json::Null
        }),
        Some(Kind::StructValue(s)) => {
            Json::Object(object_from_struct(s, path, depth + 1, violations))
        }
        Some(Kind::ListValue(list)) => {
            if depth + 1 > MAX_DEPTH {
                violations.push(FieldViolation::new(
                    path,
                    format!("nests deeper than {MAX_DEPTH} levels"),
                ));
                return Json::Null;
            }
            Json::Array(
                list.values
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        json_from_value(item, &format!("{path}[{i}]"), depth + 1, violations)
                    })
                    .collect(),
            )
        }
    }
}

/// The largest integer a double holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn json_number(n: f64) -> Option<Json> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
        // Exact: the value is integral and within the range a double represents exactly.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Json::Number(Number::from(n as i64)));
    }
    Number::from_f64(n).map(Json::Number)
}

pub fn struct_from_document(document: &Document) -> Struct {
    Struct {
        fields: document
            .iter()
            .map(|(key, value)| (key.clone(), proto_value_from_json(value)))
            .collect(),
    }
}

/// One protobuf `Value` as JSON, with the same rules as a document.
pub fn json_from_proto_value(value: Value, path: &str) -> Result<Json, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let json = json_from_value(value, path, 1, &mut violations);
    if violations.is_empty() {
        Ok(json)
    } else {
        Err(violations)
    }
}

/// One JSON value as a protobuf `Value`.
pub fn proto_value_from_json(value: &Json) -> Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(proto_value_from_json).collect(),
        }),
        Json::Object(object) => Kind::StructValue(struct_from_document(object)),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn struct_and_document_round_trip_with_integers_kept_integral() {
        let document = json!({"n": 23, "f": 1.5, "s": "x", "b": true, "l": [1, {"k": null}]});
        let document = document.as_object().cloned().unwrap_or_default();
        let back =
            document_from_struct(struct_from_document(&document), "config").expect("round trip");
        assert_eq!(back, document);
        assert_eq!(back["n"], json!(23));
    }

    #[test]
    fn non_finite_numbers_are_named() {
        let mut s = Struct::default();
        s.fields.insert(
            "bad".into(),
            Value {
                kind: Some(Kind::NumberValue(f64::NAN)),
            },
        );
        let violations = document_from_struct(s, "config").expect_err("NaN");
        assert_eq!(violations[0].field, "config.bad");
    }
}

#[cfg(test)]
mod hostile_structs {
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Kind::NullValue(0)),
            any::<bool>().prop_map(Kind::BoolValue),
            any::<f64>().prop_map(Kind::NumberValue),
            ".{0,10}".prop_map(Kind::StringValue),
        ]
        .prop_map(|kind| Value { kind: Some(kind) });
        leaf.prop_recursive(24, 200, 4, |inner| {
            prop_oneof![
                prop::collection::btree_map(".{0,6}", inner.clone(), 0..4).prop_map(|fields| {
                    Value {
                        kind: Some(Kind::StructValue(Struct { fields })),
                    }
                }),
                prop::collection::vec(inner, 0..4).prop_map(|values| Value {
                    kind: Some(Kind::ListValue(ListValue { values })),
                }),
            ]
        })
    }

    proptest! {
        /// Any Struct a client can send converts, or is refused with named violations.
        #[test]
        fn any_struct_converts_or_is_refused(fields in prop::collection::btree_map(".{0,6}", value(), 0..5)) {
            match document_from_struct(Struct { fields }, "config") {
                Ok(document) => {
                    let back = document_from_struct(struct_from_document(&document), "config");
                    prop_assert_eq!(back.ok(), Some(document));
                }
                Err(violations) => {
                    prop_assert!(!violations.is_empty());
                    prop_assert!(violations.iter().all(|v| v.field.starts_with("config")));
                }
            }
        }
    }
}
