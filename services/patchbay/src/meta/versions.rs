//! Graph API versions and the day Meta stops serving each. Every call to
//! graph.facebook.com and graph.instagram.com names one version (`--graph-api-version`);
//! past its end Meta answers with the oldest version it still serves, whose behaviour
//! nobody here tested. Pure: the caller says what day it is.

use chrono::NaiveDate;

/// The version calls name unless configured: served until 2028-07-29.
pub const DEFAULT_VERSION: &str = crate::outbound::default_urls::GRAPH_VERSION;

/// Warn once a version ends within this many days.
pub const WARN_DAYS: i64 = 90;

/// Versions whose end Meta has announced, from "Graph API · Versions"
/// (developers.facebook.com/docs/graph-api/changelog/versions, "Expiration Date").
/// A version not listed here (v26.0 and later: "TBD") has no known end, and never warns.
const ENDS: &[(&str, (i32, u32, u32))] = &[
    ("v16.0", (2025, 5, 14)),
    ("v17.0", (2025, 9, 12)),
    ("v18.0", (2026, 1, 26)),
    ("v19.0", (2026, 5, 21)),
    ("v20.0", (2026, 9, 24)),
    ("v21.0", (2027, 1, 21)),
    ("v22.0", (2027, 5, 20)),
    ("v23.0", (2027, 10, 8)),
    ("v24.0", (2028, 2, 18)),
    ("v25.0", (2028, 7, 29)),
];

/// Where a version stands on a given day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Served for more than [`WARN_DAYS`] days yet, or its end is not announced.
    Served,
    /// Served until `ends` (exclusive), within [`WARN_DAYS`] days.
    EndsSoon { ends: NaiveDate, days_left: i64 },
    /// No longer served since `ended`.
    Ended { ended: NaiveDate },
}

/// The day Meta stops serving `version`, when announced. Versions older than the
/// table's first are long gone: they end on the first one's date, or earlier.
pub fn end_of(version: &str) -> Option<NaiveDate> {
    let date = |(y, m, d): (i32, u32, u32)| NaiveDate::from_ymd_opt(y, m, d);
    if let Some((_, end)) = ENDS.iter().find(|(known, _)| *known == version) {
        return date(*end);
    }
    let major = major(version)?;
    let (oldest, end) = ENDS.first()?;
    (major < self::major(oldest)?).then(|| date(*end)).flatten()
}

/// Where `version` stands on `today`.
pub fn standing(version: &str, today: NaiveDate) -> Standing {
    let Some(ends) = end_of(version) else {
        return Standing::Served;
    };
    let days_left = (ends - today).num_days();
    if days_left <= 0 {
        Standing::Ended { ended: ends }
    } else if days_left <= WARN_DAYS {
        Standing::EndsSoon { ends, days_left }
    } else {
        Standing::Served
    }
}

/// What to tell an operator about `version` on `today`, if anything.
pub fn warning(version: &str, today: NaiveDate) -> Option<String> {
    match standing(version, today) {
        Standing::Served => None,
        Standing::EndsSoon { ends, days_left } => Some(format!(
            "Graph API {version} is served until {ends} ({days_left} days left): set PATCHBAY_GRAPH_API_VERSION to a newer version (the default is {DEFAULT_VERSION})"
        )),
        Standing::Ended { ended } => Some(format!(
            "Graph API {version} is no longer served since {ended}: Meta answers with another version; set PATCHBAY_GRAPH_API_VERSION to a newer one (the default is {DEFAULT_VERSION})"
        )),
    }
}

fn major(version: &str) -> Option<u32> {
    version.strip_prefix('v')?.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn the_default_is_served_far_ahead_and_announced_ends_are_known() {
        assert_eq!(
            standing(DEFAULT_VERSION, day(2026, 12, 6)),
            Standing::Served
        );
        assert_eq!(end_of("v21.0"), Some(day(2027, 1, 21)));
        assert_eq!(end_of("v24.0"), Some(day(2028, 2, 18)));
        assert_eq!(end_of("v26.0"), None, "Meta says TBD");
        assert_eq!(end_of("v99.0"), None);
        assert_eq!(
            end_of("v2.8"),
            Some(day(2025, 5, 14)),
            "older than the table: gone"
        );
        assert_eq!(end_of("nonsense"), None);
    }

    #[test]
    fn a_version_warns_within_ninety_days_and_ends_on_its_date() {
        assert_eq!(standing("v21.0", day(2026, 10, 22)), Standing::Served);
        assert_eq!(
            standing("v21.0", day(2026, 10, 23)),
            Standing::EndsSoon {
                ends: day(2027, 1, 21),
                days_left: 90
            }
        );
        assert_eq!(
            standing("v21.0", day(2027, 1, 20)),
            Standing::EndsSoon {
                ends: day(2027, 1, 21),
                days_left: 1
            }
        );
        assert_eq!(
            standing("v21.0", day(2027, 1, 21)),
            Standing::Ended {
                ended: day(2027, 1, 21)
            }
        );
        assert_eq!(standing("v26.0", day(2040, 1, 1)), Standing::Served);
        let text = warning("v21.0", day(2026, 12, 6)).expect("a warning");
        assert!(
            text.contains("2027-01-21") && text.contains("46 days"),
            "{text}"
        );
        assert_eq!(warning("v24.0", day(2026, 12, 6)), None);
    }
}
