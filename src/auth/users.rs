//! Users as the CLI handles them: the shape of an address, and disabling a user everywhere at
//! once. The `users` table itself is `db::users`.

use sqlx::PgPool;

use super::invalidation::{Confirmations, CONFIRM_WITHIN};
use crate::db;

/// Whether `email` looks like an address: something, `@`, something with a dot, at most 254
/// bytes, no spaces. Deliverability is not our concern; typos in the CLI are.
pub fn is_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && email.len() <= 254
                && email.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
        }
        None => false,
    }
}

/// Disables the user with `email` and bumps their token version, which revokes every token
/// issued to them. Whether such a user exists.
///
/// Returns once every API process that was listening has dropped the user from its cache
/// (crate::auth::invalidation), so a request made afterwards is refused; a process that has not
/// confirmed within [`CONFIRM_WITHIN`] is counted in a warning.
pub async fn disable(pool: &PgPool, email: &str) -> sqlx::Result<bool> {
    let confirmations = Confirmations::expect(pool).await?;
    let Some(id) = db::users::disable(pool, email).await? else {
        return Ok(false);
    };
    let unconfirmed = confirmations.wait(id, CONFIRM_WITHIN).await?;
    if unconfirmed > 0 {
        tracing::warn!(
            unconfirmed,
            within_s = CONFIRM_WITHIN.as_secs(),
            "not every API process confirmed it dropped the disabled user; one that has not may \
             accept the user's tokens until it hears of the change or counts its listener as lost"
        );
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_shape_only() {
        for good in ["a@b.co", "Alice.Smith+x@example.com"] {
            assert!(is_email(good), "{good}");
        }
        for bad in ["", "a", "a@b", "@b.co", "a@.co", "a b@c.co", "a@b@c.co"] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
