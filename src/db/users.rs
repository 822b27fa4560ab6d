//! The `users` table: creation, look-ups by email (case-insensitive) and id, disabling.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Role;

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

/// Inserts a user; [`CreateError::Duplicate`] if the email exists in any case.
pub async fn create(
    db: &PgPool,
    email: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, CreateError> {
    sqlx::query_as!(
        User,
        "INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3)
         RETURNING id, email, password_hash, role, created_at, disabled, token_version",
        email,
        password_hash,
        role.as_str(),
    )
    .fetch_one(db)
    .await
    .map_err(|e| {
        if super::is_unique_violation(&e, "users_email_lower_idx") {
            CreateError::Duplicate
        } else {
            CreateError::Database(e)
        }
    })
}

/// The user with `email` in any case.
pub async fn by_email(db: &PgPool, email: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as!(
        User,
        "SELECT id, email, password_hash, role, created_at, disabled, token_version
           FROM users WHERE lower(email) = lower($1)",
        email,
    )
    .fetch_optional(db)
    .await
}

/// The user with `id`: one primary-key look-up, made by an authenticated request whose user the
/// cache does not hold (crate::auth::cache).
pub async fn by_id(db: &PgPool, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as!(
        User,
        "SELECT id, email, password_hash, role, created_at, disabled, token_version
           FROM users WHERE id = $1",
        id,
    )
    .fetch_optional(db)
    .await
}

/// Disables the user with `email` and bumps their token version, which revokes every token
/// issued to them: the user's id, if there is such a user. (`auth::users::disable` also waits
/// for the API processes to drop the user from their caches.)
pub async fn disable(db: &PgPool, email: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "UPDATE users SET disabled = true, token_version = token_version + 1
         WHERE lower(email) = lower($1) RETURNING id",
        email,
    )
    .fetch_optional(db)
    .await
}
