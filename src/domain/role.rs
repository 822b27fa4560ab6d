//! What a user may do, as `users.role` and tokens spell it.

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
