//! Credentials for the edge components, with no I/O so that it is unit-tested natively.
//!
//! * Tokens: HS256 JWTs made and checked with `jwt-simple`. The algorithm is pinned by the key
//!   type (a token whose header says `none` or another algorithm is rejected), `exp` and `iat`
//!   must both be present, and a token older than the configured lifetime is refused even if its
//!   `exp` says otherwise.
//! * Passwords: argon2id PHC strings; the salt comes from the caller so this crate needs no
//!   randomness source.
//! * HTTP `Authorization` header parsing for Basic and Bearer.
//! * What an account may be: e-mail addresses that can log in with Basic, and passwords that
//!   are not trivially guessed (length, and a short embedded list of the most common ones).
//! * [`throttle`]: failed-login throttling decisions per (account, client) pair, account and
//!   client, and which of them an attempt counts against.
//! * [`devices`]: device tokens, which tell an account's own clients from strangers'.
//! * [`api_tokens`]: personal API tokens' secrets, hashes, names and lifetimes.
//!
//! A token carries the user's session version (`sv`) and an id of its own (`jti`): the edge
//! refuses a token whose version is not the user's current one (a password change or a
//! deactivation moves it on, ending every earlier session) or whose id was signed out.

pub mod api_tokens;
pub mod devices;
pub mod links;
pub mod throttle;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use jwt_simple::prelude::*;
use serde::{Deserialize, Serialize};

/// The custom claims every token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    pub email: String,
    pub admin: bool,
    /// The user's session version when the token was issued (absent in tokens from before
    /// versions existed: version 0).
    #[serde(default)]
    pub sv: u64,
}

/// A verified token's claims: the custom claims plus the registered times and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedClaims {
    pub email: String,
    pub admin: bool,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// The user's session version it was issued under.
    pub sv: u64,
    /// The token's own id (`jti`), by which signing out ends it alone; absent in tokens from
    /// before ids were given.
    pub jti: Option<String>,
}

/// What a new session token stands for besides its user: the user's current session version
/// and an id of its own (random, from the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStamp {
    pub version: u64,
    pub id: String,
}

impl SessionStamp {
    /// A stamp with an id made of `random` bytes (32 hex digits).
    pub fn new(version: u64, random: [u8; 16]) -> SessionStamp {
        SessionStamp { version, id: random.iter().map(|b| format!("{b:02x}")).collect() }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the JWT secret must be at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
    #[error("token lifetime must be between 1 second and 366 days")]
    BadLifetime,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token has no expiry or issue time")]
    MissingTimes,
    #[error("could not create token: {0}")]
    Issue(String),
}

/// Shortest accepted HMAC secret.
pub const MIN_SECRET_LEN: usize = 16;
/// Default token lifetime: 24 hours.
pub const DEFAULT_LIFETIME_SECS: u64 = 24 * 3600;
/// Longest accepted token, in bytes (a guard against hostile headers).
pub const MAX_TOKEN_LEN: usize = 4096;

/// Issues and verifies tokens with one HS256 key.
pub struct TokenAuthority {
    key: HS256Key,
    lifetime: Duration,
}

impl TokenAuthority {
    pub fn new(secret: &[u8], lifetime_secs: u64) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::WeakSecret);
        }
        if lifetime_secs == 0 || lifetime_secs > 366 * 24 * 3600 {
            return Err(AuthError::BadLifetime);
        }
        Ok(TokenAuthority { key: HS256Key::from_bytes(secret), lifetime: Duration::from_secs(lifetime_secs) })
    }

    /// A signed token for `email`, valid for the configured lifetime from now, under the
    /// session version and with the id of `stamp`.
    pub fn issue(&self, email: &str, admin: bool, stamp: &SessionStamp) -> Result<String, AuthError> {
        let claims = Claims::with_custom_claims(UserClaims { email: email.to_string(), admin, sv: stamp.version }, self.lifetime)
            .with_jwt_id(&stamp.id);
        self.key.authenticate(claims).map_err(|e| AuthError::Issue(e.to_string()))
    }

    /// The configured lifetime, in seconds.
    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime.as_secs()
    }

    /// Checks signature, algorithm, `exp`, `iat` and the maximum lifetime.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::InvalidToken("token too long".into()));
        }
        let options = VerificationOptions {
            // Small clock skew between edge instances only.
            time_tolerance: Some(Duration::from_secs(30)),
            max_validity: Some(self.lifetime),
            max_token_length: Some(MAX_TOKEN_LEN),
            ..Default::default()
        };
        let claims = self
            .key
            .verify_token::<UserClaims>(token, Some(options))
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        let (Some(iat), Some(exp)) = (claims.issued_at, claims.expires_at) else {
            return Err(AuthError::MissingTimes);
        };
        // `max_validity` bounds the token's age; this bounds what it claims for itself, so a
        // token minted under a longer lifetime is not honoured after the lifetime was shortened.
        if exp.as_secs().saturating_sub(iat.as_secs()) > self.lifetime.as_secs() {
            return Err(AuthError::InvalidToken("token lifetime exceeds the configured maximum".into()));
        }
        Ok(VerifiedClaims {
            email: claims.custom.email,
            admin: claims.custom.admin,
            iat: iat.as_secs(),
            exp: exp.as_secs(),
            sv: claims.custom.sv,
            jti: claims.jwt_id,
        })
    }
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes) and a 16-byte salt.
pub fn hash_password(password: &str, salt: &[u8; 16]) -> String {
    let salt = SaltString::encode_b64(salt).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Checks a password against a PHC string made by [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("missing Authorization header")]
    Missing,
    #[error("Authorization header must use the {0} scheme")]
    WrongScheme(&'static str),
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
}

/// Parses `Authorization: Basic base64(user:password)`.
pub fn parse_basic(header: Option<&str>) -> Result<(String, String), HeaderError> {
    let header = header.ok_or(HeaderError::Missing)?;
    let (scheme, rest) = header.trim().split_once(' ').ok_or(HeaderError::Malformed("no credentials"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(HeaderError::WrongScheme("Basic"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| HeaderError::Malformed("credentials are not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| HeaderError::Malformed("credentials are not UTF-8"))?;
    let (user, password) = decoded.split_once(':').ok_or(HeaderError::Malformed("credentials lack a ':'"))?;
    if user.is_empty() {
        return Err(HeaderError::Malformed("empty user name"));
    }
    Ok((user.to_string(), password.to_string()))
}

/// Parses `Authorization: Bearer TOKEN`.
pub fn parse_bearer(header: Option<&str>) -> Result<&str, HeaderError> {
    let header = header.ok_or(HeaderError::Missing)?;
    let (scheme, rest) = header.trim().split_once(' ').ok_or(HeaderError::Malformed("no token"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(HeaderError::WrongScheme("Bearer"));
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(HeaderError::Malformed("empty token"));
    }
    Ok(token)
}

/// Longest accepted e-mail address, in bytes.
pub const MAX_EMAIL_LEN: usize = 254;
/// Fewest non-space characters in a password.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters in a password (argon2 hashes anything, but a bound keeps requests small).
pub const MAX_PASSWORD_CHARS: usize = 1024;

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Checks an e-mail address (already lower-cased) for use as an account name: one `@`; a local
/// part of at most 64 bytes without whitespace, control characters, `:` (HTTP Basic splits the
/// user name at the first `:`, so its owner could never log in) or the other characters that
/// need quoting in an address (`()<>[]\,;"`), and without leading, trailing or doubled dots;
/// a domain of at least two dot-separated labels of letters, digits and inner hyphens (at most
/// 63 bytes each), whose last label is not all digits. The error says what is wrong.
pub fn check_email(email: &str) -> Result<(), String> {
    if email.is_empty() {
        return Err("the e-mail address is empty".into());
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("the e-mail address is longer than {MAX_EMAIL_LEN} bytes"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the e-mail address contains whitespace or control characters".into());
    }
    let (local, domain) = match email.split('@').collect::<Vec<_>>()[..] {
        [local, domain] => (local, domain),
        _ => return Err("the e-mail address must contain exactly one '@'".into()),
    };
    if local.is_empty() || local.len() > 64 {
        return Err("the part before '@' must have 1 to 64 bytes".into());
    }
    if let Some(c) = local.chars().find(|c| ":()<>[]\\,;\"".contains(*c)) {
        return Err(format!("the part before '@' must not contain {c:?}"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("the part before '@' must not start or end with a dot or contain two dots in a row".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain must have at least two parts, like example.com".into());
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !valid {
            return Err(format!(
                "the domain part {label:?} is invalid (letters, digits and inner hyphens, 1 to 63 bytes)"
            ));
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err("the domain must be a name, not an IP address".into());
    }
    Ok(())
}

/// Whether [`check_email`] accepts the address.
pub fn is_plausible_email(email: &str) -> bool {
    check_email(email).is_ok()
}

/// Checks a new password: at least [`MIN_PASSWORD_CHARS`] characters other than whitespace, at
/// most [`MAX_PASSWORD_CHARS`] in all, no control characters, not the account's own address and
/// not one of the most common passwords (compared ignoring case and surrounding whitespace).
pub fn check_password(password: &str, email: &str) -> Result<(), String> {
    let total = password.chars().count();
    let significant = password.chars().filter(|c| !c.is_whitespace()).count();
    if significant < MIN_PASSWORD_CHARS {
        return Err(format!("the password must have at least {MIN_PASSWORD_CHARS} characters other than spaces"));
    }
    if total > MAX_PASSWORD_CHARS {
        return Err(format!("the password must have at most {MAX_PASSWORD_CHARS} characters"));
    }
    if password.chars().any(char::is_control) {
        return Err("the password must not contain control characters".into());
    }
    let normalized = password.trim().to_lowercase();
    if normalized == email.trim().to_lowercase() {
        return Err("the password must not be the e-mail address".into());
    }
    if is_common_password(&normalized) {
        return Err("the password is one of the most commonly used passwords; choose another".into());
    }
    Ok(())
}

/// Whether `password` (lower case, trimmed) is on the embedded list of common passwords.
fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).any(|l| l == password)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn stamp() -> SessionStamp {
        SessionStamp::new(0, [9; 16])
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn issued_tokens_verify() {
        let auth = TokenAuthority::new(SECRET, 3600).unwrap();
        let token = auth.issue("a@example.com", true, &SessionStamp::new(7, [0xab; 16])).unwrap();
        let claims = auth.verify(&token).unwrap();
        assert_eq!(claims.email, "a@example.com");
        assert!(claims.admin);
        assert_eq!(claims.exp - claims.iat, 3600);
        assert_eq!(claims.sv, 7);
        assert_eq!(claims.jti.as_deref(), Some("ab".repeat(16).as_str()));
    }

    #[test]
    fn wrong_key_and_tampering_are_rejected() {
        let auth = TokenAuthority::new(SECRET, 3600).unwrap();
        let other = TokenAuthority::new(b"another-secret-of-enough-length!", 3600).unwrap();
        let token = auth.issue("a@example.com", false, &stamp()).unwrap();
        assert!(matches!(other.verify(&token), Err(AuthError::InvalidToken(_))));
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = b64(r#"{"email":"a@example.com","admin":true,"iat":1,"exp":99999999999}"#);
        assert!(auth.verify(&parts.join(".")).is_err());
        assert!(auth.verify("garbage").is_err());
        assert!(auth.verify("").is_err());
        assert!(auth.verify(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }

    #[test]
    fn alg_none_is_rejected() {
        let auth = TokenAuthority::new(SECRET, 3600).unwrap();
        let header = b64(r#"{"alg":"none","typ":"JWT"}"#);
        let body = b64(r#"{"email":"a@example.com","admin":true,"iat":1700000000,"exp":99999999999}"#);
        assert!(auth.verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn expired_and_timeless_tokens_are_rejected() {
        let auth = TokenAuthority::new(SECRET, 3600).unwrap();
        let key = HS256Key::from_bytes(SECRET);
        let mut claims = Claims::with_custom_claims(UserClaims { email: "a@example.com".into(), admin: false, sv: 0 }, Duration::from_secs(60));
        claims.issued_at = Some(Duration::from_secs(1_000_000));
        claims.expires_at = Some(Duration::from_secs(1_000_060));
        assert!(auth.verify(&key.authenticate(claims).unwrap()).is_err());

        let mut timeless = Claims::with_custom_claims(UserClaims { email: "a@example.com".into(), admin: false, sv: 0 }, Duration::from_secs(60));
        timeless.expires_at = None;
        assert_eq!(auth.verify(&key.authenticate(timeless).unwrap()), Err(AuthError::MissingTimes));
    }

    #[test]
    fn tokens_from_before_session_versions_are_version_0_without_an_id() {
        #[derive(Serialize, Deserialize)]
        struct Old {
            email: String,
            admin: bool,
        }
        let key = HS256Key::from_bytes(SECRET);
        let old = key.authenticate(Claims::with_custom_claims(Old { email: "a@example.com".into(), admin: false }, Duration::from_secs(60))).unwrap();
        let claims = TokenAuthority::new(SECRET, 3600).unwrap().verify(&old).unwrap();
        assert_eq!((claims.sv, claims.jti), (0, None));
    }

    #[test]
    fn tokens_longer_than_the_lifetime_are_rejected() {
        let long = TokenAuthority::new(SECRET, 7200).unwrap();
        let short = TokenAuthority::new(SECRET, 60).unwrap();
        assert!(short.verify(&long.issue("a@example.com", false, &stamp()).unwrap()).is_err());
    }

    #[test]
    fn weak_secrets_and_bad_lifetimes() {
        assert_eq!(TokenAuthority::new(b"short", 60).err(), Some(AuthError::WeakSecret));
        assert_eq!(TokenAuthority::new(SECRET, 0).err(), Some(AuthError::BadLifetime));
    }

    #[test]
    fn passwords() {
        let phc = hash_password("hunter2", &[7; 16]);
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("hunter2"));
        assert!(verify_password("hunter2", &phc));
        assert!(!verify_password("hunter3", &phc));
        assert!(!verify_password("hunter2", "not a phc string"));
    }

    #[test]
    fn basic_headers() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(parse_basic(Some(&format!("Basic {}", enc("a@b.c:p:w")))), Ok(("a@b.c".into(), "p:w".into())));
        assert_eq!(parse_basic(None), Err(HeaderError::Missing));
        assert_eq!(parse_basic(Some("Bearer x")), Err(HeaderError::WrongScheme("Basic")));
        assert!(parse_basic(Some("Basic !!!")).is_err());
        assert!(parse_basic(Some(&format!("Basic {}", enc("nocolon")))).is_err());
        assert!(parse_basic(Some(&format!("Basic {}", enc(":pw")))).is_err());
        assert!(parse_basic(Some("Basic")).is_err());
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(parse_bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(parse_bearer(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(parse_bearer(None), Err(HeaderError::Missing));
        assert_eq!(parse_bearer(Some("Basic abc")), Err(HeaderError::WrongScheme("Bearer")));
        assert!(parse_bearer(Some("Bearer ")).is_err());
    }

    #[test]
    fn emails() {
        for good in ["a@example.com", "first.last+tag@mail.example.co.uk", "x_y-z@sub-domain.example", "jörg@bücher.example"] {
            assert_eq!(check_email(good), Ok(()), "{good}");
        }
        for bad in [
            "a@b",
            "@example.com",
            "a b@example.com",
            "a@@example.com",
            "a@b@example.com",
            "user:name@example.com",
            "a@exa:mple.com",
            "a\t@example.com",
            "a\u{7}@example.com",
            "a@example.com\r\n",
            "\"quoted\"@example.com",
            "a<b>@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example-.com",
            "a@example..com",
            "a@.example.com",
            "a@example.com.",
            "a@exa_mple.com",
            "a@10.0.0.1",
            "a@[127.0.0.1]",
            "",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        assert!(check_email(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(check_email(&format!("a@{}.com", "b".repeat(64))).is_err());
        assert!(check_email(&format!("a@{}.com", vec!["b".repeat(60); 5].join("."))).is_err(), "over 254 bytes");
    }

    #[test]
    fn password_rules() {
        assert_eq!(check_password("correct horse battery", "a@example.com"), Ok(()));
        assert_eq!(check_password("user-password-1", "a@example.com"), Ok(()));
        for bad in ["short", "        ", "  a b c d e f g  ", "password", "PASSWORD", " password1 ", "12345678", "qwertyuiop", "pass\u{0}word-x"] {
            assert!(check_password(bad, "a@example.com").is_err(), "{bad:?}");
        }
        assert!(check_password("a@example.com", "A@Example.com").is_err(), "the address itself");
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1), "a@example.com").is_err());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS), "a@example.com").is_ok());
        let listed = COMMON_PASSWORDS.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        assert!(listed >= 100, "{listed} common passwords");
    }
}
