use super::*;
use crate::domain::testing::account;

fn parse(ids: &[String]) -> Result<Vec<Uuid>, Error> {
    let mut violations = Violations::new();
    let parsed = parse_list(ids, &mut violations);
    violations.into_result().map(|()| parsed)
}

fn fields(result: Result<Vec<Uuid>, Error>) -> Vec<String> {
    match result {
        Err(Error::InvalidArgument(violations)) => {
            violations.into_iter().map(|v| v.field).collect()
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|_| Uuid::now_v7().to_string()).collect()
}

#[test]
fn a_list_keeps_its_order() {
    let asked = ids(3);
    let parsed = parse(&asked).expect("a good list");
    let back: Vec<String> = parsed.iter().map(Uuid::to_string).collect();
    assert_eq!(back, asked);
    assert_eq!(parse(&[]).expect("empty clears"), Vec::<Uuid>::new());
}

#[test]
fn every_bad_entry_is_named() {
    assert_eq!(fields(parse(&ids(11))), ["account_ids[10]"]);
    let mut repeated = ids(3);
    repeated.push(repeated[1].clone());
    repeated.push("not-an-id".to_owned());
    assert_eq!(
        fields(parse(&repeated)),
        ["account_ids[3]", "account_ids[4]"]
    );
}

#[test]
fn scopes_hold_their_divisions_and_workspace_wide_accounts() {
    let mut wide = account(Channel::Whatsapp, "wa-1");
    wide.division_id = None;
    let mut sales = account(Channel::Whatsapp, "wa-2");
    sales.division_id = Some("sales".to_owned());
    assert!(in_scope(&wide, None));
    assert!(in_scope(&wide, Some("sales")));
    assert!(in_scope(&sales, Some("sales")));
    assert!(!in_scope(&sales, Some("support")));
    assert!(
        !in_scope(&sales, None),
        "a division's account is not workspace-wide"
    );
}

#[test]
fn a_member_is_an_active_account_of_the_channel_in_the_scope_and_not_its_default() {
    let mut candidate = account(Channel::Whatsapp, "wa-1");
    candidate.division_id = Some("sales".to_owned());
    let id = candidate.id;
    let check = |account: &Account, division| {
        check_member(2, id, Some(account), Channel::Whatsapp, division)
    };
    assert!(check(&candidate, Some("sales")).is_ok());
    assert!(matches!(
        check(&candidate, Some("support")),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        check_member(2, id, None, Channel::Whatsapp, None),
        Err(Error::NotFound { .. })
    ));
    let named = |result: Result<(), Error>| match result {
        Err(Error::InvalidArgument(violations)) => violations[0].field.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        named(check_member(
            2,
            id,
            Some(&candidate),
            Channel::Sms,
            Some("sales")
        )),
        "account_ids[2]"
    );
    let inactive = Account {
        is_active: false,
        ..candidate.clone()
    };
    assert_eq!(named(check(&inactive, Some("sales"))), "account_ids[2]");
    let default = Account {
        is_default: true,
        ..candidate.clone()
    };
    assert_eq!(named(check(&default, Some("sales"))), "account_ids[2]");
    // The default of the division is not the workspace's: a workspace-wide default is
    // a fallback a division may list.
    let mut wide_default = Account {
        is_default: true,
        ..candidate.clone()
    };
    wide_default.division_id = None;
    assert!(check(&wide_default, Some("sales")).is_ok());
}

#[test]
fn an_account_leaves_the_lists_it_no_longer_belongs_in() {
    let mut member = account(Channel::Whatsapp, "wa-1");
    member.division_id = Some("sales".to_owned());
    assert!(stays(Some(&member), Some("sales")));
    assert!(!stays(None, Some("sales")), "deleted");
    let inactive = Account {
        is_active: false,
        ..member.clone()
    };
    assert!(!stays(Some(&inactive), Some("sales")));
    let defaulted = Account {
        is_default: true,
        ..member.clone()
    };
    assert!(!stays(Some(&defaulted), Some("sales")));
    let mut moved = member.clone();
    moved.division_id = Some("support".to_owned());
    assert!(!stays(Some(&moved), Some("sales")));
}

fn with_reason(
    mut account: Account,
    class: patchbay_sdk::health::Class,
    until: Option<i64>,
) -> Account {
    use crate::domain::account::health::HealthReason;
    use crate::domain::testing::at;
    account.provider_state.health.reasons.push(HealthReason {
        code: "x".to_owned(),
        class,
        detail: String::new(),
        since: at(0),
        until: until.map(at),
    });
    account
}

#[test]
fn a_fallback_that_lost_its_provider_id_is_never_served() {
    use crate::domain::account::Ownership;
    use crate::domain::testing::at;
    use patchbay_sdk::health::Class;
    let default = with_reason(account(Channel::Whatsapp, "wa-1"), Class::Credentials, None);
    let mut lost = account(Channel::Whatsapp, "wa-2");
    lost.id = Uuid::now_v7();
    lost.provider_state.ownership = Ownership::Lost;
    let mut usable = account(Channel::Whatsapp, "wa-3");
    usable.id = Uuid::now_v7();
    let listed = |accounts: Vec<Account>| -> Vec<std::sync::Arc<Account>> {
        accounts.into_iter().map(std::sync::Arc::new).collect()
    };
    assert_eq!(
        served(&default, &listed(vec![lost.clone(), usable]), at(1)),
        Some(1)
    );
    assert_eq!(served(&default, &listed(vec![lost]), at(1)), None);
    // Nor the default itself, listed by a stale entry.
    assert_eq!(
        served(&default, &listed(vec![default.clone()]), at(1)),
        None
    );
}

#[test]
fn the_next_end_of_a_reason_bounds_how_long_an_answer_holds() {
    use crate::domain::testing::at;
    use patchbay_sdk::health::Class;
    let restricted = with_reason(
        account(Channel::Whatsapp, "wa-1"),
        Class::Enforcement,
        Some(50),
    );
    let flagged = with_reason(account(Channel::Whatsapp, "wa-2"), Class::Quality, Some(20));
    let ended = with_reason(account(Channel::Whatsapp, "wa-3"), Class::Setup, Some(5));
    assert_eq!(
        next_until([&restricted, &flagged, &ended], at(10)),
        Some(at(20))
    );
    assert_eq!(next_until([&ended], at(10)), None);
}

#[test]
fn an_account_stands_in_for_a_bounded_number_of_scopes_and_a_channel_has_bounded_lists() {
    // Room for both: fine; clearing a list always is.
    assert!(
        check_room(
            Channel::Sms,
            MAX_LISTS_PER_CHANNEL - 1,
            &[MAX_LISTS_PER_ACCOUNT - 1]
        )
        .is_ok()
    );
    assert!(check_room(Channel::Sms, MAX_LISTS_PER_CHANNEL, &[]).is_ok());
    // The second account is in as many other lists as one may be: named.
    match check_room(Channel::Sms, 3, &[0, MAX_LISTS_PER_ACCOUNT]) {
        Err(Error::InvalidArgument(violations)) => {
            let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["account_ids[1]"]);
        }
        other => panic!("expected the entry named, got {other:?}"),
    }
    // The channel has as many lists as a workspace may.
    assert!(matches!(
        check_room(Channel::Sms, MAX_LISTS_PER_CHANNEL, &[0]),
        Err(Error::FailedPrecondition(_))
    ));
}
