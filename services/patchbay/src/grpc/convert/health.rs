//! Account health between the domain and the wire: the reasons as stored, and the
//! state the SDK's decision derives from them at the time of the answer.

use chrono::{DateTime, Utc};
use patchbay_sdk::proto;

use super::timestamp;
use crate::domain::account::health::Health;

/// `health` as the API gives it, its state as at `at`.
pub fn health_to_proto(health: &Health, at: DateTime<Utc>) -> proto::AccountHealth {
    proto::AccountHealth {
        state: health.state(at).to_proto().into(),
        reasons: health
            .reasons
            .iter()
            .map(|reason| proto::HealthReason {
                code: reason.code.clone(),
                class: reason.class.to_proto().into(),
                detail: reason.detail.clone(),
                since: Some(timestamp(reason.since)),
                until: reason.until.map(timestamp),
            })
            .collect(),
        checked_at: health.checked_at.map(timestamp),
    }
}
