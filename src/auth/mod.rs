//! Users and authentication: argon2id passwords and their bounded verification, HS256 access
//! tokens, the cache of users and what keeps it current, and the in-memory login rate limiter.
//! The `users` table is `db::users`; the HTTP side (the bearer extractor, `/auth/*`) lives in
//! `http::auth`; the reasoning is in docs/auth.md.

pub mod cache;
pub mod invalidation;
pub mod password;
pub mod rate_limit;
pub mod token;
pub mod users;
pub mod verification;

pub use crate::domain::Role;
