//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, 1 lane, the
//! OWASP baseline), stored as PHC strings so the parameters can be raised later.
//!
//! Both functions are CPU-bound for tens of milliseconds: call them from `spawn_blocking`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The shortest password `user create` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest password accepted, in bytes: hashing costs the same whatever the length, but a
/// megabyte "password" is not one.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The hash of a password nobody has, verified against when a login names an unknown email, so
/// that an unknown email costs the same time as a wrong password and the two cannot be told
/// apart by timing. A constant: computing it at start-up allocated argon2's 19 MiB before the
/// first request (and kept it resident). A test checks it is the hash of the dummy password
/// under today's parameters, so raising them cannot leave it behind.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2lnbWFzaWdodC1kdW1teQ$g7yGCem2w5ZV5Kc8ohSissMrCnzD504Zpjn3shyoPLs";

#[cfg(test)]
const DUMMY_PASSWORD: &str = "no user has this password";

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

/// Spends the time of one [`verify`] and returns false: for a login whose email is unknown.
pub fn verify_dummy(password: &str) -> bool {
    let _ = verify(password, DUMMY_HASH);
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
        assert!(!verify_dummy(DUMMY_PASSWORD));
    }

    #[test]
    fn the_dummy_hash_is_the_dummy_password_under_the_current_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let salt = parsed.salt.unwrap();
        let now = Argon2::default()
            .hash_password(DUMMY_PASSWORD.as_bytes(), salt)
            .unwrap()
            .to_string();
        assert_eq!(DUMMY_HASH, now);
        assert!(verify(DUMMY_PASSWORD, DUMMY_HASH));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        assert_ne!(
            hash("same password!").unwrap(),
            hash("same password!").unwrap()
        );
    }
}
