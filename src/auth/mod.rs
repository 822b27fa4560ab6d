//! Users and authentication: argon2id passwords and their bounded verification, HS256 access
//! tokens, the `users` table, and the in-memory login rate limiter. The HTTP side (the bearer extractor, `/auth/*`) lives in
//! `http::auth`; the reasoning is in docs/auth.md.

pub mod cache;
pub mod invalidation;
pub mod password;
pub mod rate_limit;
pub mod token;
pub mod users;
pub mod verification;

use serde::{Deserialize, Serialize};

/// What a user may do: `admin` also manages the tracked symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages shared data (symbols) as well as their own portfolios.
    Admin,
    /// Reads market data and manages their own portfolios.
    User,
}

impl Role {
    /// The spelling in `users.role` and in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    /// Parses the spelling in `users.role`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}
