//! Messenger's persistent menu, checked before it goes to Meta: Meta refuses a bad menu
//! with one vague error, this names every bad field.
//!
//! Rules (Messenger Profile API): one menu per locale, one of them `default`; 1 to 20
//! buttons per locale, no nesting (Meta dropped nested menus); `postback` buttons carry a
//! payload (at most 1000 characters), `web_url` buttons an absolute http(s) URL (https
//! when messenger_extensions is on); titles at most 30 characters.

use super::error::Violations;
use super::provider::is_url;

pub const MAX_BUTTONS: usize = 20;
pub const MAX_TITLE_CHARS: usize = 30;
pub const MAX_PAYLOAD_CHARS: usize = 1000;
const MAX_LOCALES: usize = 100;

pub struct Menu {
    pub locale: String,
    pub composer_input_disabled: bool,
    pub buttons: Vec<Button>,
}

pub struct Button {
    pub kind: String,
    pub title: String,
    pub payload: String,
    pub url: String,
    pub webview_height_ratio: String,
    pub messenger_extensions: bool,
}

/// Checks `menus` (field `persistent_menu`); `meta::messenger` sends them as Meta's
/// JSON once they pass.
pub fn validate(menus: &[Menu], violations: &mut Violations) {
    if menus.is_empty() {
        violations.add("persistent_menu", "is required unless delete is true");
    } else if menus.len() > MAX_LOCALES {
        violations.add("persistent_menu", format!("at most {MAX_LOCALES} locales"));
    } else if !menus.iter().any(|menu| menu.locale == "default") {
        violations.add(
            "persistent_menu",
            "one menu must have the locale \"default\"",
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, menu) in menus.iter().enumerate() {
        let at = format!("persistent_menu[{i}]");
        if !is_locale(&menu.locale) {
            violations.add(
                format!("{at}.locale"),
                "must be \"default\" or a locale such as en_US",
            );
        } else if !seen.insert(menu.locale.as_str()) {
            violations.add(format!("{at}.locale"), "appears twice");
        }
        if menu.buttons.is_empty() && !menu.composer_input_disabled {
            violations.add(format!("{at}.call_to_actions"), "needs at least one button");
        }
        if menu.buttons.len() > MAX_BUTTONS {
            violations.add(
                format!("{at}.call_to_actions"),
                format!("at most {MAX_BUTTONS} buttons"),
            );
        }
        for (j, button) in menu.buttons.iter().enumerate() {
            check_button(button, &format!("{at}.call_to_actions[{j}]"), violations);
        }
    }
}

fn check_button(button: &Button, at: &str, violations: &mut Violations) {
    let title_chars = button.title.chars().count();
    if button.title.trim().is_empty() {
        violations.add(format!("{at}.title"), "is required");
    } else if title_chars > MAX_TITLE_CHARS {
        violations.add(
            format!("{at}.title"),
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        );
    } else if button.title.chars().any(char::is_control) {
        violations.add(format!("{at}.title"), "must not contain control characters");
    }
    match button.kind.as_str() {
        "postback" => {
            if button.payload.is_empty() {
                violations.add(format!("{at}.payload"), "is required for a postback button");
            } else if button.payload.chars().count() > MAX_PAYLOAD_CHARS {
                violations.add(
                    format!("{at}.payload"),
                    format!("must be at most {MAX_PAYLOAD_CHARS} characters"),
                );
            }
            if !button.url.is_empty() {
                violations.add(format!("{at}.url"), "is only for web_url buttons");
            }
        }
        "web_url" => {
            if !is_url(&button.url) {
                violations.add(format!("{at}.url"), "must be an absolute http(s) URL");
            } else if button.messenger_extensions && !button.url.starts_with("https://") {
                violations.add(
                    format!("{at}.url"),
                    "must be https with messenger_extensions",
                );
            }
            if !button.payload.is_empty() {
                violations.add(format!("{at}.payload"), "is only for postback buttons");
            }
            if !matches!(
                button.webview_height_ratio.as_str(),
                "" | "compact" | "tall" | "full"
            ) {
                violations.add(
                    format!("{at}.webview_height_ratio"),
                    "must be compact, tall or full",
                );
            }
        }
        "nested" => violations.add(
            format!("{at}.type"),
            "nested menus are no longer supported by Meta",
        ),
        _ => violations.add(format!("{at}.type"), "must be postback or web_url"),
    }
}

fn is_locale(locale: &str) -> bool {
    if locale == "default" {
        return true;
    }
    let bytes = locale.as_bytes();
    bytes.len() == 5
        && bytes[0..2].iter().all(u8::is_ascii_lowercase)
        && bytes[2] == b'_'
        && bytes[3..5].iter().all(u8::is_ascii_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn button(kind: &str, title: &str, payload: &str, url: &str) -> Button {
        Button {
            kind: kind.into(),
            title: title.into(),
            payload: payload.into(),
            url: url.into(),
            webview_height_ratio: String::new(),
            messenger_extensions: false,
        }
    }

    fn fields(violations: Violations) -> Vec<String> {
        match violations.into_result() {
            Ok(()) => Vec::new(),
            Err(crate::domain::Error::InvalidArgument(list)) => {
                list.into_iter().map(|v| v.field).collect()
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_valid_menu_passes() {
        let menus = [Menu {
            locale: "default".into(),
            composer_input_disabled: false,
            buttons: vec![
                button("postback", "Talk to an agent", "AGENT", ""),
                button("web_url", "Shop", "", "https://shop.example/"),
            ],
        }];
        let mut violations = Violations::new();
        validate(&menus, &mut violations);
        assert!(fields(violations).is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        let menus = [
            Menu {
                locale: "english".into(),
                composer_input_disabled: false,
                buttons: vec![
                    button("postback", &"x".repeat(31), "", ""),
                    button("web_url", "Shop", "", "ftp://shop"),
                    button("nested", "More", "", ""),
                ],
            },
            Menu {
                locale: "en_US".into(),
                composer_input_disabled: false,
                buttons: (0..21).map(|_| button("postback", "A", "A", "")).collect(),
            },
        ];
        let mut violations = Violations::new();
        validate(&menus, &mut violations);
        assert_eq!(
            fields(violations),
            vec![
                "persistent_menu",
                "persistent_menu[0].locale",
                "persistent_menu[0].call_to_actions[0].title",
                "persistent_menu[0].call_to_actions[0].payload",
                "persistent_menu[0].call_to_actions[1].url",
                "persistent_menu[0].call_to_actions[2].type",
                "persistent_menu[1].call_to_actions",
            ]
        );
    }
}
