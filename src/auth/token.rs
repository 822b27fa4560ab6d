//! Access tokens: JWTs signed with HMAC-SHA256 (HS256), built from the RustCrypto `hmac` and
//! `sha2` crates directly (why not a JWT crate: docs/auth.md).
//!
//! Only what we issue is accepted: the header must say `HS256`, the signature must match the
//! current key or the previous one (rotation), and `exp` must be in the future. Whether the user
//! still exists, is enabled, and still has the token's `ver` is checked by the HTTP layer
//! against the database.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::Role;
use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// `{"alg":"HS256","typ":"JWT"}`, the only header issued or accepted.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The longest token looked at: ours are about 250 bytes; anything far longer is not one.
const MAX_TOKEN_BYTES: usize = 2048;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The user's role when the token was issued (the database's current role is what counts).
    pub role: Role,
    /// `users.token_version` when the token was issued; a bump revokes the token.
    pub ver: i32,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

/// Why a token was refused. Each becomes a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts with our header and JSON claims.
    #[error("the bearer token is malformed")]
    Malformed,
    /// Signed with neither the current nor the previous key.
    #[error("the bearer token's signature is not valid")]
    BadSignature,
    /// Past its `exp`.
    #[error("the bearer token has expired")]
    Expired,
}

/// The signing keys: the current one signs and verifies, the previous one only verifies.
#[derive(Clone)]
pub struct Keys {
    current: Secret,
    previous: Option<Secret>,
    ttl_seconds: i64,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("previous", &self.previous.is_some())
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Keys from `SECRET_KEY`, `SECRET_KEY_PREVIOUS`, and the token lifetime.
    pub fn new(current: Secret, previous: Option<Secret>, ttl: std::time::Duration) -> Self {
        Self {
            current,
            previous,
            ttl_seconds: i64::try_from(ttl.as_secs()).unwrap_or(3600),
        }
    }

    /// How long a token issued now is valid, in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// A token for `user_id` with `role` and `version`, valid from `now` (Unix seconds).
    pub fn issue(&self, user_id: Uuid, role: Role, version: i32, now: i64) -> String {
        let claims = Claims {
            sub: user_id,
            role,
            ver: version,
            iat: now,
            exp: now + self.ttl_seconds,
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims with the current key (tests forge expired tokens with it).
    pub fn sign(&self, claims: &Claims) -> String {
        // Serialising a struct of plain fields cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = mac(&self.current, signing_input.as_bytes()).finalize();
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.into_bytes())
        )
    }

    /// The claims of `token` if it is ours, correctly signed and not expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenError::Malformed)?;
        let header_value: serde_json::Value =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        // Checked before the signature, so `alg: none` and friends never get that far.
        if header_value.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(TokenError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let signed_by_us = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            // `verify_slice` compares in constant time.
            .any(|key| {
                mac(key, signing_input.as_bytes())
                    .verify_slice(&signature)
                    .is_ok()
            });
        if !signed_by_us {
            return Err(TokenError::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

fn mac(key: &Secret, data: &[u8]) -> HmacSha256 {
    let mut mac = match HmacSha256::new_from_slice(key.expose().as_bytes()) {
        Ok(mac) => mac,
        // HMAC hashes long keys and pads short ones: every length is accepted.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(data);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn keys(current: &str, previous: Option<&str>) -> Keys {
        Keys::new(
            Secret::new(current),
            previous.map(Secret::new),
            std::time::Duration::from_secs(3600),
        )
    }

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let keys = keys(&"k".repeat(32), None);
        let id = Uuid::new_v4();
        let token = keys.issue(id, Role::User, 3, NOW);

        let claims = keys.verify(&token, NOW + 10).unwrap();

        assert_eq!((claims.sub, claims.role, claims.ver), (id, Role::User, 3));
        assert_eq!(claims.exp, NOW + 3600);
        assert_eq!(keys.verify(&token, NOW + 3600), Err(TokenError::Expired));
    }

    #[test]
    fn the_previous_key_verifies_but_another_key_does_not() {
        let old = keys(&"o".repeat(32), None);
        let rotated = keys(&"n".repeat(32), Some(&"o".repeat(32)));
        let stranger = keys(&"s".repeat(32), None);
        let token = old.issue(Uuid::new_v4(), Role::Admin, 0, NOW);

        assert!(rotated.verify(&token, NOW).is_ok());
        assert_eq!(stranger.verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_or_malformed_tokens_are_refused() {
        let keys = keys(&"k".repeat(32), None);
        let token = keys.issue(Uuid::new_v4(), Role::User, 0, NOW);
        let (head, rest) = token.split_once('.').unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);

        assert_eq!(
            keys.verify(&format!("{none_header}.{rest}"), NOW),
            Err(TokenError::Malformed)
        );
        let mut claims = keys.verify(&token, NOW).unwrap();
        claims.role = Role::Admin;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let signature = token.rsplit('.').next().unwrap();
        assert_eq!(
            keys.verify(&format!("{head}.{forged_payload}.{signature}"), NOW),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert_eq!(keys.verify(bad, NOW), Err(TokenError::Malformed), "{bad}");
        }
    }
}
