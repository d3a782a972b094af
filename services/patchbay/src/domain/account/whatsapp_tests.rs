use serde_json::json;

use super::*;
use crate::domain::ids::now;
use crate::domain::testing::{account, cloud_account, doc};
use patchbay_sdk::health::Class;

const URL: &str = "https://hooks.example.test/webhooks/whatsapp/wa-1";
const APP_LEVEL: &str = "https://hooks.example.test/webhooks/meta";
const TARGETS: WebhookTargets<'static> = WebhookTargets {
    account: URL,
    app_level: APP_LEVEL,
};

fn green() -> NumberStatus {
    NumberStatus {
        quality_rating: "GREEN".into(),
        code_verification_status: "VERIFIED".into(),
        name_status: "APPROVED".into(),
        status: "CONNECTED".into(),
        platform_type: "CLOUD_API".into(),
        ..NumberStatus::default()
    }
}

fn ours(callback: &str) -> SubscribedApp {
    SubscribedApp {
        app_id: "app-1".into(),
        name: "Patchbay".into(),
        override_callback_uri: callback.into(),
    }
}

fn approved() -> BusinessAccount {
    BusinessAccount {
        account_review_status: "APPROVED".into(),
        ..BusinessAccount::default()
    }
}

#[test]
fn a_cloud_account_needs_a_number_a_waba_and_a_token() {
    let full = json!({"phone_number_id": "1", "waba_id": "2", "access_token": "t"});
    assert!(is_cloud_account(Channel::Whatsapp, &doc(full.clone())));
    assert!(!is_cloud_account(Channel::Sms, &doc(full)));
    assert!(!is_cloud_account(
        Channel::Whatsapp,
        &doc(json!({"phone_number_id": "1", "waba_id": "2", "access_token": ""}))
    ));
    assert!(!is_cloud_account(
        Channel::Whatsapp,
        &doc(json!({"phone_number_id": "1", "account_sid": "AC1"}))
    ));
}

#[test]
fn pins_are_generated_kept_or_refused() {
    let cloud = |pin: Value| {
        let mut config = doc(json!({"phone_number_id": "1", "waba_id": "2", "access_token": "t"}));
        config.insert(PIN.to_owned(), pin);
        config
    };
    let mut violations = Violations::new();
    let generated = with_pin(Channel::Whatsapp, cloud(Value::Null), &mut violations).expect("pin");
    let pin = generated[PIN].as_str().expect("string pin");
    assert!(pin.len() == 6 && pin.chars().all(|c| c.is_ascii_digit()));
    let kept = with_pin(Channel::Whatsapp, cloud(json!("123456")), &mut violations).expect("pin");
    assert_eq!(kept[PIN], json!("123456"));
    assert!(violations.is_empty());
    let _ = with_pin(Channel::Whatsapp, cloud(json!("12ab")), &mut violations);
    let _ = with_pin(Channel::Whatsapp, cloud(json!(123456)), &mut violations);
    let fields: Vec<_> = violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["config.pin", "config.pin"]);
}

#[test]
fn a_non_cloud_config_gets_no_pin() {
    let mut violations = Violations::new();
    let twilio = doc(json!({"phone_number_id": "1", "account_sid": "AC1"}));
    let config = with_pin(Channel::Whatsapp, twilio.clone(), &mut violations).expect("ok");
    assert_eq!(config, twilio);
    let mut number = account(Channel::Whatsapp, "wa-1");
    number.config = config;
    assert_eq!(initial_setup_state(&number), SetupState::NotNeeded);
    assert_eq!(initial_setup_state(&cloud_account()), SetupState::Pending);
}

#[test]
fn an_instagram_login_account_has_a_set_up_and_a_pasted_token_none() {
    let mut instagram = account(Channel::Instagram, "17841400000000001");
    instagram.config = doc(json!({"instagram_user_id": "17841400000000001",
        "access_token": "IGAAT-instagram-login"}));
    instagram.provider_state.token_source =
        crate::domain::account::tokens::pasted_token_source(&instagram);
    assert_eq!(
        instagram.provider_state.token_source,
        Some(crate::domain::account::TokenSource::InstagramLogin),
        "an IG… token is Instagram Login's"
    );
    assert_eq!(initial_setup_state(&instagram), SetupState::Pending);
    let mut pasted = instagram.clone();
    pasted
        .config
        .insert(ACCESS_TOKEN.to_owned(), json!("EAAB-facebook-login"));
    pasted.provider_state.token_source =
        crate::domain::account::tokens::pasted_token_source(&pasted);
    assert_eq!(
        pasted.provider_state.token_source,
        Some(crate::domain::account::TokenSource::Pasted)
    );
    assert_eq!(initial_setup_state(&pasted), SetupState::NotNeeded);
    // A new token or another Instagram account runs the subscription again.
    let mut failed = instagram.clone();
    failed.provider_state.setup_state = SetupState::Failed;
    assert!(setup_needed(&failed, &failed.clone(), now()));
    let mut other = instagram.clone();
    other
        .config
        .insert(INSTAGRAM_USER_ID.to_owned(), json!("17841400000000002"));
    assert!(setup_needed(&instagram, &other, now()));
}

#[test]
fn the_set_up_runs_again_when_what_it_registers_changes() {
    let current = cloud_account();
    for key in [PHONE_NUMBER_ID, WABA_ID, ACCESS_TOKEN, PIN] {
        let mut next = current.clone();
        next.config.insert(key.to_owned(), json!("999999"));
        assert!(setup_inputs_changed(&current, &next), "{key}");
        assert!(setup_needed(&current, &next, now()), "{key}");
    }
    let mut renamed = current.clone();
    renamed.display_name = "Main".into();
    assert!(!setup_inputs_changed(&current, &renamed));
    assert!(!setup_needed(&current, &renamed, now()));
}

#[test]
fn an_unfinished_set_up_is_retried_by_any_update_and_a_refused_token_waits_for_a_new_one() {
    let mut pending = cloud_account();
    pending.provider_state.setup_state = SetupState::Pending;
    assert!(setup_needed(&pending, &pending.clone(), now()));
    let mut failed = cloud_account();
    failed.provider_state.setup_state = SetupState::Failed;
    assert!(setup_needed(&failed, &failed.clone(), now()));
    let mut rejected = failed.clone();
    rejected.provider_state.reauthorization_required = true;
    assert!(!setup_needed(&rejected, &rejected.clone(), now()));
    let mut new_token = rejected.clone();
    new_token
        .config
        .insert(ACCESS_TOKEN.to_owned(), json!("EAAG-new"));
    assert!(setup_needed(&rejected, &new_token, now()));
}

#[test]
fn no_update_runs_the_set_up_while_meta_asks_to_wait_unless_the_number_changes() {
    let mut waiting = cloud_account();
    waiting.provider_state.setup_state = SetupState::Failed;
    waiting.provider_state.setup_retry_after = Some(now() + chrono::Duration::hours(72));
    assert!(!setup_needed(&waiting, &waiting.clone(), now()));
    let mut new_pin = waiting.clone();
    new_pin.config.insert(PIN.to_owned(), json!("654321"));
    assert!(
        !setup_needed(&waiting, &new_pin, now()),
        "the same number waits"
    );
    let later = now() + chrono::Duration::hours(73);
    assert!(setup_needed(&waiting, &waiting.clone(), later));
    let mut other_number = waiting.clone();
    other_number
        .config
        .insert(PHONE_NUMBER_ID.to_owned(), json!("1666"));
    assert!(setup_needed(&waiting, &other_number, now()));
}

#[test]
fn an_account_that_is_no_cloud_account_needs_no_set_up() {
    let current = cloud_account();
    let mut twilio = current.clone();
    twilio.config.remove(WABA_ID);
    assert!(!setup_needed(&current, &twilio, now()));
    assert_eq!(
        setup_state_after_update(&current, &twilio, false),
        SetupState::NotNeeded
    );
    assert_eq!(
        setup_state_after_update(&current, &current, true),
        SetupState::Pending
    );
    assert_eq!(
        setup_state_after_update(&current, &current, false),
        SetupState::Done
    );
    // A number that becomes a Cloud account is set up from the start.
    let sms = account(Channel::Whatsapp, "wa-1555");
    assert!(setup_inputs_changed(&sms, &current));
}

#[test]
fn a_signup_names_metas_ids_and_needs_a_code() {
    let mut violations = Violations::new();
    check_signup("code", "2666", "1555", SignupEvent::Finish, &mut violations);
    assert!(violations.is_empty());
    check_signup(
        " ",
        "26a6",
        &"1".repeat(33),
        SignupEvent::Finish,
        &mut violations,
    );
    let fields: Vec<_> = violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["code", "waba_id", "phone_number_id"]);
    let config = signup_config("1555", "2666", "EAAG".into());
    assert!(is_cloud_account(Channel::Whatsapp, &config));
    // No number: only for a WABA-only session or a business-app onboarding.
    let mut violations = Violations::new();
    check_signup("code", "2666", "", SignupEvent::Finish, &mut violations);
    let fields: Vec<_> = violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["phone_number_id"]);
    for event in [
        SignupEvent::FinishOnlyWaba,
        SignupEvent::FinishBusinessAppOnboarding,
    ] {
        let mut violations = Violations::new();
        check_signup("code", "2666", "", event, &mut violations);
        assert!(violations.is_empty(), "{event:?}");
    }
    let waba_only = signup_config("", "2666", "EAAG".into());
    assert!(is_waba_only(Channel::Whatsapp, &waba_only));
    assert_eq!(signup_key("", "2666"), "waba-2666");
    let mut account = account(Channel::Whatsapp, "waba-2666");
    account.config = waba_only;
    assert_eq!(initial_setup_state(&account), SetupState::AwaitingNumber);
    // The number given: the set-up runs.
    let mut numbered = account.clone();
    numbered
        .config
        .insert(PHONE_NUMBER_ID.to_owned(), json!("1555"));
    assert!(setup_needed(&account, &numbered, now()));
    assert_eq!(
        setup_state_after_update(&account, &numbered, true),
        SetupState::Pending
    );
    assert_eq!(
        setup_state_after_update(&account, &account.clone(), false),
        SetupState::AwaitingNumber
    );
}

#[test]
fn a_green_connected_subscribed_number_is_healthy() {
    let apps = [ours(URL)];
    assert!(
        verdict(
            Some(&green()),
            Some(&approved()),
            Some(&apps),
            Some("app-1"),
            &TARGETS
        )
        .is_empty()
    );
    assert!(subscribed(&apps, Some("app-1")));
}

#[test]
fn every_problem_is_a_reason_and_an_expired_code_verification_is_none() {
    let phone = NumberStatus {
        quality_rating: "RED".into(),
        // Meta answers EXPIRED for numbers verified long ago: not a problem.
        code_verification_status: "EXPIRED".into(),
        name_status: "DECLINED".into(),
        status: "FLAGGED".into(),
        platform_type: "ON_PREMISE".into(),
        ..NumberStatus::default()
    };
    let waba = BusinessAccount {
        account_review_status: "PENDING".into(),
        ..BusinessAccount::default()
    };
    let reasons = verdict(
        Some(&phone),
        Some(&waba),
        Some(&[]),
        Some("app-1"),
        &TARGETS,
    );
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert!(
        !reasons.iter().any(|r| r.contains("verification")),
        "{reasons:?}"
    );
    let verified_long_ago = NumberStatus {
        code_verification_status: "EXPIRED".into(),
        ..green()
    };
    assert!(verdict(Some(&verified_long_ago), None, None, None, &TARGETS).is_empty());
}

#[test]
fn the_webhook_target_is_resolved_number_then_waba_then_app() {
    let at = |phone_number: &str, waba: &str, application: &str| NumberStatus {
        webhooks: WebhookConfiguration {
            phone_number: phone_number.into(),
            whatsapp_business_account: waba.into(),
            application: application.into(),
        },
        ..green()
    };
    let judge = |phone: NumberStatus| verdict(Some(&phone), None, None, None, &TARGETS);
    // The number's own callback wins over the WABA's and the app's for its messages;
    // the updates no override covers still go to the app's (found on their own).
    assert!(judge(at(URL, "https://old.example/hook", APP_LEVEL)).is_empty());
    let reasons = judge(at(URL, "https://old.example/hook", "https://x.example/app"));
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("https://x.example/app"), "{reasons:?}");
    // No number callback: the WABA's decides.
    let reasons = judge(at("", "https://old.example/hook", APP_LEVEL));
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("https://old.example/hook"));
    // Only the app's: fine when it is Patchbay's app-level callback.
    assert!(judge(at("", "", APP_LEVEL)).is_empty());
    assert_eq!(judge(at("", "", "https://elsewhere.example/meta")).len(), 1);
    // Without webhook_configuration, a WABA override in the subscriptions decides.
    let elsewhere = [ours("https://old.example/hook")];
    let reasons = verdict(None, None, Some(&elsewhere), Some("app-1"), &TARGETS);
    assert_eq!(reasons.len(), 1);
    assert!(verdict(None, None, Some(&[ours("")]), Some("app-1"), &TARGETS).is_empty());
}

#[test]
fn another_apps_subscription_is_not_ours_unless_no_app_is_configured() {
    let theirs = [SubscribedApp {
        app_id: "app-9".into(),
        ..SubscribedApp::default()
    }];
    assert!(!subscribed(&theirs, Some("app-1")));
    assert!(subscribed(&theirs, None));
    assert!(!subscribed(&[], None));
    let reasons = verdict(None, None, Some(&theirs), Some("app-1"), &TARGETS);
    assert_eq!(
        reasons,
        ["the app is not subscribed to the WABA's webhooks"]
    );
}

#[test]
fn answers_meta_did_not_give_are_judged_by_nobody() {
    assert!(verdict(None, None, None, Some("app-1"), &TARGETS).is_empty());
    let unknown = NumberStatus::default();
    assert!(verdict(Some(&unknown), None, None, None, &TARGETS).is_empty());
}

#[test]
fn a_name_not_yet_reviewed_is_no_problem_and_a_declined_or_expired_one_is() {
    // Meta's display-name statuses ("Display names"; Cloud API reference, phone number
    // `name_status`): only a rejection, or a name no longer vouched for, counts.
    for (status, problem) in [
        ("PENDING_REVIEW", false),
        ("NONE", false),
        ("AVAILABLE_WITHOUT_REVIEW", false),
        ("DECLINED", true),
        ("EXPIRED", true),
    ] {
        let phone = NumberStatus {
            name_status: status.into(),
            ..green()
        };
        let found = findings(Some(&phone), None, None, None, &TARGETS);
        assert_eq!(
            found.iter().any(|f| f.code == "name_status"),
            problem,
            "{status}"
        );
    }
}

#[test]
fn updates_going_to_another_app_callback_behind_an_override_are_found() {
    // The number's messages come to its account (an override), but Meta sends
    // account_update and quality updates to the app's own callback, elsewhere.
    let mut phone = green();
    phone.webhooks = WebhookConfiguration {
        phone_number: URL.to_owned(),
        whatsapp_business_account: String::new(),
        application: "https://other.example.test/hook".to_owned(),
    };
    let found = findings(Some(&phone), None, None, None, &TARGETS);
    let codes: Vec<&str> = found.iter().map(|f| f.code).collect();
    assert_eq!(codes, ["app_callback_elsewhere"]);
    assert_eq!(found[0].class, Class::Configuration);
    // Without an override the app's callback is where everything goes: judged once.
    phone.webhooks.phone_number.clear();
    let codes: Vec<&str> = findings(Some(&phone), None, None, None, &TARGETS)
        .iter()
        .map(|f| f.code)
        .collect();
    assert_eq!(codes, ["webhooks_elsewhere"]);
    // The app's callback is Patchbay's: nothing.
    phone.webhooks.phone_number = URL.to_owned();
    phone.webhooks.application = APP_LEVEL.to_owned();
    assert!(findings(Some(&phone), None, None, None, &TARGETS).is_empty());
}

#[test]
fn a_clean_reading_lifts_what_only_retired_or_later_webhooks_would() {
    use crate::domain::account::meta_health::codes;
    let lifted: Vec<&str> = lifted_by_reading(&green()).concat();
    assert_eq!(lifted, [codes::NAME_REJECTED, codes::QUALITY_FLAGGED]);
    let pending = NumberStatus {
        name_status: "PENDING_REVIEW".into(),
        status: "FLAGGED".into(),
        ..green()
    };
    assert!(lifted_by_reading(&pending).is_empty());
}
