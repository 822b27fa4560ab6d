//! The `users` table: creation, look-ups by email (case-insensitive) and id, disabling.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::invalidation::{Confirmations, CONFIRM_WITHIN};
use super::Role;

/// One row of `users`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// The id tokens carry as `sub`.
    pub id: Uuid,
    /// The address as it was typed at creation.
    pub email: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// `admin` or `user` (the table's CHECK).
    pub role: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// A disabled user can neither log in nor use a token.
    pub disabled: bool,
    /// Must equal a token's `ver` for the token to be accepted.
    pub token_version: i32,
}

impl User {
    /// The role; an unknown spelling (impossible under the CHECK) counts as the lesser one.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::User)
    }
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The email is taken, whatever its case.
    #[error("a user with this email already exists")]
    Duplicate,
    /// Anything else.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

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

/// Inserts a user; [`CreateError::Duplicate`] if the email exists in any case.
pub async fn create(
    db: &PgPool,
    email: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, CreateError> {
    sqlx::query_as::<_, User>(
        "INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3) RETURNING *",
    )
    .bind(email)
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_one(db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("users_email_lower_idx") => {
            CreateError::Duplicate
        }
        _ => CreateError::Database(e),
    })
}

/// The user with `email` in any case.
pub async fn by_email(db: &PgPool, email: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as::<_, User>("SELECT * FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(db)
        .await
}

/// The user with `id`: one primary-key look-up, made on every authenticated request.
pub async fn by_id(db: &PgPool, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Disables the user with `email` and bumps their token version, which revokes every token
/// issued to them. Whether such a user exists.
///
/// Returns once every API process that was listening has dropped the user from its cache
/// (crate::auth::invalidation), so a request made afterwards is refused; a process that has not
/// confirmed within [`CONFIRM_WITHIN`] is named in a warning (its listener counts as lost within
/// `SILENCE_LIMIT` if its connection is gone silently).
pub async fn disable(db: &PgPool, email: &str) -> sqlx::Result<bool> {
    let confirmations = Confirmations::expect(db).await?;
    let id = sqlx::query_scalar::<_, Uuid>(
        "UPDATE users SET disabled = true, token_version = token_version + 1
         WHERE lower(email) = lower($1) RETURNING id",
    )
    .bind(email)
    .fetch_optional(db)
    .await?;
    let Some(id) = id else {
        return Ok(false);
    };
    let unconfirmed = confirmations.wait(id, CONFIRM_WITHIN).await?;
    if unconfirmed > 0 {
        tracing::warn!(
            unconfirmed,
            within_s = CONFIRM_WITHIN.as_secs(),
            "not every API process confirmed it dropped the disabled user; those still serving \
             cached users may accept the user's tokens a little longer"
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
