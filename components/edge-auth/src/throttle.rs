//! Failed-login throttling decisions (the auth component keeps the counts in SQLite and makes
//! the admission decision in one statement that mirrors [`retry_after`]).
//!
//! Three subjects count failures within `window_secs`:
//!
//! * the pair `pair:<email>|<client>`: one account from one client. After `per_pair` failures
//!   each further attempt must wait a delay that doubles with every failure (`first_delay_secs`,
//!   twice that, ... up to the window), counted from the pair's last failure. An attacker's
//!   failures therefore slow down only that attacker, and the owner logging in from another
//!   client is not affected;
//! * the account `account:<email>`, from all clients: a ceiling (`per_account`, much higher than
//!   `per_pair`) against attacks spread over many addresses;
//! * the client `client:<address>`, over all accounts: `per_client`, against one client trying
//!   many accounts.
//!
//! Which of them an attempt counts against depends on what the client shows of itself
//! ([`Trust`]), so that the account's ceiling, which anyone can fill from enough addresses,
//! never locks out its owner:
//!
//! * a stranger counts against all three, and is held to the account's ceiling;
//! * an address from which the account logged in successfully within [`KNOWN_CLIENT_SECS`]
//!   counts against its pair and its client, not the account;
//! * a device that presents a valid device token of the account (`devices`) counts against
//!   its own pair, `pair:<email>|device:<id>`, alone: the same growing delays, for that
//!   device only.
//!
//! For pairs the row's `window_start` is the time of the last failure (the row lives until a
//! window has passed without failures); for accounts and clients it is the start of a fixed
//! window. Either way a row whose `window_start + window_secs` has passed is expired.

/// How long an address counts as the owner's after a successful log-in from it.
pub const KNOWN_CLIENT_SECS: u64 = 30 * 24 * 3600;

/// What a log-in attempt's client shows of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Nothing: held to the account's ceiling.
    Stranger,
    /// Its address logged in to the account successfully within [`KNOWN_CLIENT_SECS`].
    KnownAddress,
    /// It presented a valid device token of the account, with this device id.
    Device(String),
}

/// The subjects one attempt counts against: always a pair (the device's own for a device),
/// and the account and the client as [`Trust`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    pub pair: String,
    pub account: Option<String>,
    pub client: Option<String>,
}

impl Subjects {
    /// `client` is the client's throttling key (`edge_http::client::throttle_key`).
    pub fn new(email: &str, client: &str, trust: &Trust) -> Subjects {
        match trust {
            Trust::Stranger => Subjects {
                pair: pair_subject(email, client),
                account: Some(account_subject(email)),
                client: Some(client_subject(client)),
            },
            Trust::KnownAddress => {
                Subjects { pair: pair_subject(email, client), account: None, client: Some(client_subject(client)) }
            }
            Trust::Device(device) => Subjects { pair: device_subject(email, device), account: None, client: None },
        }
    }

    /// Each subject with its kind.
    pub fn all(&self) -> Vec<(Kind, &str)> {
        let mut all = vec![(Kind::Pair, self.pair.as_str())];
        all.extend(self.account.as_deref().map(|a| (Kind::Account, a)));
        all.extend(self.client.as_deref().map(|c| (Kind::Client, c)));
        all
    }
}

/// A device's own pair: under the account's pair prefix, so unlocking the account clears it.
pub fn device_subject(email: &str, device: &str) -> String {
    pair_subject(email, &format!("device:{device}"))
}

/// The configured limits (a limit of 0 disables that check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures of one account from one client before the delays start.
    pub per_pair: u32,
    /// The first delay once `per_pair` is reached, in seconds; doubles with each failure.
    pub first_delay_secs: u64,
    /// Failures of one account from all clients within the window.
    pub per_account: u32,
    /// Failures of one client over all accounts within the window.
    pub per_client: u32,
    pub window_secs: u64,
}

/// Which kind of subject a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pair,
    Account,
    Client,
}

/// Most doublings of the pair delay (the cap at the window comes first in practice).
pub const MAX_DOUBLINGS: u64 = 20;

pub fn pair_subject(email: &str, client: &str) -> String {
    format!("{}{client}", pair_prefix(email))
}

/// What every pair row of an account starts with.
pub fn pair_prefix(email: &str) -> String {
    format!("pair:{email}|")
}

pub fn account_subject(email: &str) -> String {
    format!("account:{email}")
}

pub fn client_subject(client: &str) -> String {
    format!("client:{client}")
}

/// The wait a pair with `failures` failures (at least `per_pair`) imposes after its last one.
pub fn pair_delay(limits: &Limits, failures: u64) -> u64 {
    let doublings = failures.saturating_sub(u64::from(limits.per_pair)).min(MAX_DOUBLINGS);
    (limits.first_delay_secs << doublings).min(limits.window_secs)
}

/// Seconds until a subject with `failures` failures and the row's `window_start` may try again;
/// `None` when it may try now.
pub fn retry_after(kind: Kind, failures: u64, window_start: u64, limits: &Limits, now: u64) -> Option<u64> {
    if window_start.saturating_add(limits.window_secs) <= now {
        return None;
    }
    let until = match kind {
        Kind::Pair if limits.per_pair > 0 && failures >= u64::from(limits.per_pair) => {
            window_start.saturating_add(pair_delay(limits, failures))
        }
        Kind::Account if limits.per_account > 0 && failures >= u64::from(limits.per_account) => {
            window_start.saturating_add(limits.window_secs)
        }
        Kind::Client if limits.per_client > 0 && failures >= u64::from(limits.per_client) => {
            window_start.saturating_add(limits.window_secs)
        }
        _ => return None,
    };
    (now < until).then(|| until - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { per_pair: 5, first_delay_secs: 30, per_account: 100, per_client: 20, window_secs: 900 };

    #[test]
    fn pairs_slow_down_with_doubling_delays() {
        assert_eq!(retry_after(Kind::Pair, 4, 1000, &LIMITS, 1000), None);
        assert_eq!(retry_after(Kind::Pair, 5, 1000, &LIMITS, 1000), Some(30));
        assert_eq!(retry_after(Kind::Pair, 5, 1000, &LIMITS, 1030), None);
        assert_eq!(retry_after(Kind::Pair, 6, 1000, &LIMITS, 1000), Some(60));
        assert_eq!(retry_after(Kind::Pair, 7, 1000, &LIMITS, 1010), Some(110));
        assert_eq!(retry_after(Kind::Pair, 9, 1000, &LIMITS, 1000), Some(480));
        assert_eq!(retry_after(Kind::Pair, 10, 1000, &LIMITS, 1000), Some(900), "capped at the window");
        assert_eq!(retry_after(Kind::Pair, 500, 1000, &LIMITS, 1000), Some(900));
        assert_eq!(retry_after(Kind::Pair, 500, 1000, &LIMITS, 1900), None, "expired a window after the last failure");
        let no_pairs = Limits { per_pair: 0, ..LIMITS };
        assert_eq!(retry_after(Kind::Pair, 50, 1000, &no_pairs, 1000), None);
    }

    #[test]
    fn accounts_and_clients_have_fixed_windows() {
        assert_eq!(retry_after(Kind::Account, 99, 1000, &LIMITS, 1100), None);
        assert_eq!(retry_after(Kind::Account, 100, 1000, &LIMITS, 1100), Some(800));
        assert_eq!(retry_after(Kind::Client, 20, 1000, &LIMITS, 1899), Some(1));
        assert_eq!(retry_after(Kind::Client, 20, 1000, &LIMITS, 1900), None);
        assert_eq!(retry_after(Kind::Client, 19, 1000, &LIMITS, 1100), None);
        let open = Limits { per_account: 0, per_client: 0, ..LIMITS };
        assert_eq!(retry_after(Kind::Account, 1000, 1000, &open, 1100), None);
        assert_eq!(retry_after(Kind::Client, 1000, 1000, &open, 1100), None);
    }

    #[test]
    fn what_an_attempt_counts_against_depends_on_what_the_client_shows() {
        let stranger = Subjects::new("a@example.com", "10.0.0.1", &Trust::Stranger);
        assert_eq!(
            stranger.all(),
            [(Kind::Pair, "pair:a@example.com|10.0.0.1"), (Kind::Account, "account:a@example.com"), (Kind::Client, "client:10.0.0.1")]
        );
        let known = Subjects::new("a@example.com", "10.0.0.1", &Trust::KnownAddress);
        assert_eq!(known.all(), [(Kind::Pair, "pair:a@example.com|10.0.0.1"), (Kind::Client, "client:10.0.0.1")]);
        let device = Subjects::new("a@example.com", "10.0.0.1", &Trust::Device("d1d1".into()));
        assert_eq!(device.all(), [(Kind::Pair, "pair:a@example.com|device:d1d1")]);
        assert!(device.pair.starts_with(&pair_prefix("a@example.com")), "unlocking the account clears its devices");
    }

    #[test]
    fn subjects() {
        assert_eq!(pair_subject("a@example.com", "10.0.0.1"), "pair:a@example.com|10.0.0.1");
        assert!(pair_subject("a@example.com", "10.0.0.1").starts_with(&pair_prefix("a@example.com")));
        assert_eq!(account_subject("a@example.com"), "account:a@example.com");
        assert_eq!(client_subject("10.0.0.1"), "client:10.0.0.1");
    }
}
