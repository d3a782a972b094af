//! The background rounds that ask Meta about every account: the token refresher, the
//! token checks and the health round, each with its interval (0 turns it off), and the
//! cap that keeps one workspace from spending a round.

use clap::Args;

/// How often each round runs, and how much of a round one workspace may take.
#[derive(Debug, Args)]
pub struct RoundArgs {
    /// How often the background task looks for Instagram tokens to refresh; 0 turns it
    /// off.
    #[arg(
        long,
        env = "PATCHBAY_TOKEN_REFRESH_INTERVAL_SECONDS",
        default_value_t = crate::meta::REFRESH_INTERVAL_SECONDS
    )]
    pub token_refresh_interval_seconds: u64,
    /// Refresh an Instagram token once it expires within this many days.
    #[arg(long, env = "PATCHBAY_TOKEN_REFRESH_AHEAD_DAYS", default_value_t = crate::meta::REFRESH_AHEAD_DAYS)]
    pub token_refresh_ahead_days: u32,
    /// Refreshes refused in a row (not as a credential, which flags at once; outages do
    /// not count) before a token is left alone until a new one is stored.
    #[arg(long, env = "PATCHBAY_TOKEN_REFRESH_MAX_FAILURES", default_value_t = crate::meta::REFRESH_MAX_FAILURES)]
    pub token_refresh_max_failures: u32,
    /// How often every Meta token is checked with debug_token; 0 turns it off.
    #[arg(
        long,
        env = "PATCHBAY_TOKEN_CHECK_INTERVAL_SECONDS",
        default_value_t = crate::meta::TOKEN_CHECK_INTERVAL_SECONDS
    )]
    pub token_check_interval_seconds: u64,
    /// Tokens of one workspace checked, and refreshed, per round at most: one large
    /// tenant cannot spend a round; its other tokens come in the next rounds.
    #[arg(
        long,
        env = "PATCHBAY_TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND",
        default_value_t = crate::meta::TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND
    )]
    pub token_checks_per_workspace_per_round: usize,
    /// Days before a token expires at which TOKEN_EXPIRING is announced, once each
    /// (comma-separated).
    #[arg(
        long,
        env = "PATCHBAY_TOKEN_EXPIRY_WARNING_DAYS",
        value_delimiter = ',',
        default_value = "7,1"
    )]
    pub token_expiry_warning_days: Vec<u32>,
    /// How often every WhatsApp number's health is read from Meta (status, quality,
    /// name status, messaging limit, where its webhooks go), as GetWhatsAppHealth reads
    /// it, and every account's health counted (`patchbay_accounts_by_health`); 0 turns
    /// it off. Its own lease, with the token checks' per-workspace cap.
    /// (`--health-check-interval-seconds` is the database ping.)
    #[arg(
        long,
        env = "PATCHBAY_ACCOUNT_HEALTH_INTERVAL_SECONDS",
        default_value_t = crate::meta::ACCOUNT_HEALTH_INTERVAL_SECONDS
    )]
    pub account_health_interval_seconds: u64,
}
