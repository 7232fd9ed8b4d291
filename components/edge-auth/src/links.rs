//! Signed download links: `/jobs/{id}/audio?expires=…&sig=…` works without a bearer header (for
//! `<audio src>`, a browser's own download, sharing) until it expires. The signature is
//! HMAC-SHA256 over the job id and the expiry with a key derived from the token secret, compared
//! in constant time; a link names one job and one expiry, so changing either breaks it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature does not match")]
    BadSignature,
}

/// Signs and checks download links with a key of its own (derived from the token secret, so no
/// token ever verifies as a link nor a link as a token).
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

fn mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn message(job_id: &str, expires: u64) -> String {
    format!("mp3edge-link-v1.{job_id}.{expires}")
}

impl LinkSigner {
    pub fn new(secret: &[u8]) -> LinkSigner {
        let mut derive = mac(secret);
        derive.update(b"mp3edge download links v1");
        LinkSigner { key: derive.finalize().into_bytes().to_vec() }
    }

    /// The hex signature of a link to `job_id` valid until `expires` (Unix seconds).
    pub fn sign(&self, job_id: &str, expires: u64) -> String {
        let mut m = mac(&self.key);
        m.update(message(job_id, expires).as_bytes());
        m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks a link's signature (in constant time) and expiry.
    pub fn verify(&self, job_id: &str, expires: u64, signature: &str, now: u64) -> Result<(), LinkError> {
        let bytes = decode_hex(signature).ok_or(LinkError::BadSignature)?;
        let mut m = mac(&self.key);
        m.update(message(job_id, expires).as_bytes());
        m.verify_slice(&bytes).map_err(|_| LinkError::BadSignature)?;
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_holds_for_its_job_until_it_expires() {
        let signer = LinkSigner::new(b"a secret of the edge, 32 bytes..");
        let sig = signer.sign("job-a", 1000);
        assert_eq!(sig.len(), 64);
        assert_eq!(signer.verify("job-a", 1000, &sig, 999), Ok(()));
        assert_eq!(signer.verify("job-a", 1000, &sig, 1000), Ok(()));
        assert_eq!(signer.verify("job-a", 1000, &sig, 1001), Err(LinkError::Expired));
        // Another job, another expiry, a changed or malformed signature, another key.
        assert_eq!(signer.verify("job-b", 1000, &sig, 999), Err(LinkError::BadSignature));
        assert_eq!(signer.verify("job-a", 2000, &sig, 999), Err(LinkError::BadSignature));
        let mut tampered = sig.clone().into_bytes();
        tampered[10] = if tampered[10] == b'0' { b'1' } else { b'0' };
        assert_eq!(signer.verify("job-a", 1000, &String::from_utf8(tampered).unwrap(), 999), Err(LinkError::BadSignature));
        assert_eq!(signer.verify("job-a", 1000, "zz", 999), Err(LinkError::BadSignature));
        assert_eq!(signer.verify("job-a", 1000, &"é".repeat(32), 999), Err(LinkError::BadSignature));
        let other = LinkSigner::new(b"another secret of 32 bytes......");
        assert_eq!(other.verify("job-a", 1000, &sig, 999), Err(LinkError::BadSignature));
    }
}
