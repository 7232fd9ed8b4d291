//! Personal API tokens (`/users/me/tokens`): the long-lived credential scripts send as
//! `Authorization: Bearer mp3e_…` instead of keeping a password to log in with.
//!
//! What a token looks like and what is kept of it, with no I/O (the caller brings the random
//! bytes): the secret is [`PREFIX`] and 32 random bytes in unpadded base64url, so a secret
//! scanner can recognise a leaked one by its shape alone; the server keeps only its SHA-256
//! (the secret has 256 bits of entropy, so a fast hash cannot be brute-forced and lets the
//! token be found by an indexed lookup). Also the rules for what a user may name a token and
//! for how long it may live.

use base64::Engine;
use sha2::{Digest, Sha256};

/// Every token starts with this: a bearer that does is an API token, never a JWT.
pub const PREFIX: &str = "mp3e_";
/// Random bytes in a secret.
pub const SECRET_BYTES: usize = 32;
/// Characters after the prefix: 32 bytes in unpadded base64url.
pub const SECRET_CHARS: usize = 43;
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest lifetime a token may be given, in days (ten years).
pub const MAX_EXPIRY_DAYS: u64 = 3650;
/// Most tokens one user holds.
pub const MAX_TOKENS_PER_USER: u64 = 50;

/// The secret for `random` bytes: `mp3e_` and 43 base64url characters.
pub fn secret_from(random: &[u8; SECRET_BYTES]) -> String {
    format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
}

/// Whether a bearer is meant as an API token (it starts with the prefix); whether it is a
/// well-formed one is [`is_well_formed`].
pub fn is_api_token(bearer: &str) -> bool {
    bearer.starts_with(PREFIX)
}

/// Whether `token` has exactly the shape [`secret_from`] gives: the prefix, then 43 base64url
/// characters whose last one carries no stray bits. Anything else cannot be a token and is
/// refused without a lookup.
pub fn is_well_formed(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(PREFIX) else { return false };
    rest.len() == SECRET_CHARS
        && base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(rest).is_ok_and(|bytes| bytes.len() == SECRET_BYTES)
}

/// What the server keeps of a secret: its SHA-256, in lower-case hex.
pub fn secret_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A token's id (shown in lists and used in `DELETE /users/me/tokens/{id}`) for `random` bytes:
/// 24 hex digits, unrelated to the secret.
pub fn id_from(random: &[u8; 12]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` could be a token id (24 lower-case hex digits).
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a token's name and returns it without surrounding whitespace: 1 to
/// [`MAX_NAME_CHARS`] characters, no control characters, no characters that turn text around
/// or break lines in a list (U+2028/2029, the bidirectional controls).
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the name is empty; give the token a name that says what uses it, e.g. \"backup script\"".into());
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(format!("the name has {chars} characters; at most {MAX_NAME_CHARS} are allowed"));
    }
    if let Some(c) = name.chars().find(|&c| is_refused_in_name(c)) {
        return Err(format!("the name contains the control or formatting character U+{:04X}", c as u32));
    }
    Ok(name.to_string())
}

fn is_refused_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Checks `expires_in_days` as given in JSON: absent or `null` is a token that does not
/// expire (`None`); otherwise a whole number from 1 to [`MAX_EXPIRY_DAYS`].
pub fn check_expiry_days(value: Option<&serde_json::Value>) -> Result<Option<u64>, String> {
    let refused = |what: String| {
        Err(format!(
            "expires_in_days must be a whole number of days from 1 to {MAX_EXPIRY_DAYS}, or absent for a token that does not expire; got {what}"
        ))
    };
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(days) if (1..=MAX_EXPIRY_DAYS).contains(&days) => Ok(Some(days)),
            _ => refused(n.to_string()),
        },
        Some(other) => refused(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_prefix_and_the_shape_and_are_hashed() {
        let secret = secret_from(&[0xab; SECRET_BYTES]);
        assert!(secret.starts_with("mp3e_"));
        assert_eq!(secret.len(), PREFIX.len() + SECRET_CHARS);
        assert!(is_api_token(&secret) && is_well_formed(&secret));
        assert_ne!(secret_from(&[1; SECRET_BYTES]), secret_from(&[2; SECRET_BYTES]));
        let hash = secret_hash(&secret);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&secret[PREFIX.len()..]));
        // Known SHA-256 ("abc").
        assert_eq!(secret_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn altered_secrets_are_not_well_formed_or_hash_differently() {
        let secret = secret_from(&[7; SECRET_BYTES]);
        assert!(!is_well_formed(&secret[..secret.len() - 1]), "shortened");
        assert!(!is_well_formed(&format!("{secret}A")), "lengthened");
        assert!(!is_well_formed(&secret[1..]), "prefix cut");
        assert!(!is_well_formed(&format!("x{secret}")), "prefix grown");
        assert!(!is_well_formed(&secret.replace("mp3e_", "MP3E_")));
        assert!(!is_well_formed(&format!("mp3e_{}", "!".repeat(SECRET_CHARS))));
        assert!(!is_well_formed("mp3e_"));
        assert!(!is_api_token("eyJhbGciOiJIUzI1NiJ9.x.y"));
        // A last character with bits past the 256th.
        let mut odd = secret.clone();
        odd.pop();
        odd.push('B');
        assert!(!is_well_formed(&odd), "{odd}");
    }

    #[test]
    fn ids() {
        let id = id_from(&[0x0f; 12]);
        assert_eq!(id, "0f".repeat(12));
        assert!(is_valid_id(&id));
        for bad in ["", "0F0F0F0F0F0F0F0F0F0F0F0F", "0f0f", &"0".repeat(25), "../../etc/passwd000000000"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(check_name("  backup script "), Ok("backup script".into()));
        assert_eq!(check_name(&"é".repeat(MAX_NAME_CHARS)), Ok("é".repeat(MAX_NAME_CHARS)));
        for bad in ["", "   ", "a\nb", "a\u{0}b", "tab\there", "a\u{202e}b", "a\u{2028}b", "\u{7f}"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).unwrap_err().contains("101 characters"));
    }

    #[test]
    fn expiry_days() {
        use serde_json::json;
        assert_eq!(check_expiry_days(None), Ok(None));
        assert_eq!(check_expiry_days(Some(&json!(null))), Ok(None));
        assert_eq!(check_expiry_days(Some(&json!(1))), Ok(Some(1)));
        assert_eq!(check_expiry_days(Some(&json!(3650))), Ok(Some(3650)));
        for bad in [json!(0), json!(3651), json!(-1), json!(1.5), json!("30"), json!(true), json!([1]), json!(1e20)] {
            assert!(check_expiry_days(Some(&bad)).is_err(), "{bad}");
        }
    }
}
