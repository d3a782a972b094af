use super::*;

#[test]
fn page_ids_are_required_bounded_numeric_and_distinct() {
    let ids = |list: &[&str]| list.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
    let fields = |list: Vec<String>| {
        let mut violations = Violations::new();
        check_page_ids(&list, &mut violations);
        violations.into_iter().map(|v| v.field).collect::<Vec<_>>()
    };
    assert!(fields(ids(&["1001", "1002"])).is_empty());
    assert_eq!(fields(Vec::new()), ["page_ids"]);
    assert_eq!(
        fields(ids(&["1001", "x", "1001"])),
        ["page_ids[1]", "page_ids[2]"]
    );
    let too_many = vec!["1".to_owned(); MAX_PAGES_PER_CALL + 1];
    let found = fields(too_many);
    assert_eq!(found[0], "page_ids");
    // Elements past the limit are not looked at.
    assert_eq!(found.len(), MAX_PAGES_PER_CALL);
}

#[test]
fn a_handle_gives_back_its_token_until_it_expires() {
    let payload = handle_payload("EAAU-token", 1_000);
    assert_eq!(
        token_of_handle(&payload, 1_000),
        Ok("EAAU-token".to_owned())
    );
    assert_eq!(
        token_of_handle(&payload, 1_000 + HANDLE_LIFETIME_SECONDS),
        Ok("EAAU-token".to_owned())
    );
    assert!(token_of_handle(&payload, 1_001 + HANDLE_LIFETIME_SECONDS).is_err());
}

#[test]
fn a_handle_of_another_shape_is_refused() {
    assert!(token_of_handle(b"not json", 0).is_err());
    assert!(token_of_handle(br#"{"exp": 99}"#, 0).is_err());
    assert!(
        token_of_handle(br#"{"token": "t"}"#, 1).is_err(),
        "no expiry is expired"
    );
    assert_ne!(handle_context("acme"), handle_context("globex"));
}

#[test]
fn a_connected_page_keeps_its_id_name_and_token() {
    let config = page_config("1001", "Acme", "EAAP");
    assert_eq!(config["page_id"], "1001");
    assert_eq!(config["page_name"], "Acme");
    assert_eq!(config[PAGE_ACCESS_TOKEN], "EAAP");
}
