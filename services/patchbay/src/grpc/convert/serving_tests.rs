//! The service and a client's copy can never disagree on what a scope serves: the
//! service's decision over its records (`domain::fallbacks::served`) and the SDK's over
//! the same accounts as the API shows them (`patchbay_sdk::health::serving_accounts`,
//! what `DefaultAccounts::sender` runs) give the same answer, whatever the reasons,
//! their ends, the fallbacks' standing and the order.

use std::sync::Arc;

use chrono::Duration;
use proptest::prelude::*;
use uuid::Uuid;

use super::account::account_to_proto;
use crate::app::accounts::AccountView;
use crate::domain::Account;
use crate::domain::account::Ownership;
use crate::domain::account::health::HealthReason;
use crate::domain::fallbacks::served;
use crate::domain::testing::{at, cloud_account};
use patchbay_sdk::health::{Class, serving_accounts};

const CLASSES: [Class; 6] = [
    Class::Credentials,
    Class::Setup,
    Class::Enforcement,
    Class::Quality,
    Class::Configuration,
    Class::Provider,
];

/// An account of the scope: its id (a few, so that the default itself may be listed),
/// its standing, and its reasons (class, and an end before, at or after now, or none).
fn an_account() -> impl Strategy<Value = Account> {
    let reason = (0..CLASSES.len(), prop::option::of(-2i64..3));
    (
        0u128..4,
        prop::bool::weighted(0.2),
        prop::collection::vec(reason, 0..3),
    )
        .prop_map(|(id, lost, reasons)| {
            let mut account = cloud_account();
            account.id = Uuid::from_u128(id);
            if lost {
                account.provider_state.ownership = Ownership::Lost;
            }
            account.provider_state.health.reasons = reasons
                .into_iter()
                .enumerate()
                .map(|(n, (class, ends))| HealthReason {
                    code: format!("reason_{n}"),
                    class: CLASSES[class],
                    detail: String::new(),
                    since: at(0),
                    until: ends.map(|hours| at(100) + Duration::hours(hours)),
                })
                .collect();
            account
        })
}

fn shown(account: &Account) -> patchbay_sdk::proto::Account {
    account_to_proto(AccountView {
        account: Arc::new(account.clone()),
        verify_token_visible: false,
        webhook_url: String::new(),
    })
}

proptest! {
    #[test]
    fn the_service_and_the_sdk_serve_the_same(
        default in an_account(),
        fallbacks in prop::collection::vec(an_account(), 0..4),
    ) {
        let now = at(100);
        let service = served(&default, &fallbacks, now);
        let listed: Vec<_> = fallbacks.iter().map(shown).collect();
        let sdk = serving_accounts(&shown(&default), listed.iter(), now.timestamp());
        prop_assert_eq!(service, sdk);
    }
}
