//! `GET /api/v1/symbols` (any user) and `POST /api/v1/symbols` (admins): the tracked universe
//! the ETL loads (`symbols` table).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Type;

use super::auth::{AdminUser, AuthUser};
use super::error::ErrorBody;
use super::extract::Json;
use super::{AppError, AppState};
use crate::db::symbols::{self, Symbol};
use crate::domain::{self, TextRule};

/// A display name: at most 200 characters once trimmed; a blank one is no name.
const NAME: TextRule = TextRule { min: 0, max: 200 };

/// `GET /symbols`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Symbols {
    /// Every tracked symbol, in alphabetical order.
    pub symbols: Vec<Symbol>,
}

/// `POST /symbols`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSymbol {
    /// Upper-case ticker: letters, digits and `. - ^`, at most 20 characters.
    #[schema(schema_with = symbol_schema)]
    pub symbol: domain::Symbol,
    /// An optional display name.
    #[schema(schema_with = name_schema)]
    pub name: Option<String>,
}

fn symbol_schema() -> utoipa::openapi::schema::Object {
    domain::Symbol::schema("Upper-case ticker: letters, digits and `. - ^`, at most 20 characters.")
}

fn name_schema() -> utoipa::openapi::schema::Object {
    let mut schema = NAME.schema(
        "An optional display name: at most 200 characters, none of them a control character, \
         once surrounding white space is dropped; a blank one is no name.",
    );
    schema.schema_type = [Type::String, Type::Null].into_iter().collect();
    schema
}

/// The routes under `/symbols`.
pub fn router() -> Router<AppState> {
    Router::new().route("/symbols", get(list).post(create))
}

/// Lists the tracked symbols.
#[utoipa::path(get, path = "/api/v1/symbols", operation_id = "list_symbols", tag = "symbols", security(("bearer" = [])),
    responses((status = 200, body = Symbols), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<Symbols>, AppError> {
    let symbols = symbols::list(&state.db).await?;
    Ok(Json(Symbols { symbols }))
}

/// Adds a symbol to the tracked universe: 201, or 409 if it is already there.
#[utoipa::path(post, path = "/api/v1/symbols", operation_id = "add_symbol", tag = "symbols",
    security(("bearer" = [])), request_body = NewSymbol,
    responses(
        (status = 201, body = Symbol, links(
            ("bars" = (operation_id = "price_bars", parameters(("symbol" = "$response.body#/symbol")))),
        )),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(new): Json<NewSymbol>,
) -> Result<(StatusCode, Json<Symbol>), AppError> {
    let name = match new.name.as_deref().map(|n| NAME.check(n)) {
        Some(None) => {
            return Err(AppError::Validation(format!(
                "name: expected at most {} printable characters",
                NAME.max
            )))
        }
        Some(Some(name)) if !name.is_empty() => Some(name.to_owned()),
        _ => None,
    };
    let symbol = symbols::create(&state.db, &new.symbol, name.as_deref())
        .await
        .map_err(|e| {
            AppError::conflict_on(e, symbols::PRIMARY_KEY, || {
                format!("{} is already tracked", new.symbol)
            })
        })?;
    Ok((StatusCode::CREATED, Json(symbol)))
}
