//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, 1 lane, the
//! OWASP baseline), stored as PHC strings so the parameters can be raised later.
//!
//! Both functions are CPU-bound for tens of milliseconds: call them from `spawn_blocking`.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The shortest password `user create` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest password accepted, in bytes: hashing costs the same whatever the length, but a
/// megabyte "password" is not one.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A hash of a password nobody has, verified against when a login names an unknown email, so
/// that an unknown email costs the same time as a wrong password and the two cannot be told
/// apart by timing.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let salt = SaltString::encode_b64(b"sigmasight-dummy").ok()?;
    Argon2::default()
        .hash_password(b"no user has this password", &salt)
        .ok()
        .map(|h| h.to_string())
});

/// The argon2id PHC string of `password`, with a fresh random salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    // 122 random bits from the OS generator (what `uuid` v4 draws on): a salt only has to be
    // unique, and this avoids a second source of randomness.
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot encode a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `phc` (compared in constant time by the crate). A
/// malformed stored hash is a mismatch, never a panic.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Computes the dummy hash now, so that the first login naming an unknown email does not pay
/// for it (and stand out by its time). Called once at start-up, off the request threads.
pub fn prepare() {
    LazyLock::force(&DUMMY_HASH);
}

/// Spends the time of one [`verify`] and returns false: for a login whose email is unknown.
pub fn verify_dummy(password: &str) -> bool {
    if let Some(dummy) = DUMMY_HASH.as_deref() {
        let _ = verify(password, dummy);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("anything", "not a phc string"));
        assert!(!verify_dummy("no user has this password"));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        assert_ne!(
            hash("same password!").unwrap(),
            hash("same password!").unwrap()
        );
    }
}
