//! The OpenAPI 3.1 description, generated from the handlers' annotations and the types they
//! send and take, served at `/api/v1/openapi.json`, with Swagger UI at `/docs` (its assets are
//! compiled in, so the page works with no network).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{auth, etl_runs, portfolios, prices, symbols, AppState};

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(title = "SigmaSight API", description = "Market data, portfolios and positions. \
        Decimals are exact and sent as JSON strings."),
    paths(
        auth::login, auth::me,
        symbols::list, symbols::create,
        prices::bars, prices::latest,
        etl_runs::list,
        portfolios::list, portfolios::create, portfolios::show, portfolios::rename,
        portfolios::remove, portfolios::list_positions, portfolios::add_position,
        portfolios::show_position, portfolios::replace_position, portfolios::remove_position,
        portfolios::summary,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the paths' `security` refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `/api/v1/openapi.json` and `/docs`.
pub fn router() -> Router<AppState> {
    SwaggerUi::new("/docs")
        .url("/api/v1/openapi.json", ApiDoc::openapi())
        .into()
}
