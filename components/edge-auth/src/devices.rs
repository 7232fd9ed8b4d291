//! Device tokens: what a browser or client that has logged in to an account keeps (a cookie,
//! or the `Mp3edge-Device` header), so that its later log-ins are told apart from a stranger's.
//! Log-in throttling (`throttle`) counts a device's failures as its own and never holds it to
//! the account's ceiling, which only strangers share: however many addresses fail an
//! account's password, its owner's devices still log in.
//!
//! A token is `d1.<issued>.<device id>.<signature>`: the signature is HMAC-SHA256 over the
//! account, the issue time and the device id, with a key derived from the token secret (so no
//! session token or download link verifies as a device token), compared in constant time. It
//! is issued only by a successful log-in, names one account and lasts [`DEVICE_TOKEN_SECS`];
//! a log-in that presents a valid one gets it renewed with the same device id.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long a device token is honoured after it was issued (renewed at every log-in).
pub const DEVICE_TOKEN_SECS: u64 = 30 * 24 * 3600;
/// The cookie a browser keeps it in.
pub const DEVICE_COOKIE: &str = "mp3edge_device";
/// The header a client sends it in, and finds a new one in after a log-in.
pub const DEVICE_HEADER: &str = "mp3edge-device";
/// Longest accepted token (a device id is 32 hex digits).
const MAX_TOKEN_LEN: usize = 128;

/// Issues and checks device tokens with a key of its own.
#[derive(Clone)]
pub struct DeviceSigner {
    key: Vec<u8>,
}

fn mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn message(email: &str, issued: u64, device: &str) -> String {
    format!("mp3edge-device-v1|{email}|{issued}|{device}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// Whether `id` looks like a device id (32 lowercase hex digits).
fn is_device_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl DeviceSigner {
    pub fn new(secret: &[u8]) -> DeviceSigner {
        let mut derive = mac(secret);
        derive.update(b"mp3edge device tokens v1");
        DeviceSigner { key: derive.finalize().into_bytes().to_vec() }
    }

    /// A token for device `device` (from [`new_device_id`], or the id of a token it presented)
    /// of account `email`, issued at `now`.
    pub fn issue(&self, email: &str, device: &str, now: u64) -> String {
        let mut m = mac(&self.key);
        m.update(message(email, now, device).as_bytes());
        format!("d1.{now}.{device}.{}", hex(&m.finalize().into_bytes()))
    }

    /// The device id of `token` if it is a genuine token of account `email`, issued no later
    /// than a minute from `now` and not yet [`DEVICE_TOKEN_SECS`] old.
    pub fn verify(&self, token: &str, email: &str, now: u64) -> Option<String> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let mut parts = token.trim().split('.');
        let (Some("d1"), Some(issued), Some(device), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let issued: u64 = issued.parse().ok()?;
        if !is_device_id(device) {
            return None;
        }
        let mut m = mac(&self.key);
        m.update(message(email, issued, device).as_bytes());
        m.verify_slice(&unhex(signature)?).ok()?;
        (issued <= now.saturating_add(60) && now < issued.saturating_add(DEVICE_TOKEN_SECS)).then(|| device.to_string())
    }
}

/// A new device id from 16 random bytes.
pub fn new_device_id(random: [u8; 16]) -> String {
    hex(&random)
}

/// Every device token a request carries: `Mp3edge-Device` headers and `mp3edge_device`
/// cookies (all of them; each is verified, so none is trusted for coming first or last).
pub fn presented<'a>(device_headers: &[&'a str], cookie_headers: &[&'a str]) -> Vec<&'a str> {
    let cookies = cookie_headers.iter().flat_map(|h| h.split(';')).filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == DEVICE_COOKIE).then(|| value.trim().trim_matches('"'))
    });
    device_headers.iter().map(|v| v.trim()).chain(cookies).filter(|t| !t.is_empty()).collect()
}

/// The `Set-Cookie` value that keeps `token` in a browser: sent back to this site only
/// (`SameSite=Strict`), out of scripts' reach (`HttpOnly`), over HTTPS only when the site is
/// served over HTTPS.
pub fn cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{DEVICE_COOKIE}={token}; Path=/; Max-Age={DEVICE_TOKEN_SECS}; HttpOnly; SameSite=Strict{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_holds_for_its_account_and_device_until_it_is_old() {
        let signer = DeviceSigner::new(b"a secret of the edge, 32 bytes..");
        let token = signer.issue("a@example.com", DEVICE, 1000);
        assert_eq!(signer.verify(&token, "a@example.com", 1000).as_deref(), Some(DEVICE));
        assert_eq!(signer.verify(&token, "a@example.com", 1000 + DEVICE_TOKEN_SECS - 1).as_deref(), Some(DEVICE));
        assert_eq!(signer.verify(&token, "a@example.com", 1000 + DEVICE_TOKEN_SECS), None, "too old");
        assert_eq!(signer.verify(&token, "a@example.com", 900), None, "issued in the future");
        assert_eq!(signer.verify(&token, "b@example.com", 1000), None, "another account");
        assert_eq!(DeviceSigner::new(b"another secret of 32 bytes......").verify(&token, "a@example.com", 1000), None);
        // Any change breaks it: the time, the device, the signature, the shape.
        let parts: Vec<&str> = token.split('.').collect();
        for forged in [
            format!("d1.1001.{}.{}", parts[2], parts[3]),
            format!("d1.1000.{}.{}", "f".repeat(32), parts[3]),
            format!("d1.1000.{}.{}0", parts[2], &parts[3][..63]),
            format!("d2.1000.{}.{}", parts[2], parts[3]),
            format!("{token}.x"),
            "d1.1000.x.y".to_string(),
            "é".repeat(40),
        ] {
            assert_eq!(signer.verify(&forged, "a@example.com", 1000), None, "{forged}");
        }
    }

    #[test]
    fn tokens_come_from_headers_and_cookies() {
        assert_eq!(presented(&[" t1 "], &["a=b; mp3edge_device=t2", "mp3edge_device=\"t3\";x=y"]), ["t1", "t2", "t3"]);
        assert_eq!(presented(&[""], &["mp3edge_devices=x; other=mp3edge_device"]), Vec::<&str>::new());
        assert_eq!(new_device_id([0xab; 16]), "ab".repeat(16));
        assert!(cookie("t", true).ends_with("HttpOnly; SameSite=Strict; Secure"));
        assert!(cookie("t", false).starts_with("mp3edge_device=t; Path=/; Max-Age=2592000"));
    }
}
