//! What a WhatsApp number's health check finds in Meta's answers (the number, its
//! WABA, its subscriptions, where its webhooks go), each finding a reason code with its
//! class; and what a reading lifts of what Meta's webhooks set. Pure: GetWhatsAppHealth
//! and the health round record what it finds.

use patchbay_sdk::health::Class;

use super::whatsapp::{BusinessAccount, NumberStatus, SubscribedApp, WebhookTargets, subscribed};

/// Why a number is not healthy, from Meta's answers, in words; empty when it is.
pub fn verdict(
    phone: Option<&NumberStatus>,
    waba: Option<&BusinessAccount>,
    apps: Option<&[SubscribedApp]>,
    app_id: Option<&str>,
    targets: &WebhookTargets<'_>,
) -> Vec<String> {
    findings(phone, waba, apps, app_id, targets)
        .into_iter()
        .map(|found| found.detail)
        .collect()
}

/// One thing a health check found: its reason code, its class, and in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub class: Class,
    pub detail: String,
}

/// The reason codes a health check gives (each set while found, lifted once not).
pub static CHECK_CODES: [&str; 10] = [
    "number_status",
    "quality_red",
    "quality_yellow",
    "name_status",
    "not_cloud_api",
    "waba_review",
    "not_subscribed",
    "webhooks_elsewhere",
    "app_callback_elsewhere",
    "graph_version_ending",
];

fn found(code: &'static str, class: Class, detail: String) -> Finding {
    Finding {
        code,
        class,
        detail,
    }
}

/// What a number's health check finds, from Meta's answers; empty when it is healthy.
/// An answer Meta did not give (`None`) is judged by nobody here: its error is a reason
/// of its own. Code verification is not judged: Meta answers EXPIRED for numbers
/// verified long ago, which send all the same.
pub fn findings(
    phone: Option<&NumberStatus>,
    waba: Option<&BusinessAccount>,
    apps: Option<&[SubscribedApp]>,
    app_id: Option<&str>,
    targets: &WebhookTargets<'_>,
) -> Vec<Finding> {
    let mut reasons = Vec::new();
    let unless = |value: &str, fine: &[&str]| !value.is_empty() && !fine.contains(&value);
    if let Some(phone) = phone {
        if unless(&phone.status, &["CONNECTED"]) {
            // Meta's own hand on the number, or a set-up not finished.
            let class = match phone.status.as_str() {
                "BANNED" | "RESTRICTED" | "RATE_LIMITED" => Class::Enforcement,
                "FLAGGED" => Class::Quality,
                _ => Class::Setup,
            };
            let detail = format!("phone number status is {}", phone.status);
            reasons.push(found("number_status", class, detail));
        }
        match phone.quality_rating.as_str() {
            "RED" => reasons.push(found(
                "quality_red",
                Class::Quality,
                "phone number quality rating is RED".to_owned(),
            )),
            "YELLOW" => reasons.push(found(
                "quality_yellow",
                Class::Quality,
                "phone number quality rating is YELLOW".to_owned(),
            )),
            _ => {}
        }
        // Meta's display names ("Display names"): DECLINED is a rejection and EXPIRED
        // a name no longer vouched for; PENDING_REVIEW and NONE (no review yet, as for
        // a new number at its first limit) stand against nothing.
        if matches!(phone.name_status.as_str(), "DECLINED" | "EXPIRED") {
            let detail = format!("display name status is {}", phone.name_status);
            reasons.push(found("name_status", Class::Quality, detail));
        }
        if unless(&phone.platform_type, &["CLOUD_API"]) {
            let detail = format!(
                "the number is not on the Cloud API (platform_type {})",
                phone.platform_type
            );
            reasons.push(found("not_cloud_api", Class::Setup, detail));
        }
    }
    if let Some(waba) = waba
        && unless(&waba.account_review_status, &["APPROVED"])
    {
        let detail = format!("WABA review status is {}", waba.account_review_status);
        reasons.push(found("waba_review", Class::Setup, detail));
    }
    if let Some(apps) = apps
        && !subscribed(apps, app_id)
    {
        reasons.push(found(
            "not_subscribed",
            Class::Configuration,
            "the app is not subscribed to the WABA's webhooks".to_owned(),
        ));
    }
    // Where the number's webhooks go: what the number says, else (an answer without
    // webhook_configuration) the WABA's override when the subscriptions show one.
    let target = phone
        .and_then(|phone| phone.webhooks.effective())
        .or_else(|| {
            apps.into_iter()
                .flatten()
                .map(|app| app.override_callback_uri.as_str())
                .find(|uri| !uri.is_empty())
        });
    if let Some(target) = target
        && target != targets.account
        && target != targets.app_level
    {
        let detail = format!(
            "the number's webhooks go to {target}, neither this account's webhook URL nor Patchbay's app-level callback"
        );
        reasons.push(found("webhooks_elsewhere", Class::Configuration, detail));
    }
    // Meta sends the fields an override does not cover (account_update, quality and
    // name updates among them) to the app's own callback whatever the number or WABA
    // overrides ("Webhook overrides": those "are always sent to your app's default
    // callback URL"). Without an override, `webhooks_elsewhere` already judged it.
    if let Some(phone) = phone {
        let application = phone.webhooks.application.as_str();
        let overridden = phone.webhooks.effective() != Some(application);
        if overridden
            && !application.is_empty()
            && application != targets.account
            && application != targets.app_level
        {
            let detail = format!(
                "Meta sends the number's account, quality and name updates to the app's callback {application}, not Patchbay's"
            );
            reasons.push(found(
                "app_callback_elsewhere",
                Class::Configuration,
                detail,
            ));
        }
    }
    reasons
}

/// What Meta's webhooks set that a reading of the number lifts: a name Meta shows
/// approved is no longer rejected, and a number Meta shows CONNECTED is no longer
/// FLAGGED (a state Meta retired in October 2025, whose UNFLAGGED may never come).
pub fn lifted_by_reading(phone: &NumberStatus) -> Vec<&'static [&'static str]> {
    const NAME: &[&str] = &[super::meta_health::codes::NAME_REJECTED];
    const FLAGGED: &[&str] = &[super::meta_health::codes::QUALITY_FLAGGED];
    let mut lifted = Vec::new();
    if matches!(
        phone.name_status.as_str(),
        "APPROVED" | "AVAILABLE_WITHOUT_REVIEW"
    ) {
        lifted.push(NAME);
    }
    if phone.status == "CONNECTED" {
        lifted.push(FLAGGED);
    }
    lifted
}
