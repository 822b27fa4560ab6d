//! Bearer authentication: the [`AuthUser`] and [`AdminUser`] extractors, and the `/auth`
//! routes (`POST /auth/login`, `GET /auth/me`).
//!
//! Every authenticated request checks the user's row as it stands: read by primary key, or
//! taken from the cache of users (crate::auth::cache), which drops a user as soon as the
//! database announces a change to their row. So disabling a user or bumping their token version
//! takes effect on their next request, and a request with a known user makes one round trip
//! (docs/auth.md).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::client_address::ClientAddress;
use super::error::ErrorBody;
use super::extract::Json;
use super::{AppError, AppState};
use crate::auth::Role;
use crate::db::users;

/// The longest email a login takes, in characters: RFC 5321's 254 octets, counted as JSON
/// Schema's `maxLength` counts, so that the document and the check agree (it bounds the bytes at
/// four times as many).
pub const MAX_EMAIL_CHARS: usize = 254;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// `users.id`.
    pub id: Uuid,
    /// The user's email as stored.
    pub email: String,
    /// The role in the database now (not the one in the token).
    pub role: Role,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// The authenticated caller, who must be an admin (403 `forbidden` otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

fn unauthorized(message: &str) -> AppError {
    AppError::Unauthorized(message.to_owned())
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Result<&str, AppError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("a bearer token is required"))?;
    let value = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is malformed"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(token.trim())
        }
        _ => Err(unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers)?;
        let claims = state
            .tokens
            .verify(token, Utc::now().timestamp())
            .map_err(|e| AppError::Unauthorized(e.to_string()))?;
        let user = match state.users.get(claims.sub) {
            Ok(user) => user,
            Err(miss) => {
                let user = users::by_id(&state.db, claims.sub)
                    .await?
                    .ok_or_else(|| unauthorized("the bearer token's user does not exist"))?;
                let user = Arc::new(user);
                state.users.store(miss, Arc::clone(&user));
                user
            }
        };
        if user.disabled {
            return Err(unauthorized("this account is disabled"));
        }
        if user.token_version != claims.ver {
            return Err(unauthorized("the bearer token has been revoked"));
        }
        // In the request's log context, so the access line (and any other) names the user.
        crate::telemetry::context::record("user_id", user.id.to_string());
        Ok(Self {
            id: user.id,
            role: user.role(),
            email: user.email.clone(),
            created_at: user.created_at,
        })
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role != Role::Admin {
            return Err(AppError::Forbidden(
                "this needs an administrator".to_owned(),
            ));
        }
        Ok(Self(user))
    }
}

/// `POST /auth/login`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's email, in any case.
    #[schema(max_length = 254)]
    pub email: String,
    /// The password.
    pub password: String,
}

/// A successful login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// `GET /auth/me`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The user's id.
    pub id: Uuid,
    /// The email as stored.
    pub email: String,
    /// `admin` or `user`.
    pub role: Role,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// The routes under `/auth`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/me", get(me))
}

/// Exchanges an email and password for an access token. An unknown email, a wrong password and
/// a disabled account get the same 401, in about the same time. Attempts are limited per client
/// address and per email (429), and verifications in progress are bounded (503 when too many
/// are waiting): docs/auth.md.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody, headers(("Retry-After" = u64,
            description = "Seconds to wait, when too many logins are being verified")))))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Json(request): Json<LoginRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    let email = request.email.trim();
    // Refused before anything is counted: no address is longer.
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(AppError::Validation(format!(
            "email: at most {MAX_EMAIL_CHARS} characters"
        )));
    }
    let admission = state.verifier.admit().ok_or(AppError::Overloaded(1))?;
    state
        .login_limits
        .check(client, &email.to_lowercase(), Instant::now())
        // Rounded up: a client that waits exactly `Retry-After` seconds is let in.
        .map_err(|wait| {
            AppError::TooManyRequests(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })?;

    // Postgres text cannot hold NUL: such an email is simply unknown (and still costs a dummy
    // verification below).
    let user = if email.contains('\0') {
        None
    } else {
        users::by_email(&state.db, email).await?
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = admission
        .verify(request.password, stored)
        .await
        .map_err(AppError::Internal)?;

    match user {
        Some(user) if matches && !user.disabled => {
            let token = state.tokens.issue(
                user.id,
                user.role(),
                user.token_version,
                Utc::now().timestamp(),
            );
            Ok(Json(TokenResponse {
                access_token: token,
                token_type: "bearer",
                expires_in: state.tokens.ttl_seconds(),
            }))
        }
        _ => Err(unauthorized("the email or password is not right")),
    }
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(user: AuthUser) -> Json<Me> {
    Json(Me {
        id: user.id,
        email: user.email,
        role: user.role,
        created_at: user.created_at,
    })
}
