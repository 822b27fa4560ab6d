//! The OpenAPI 3.1 description, generated from the handlers' annotations and the types they
//! send and take, served at `/api/v1/openapi.json`, with Swagger UI at `/docs` (its assets are
//! compiled in, so the page works with no network).

use axum::Router;
use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, RefOr, Type};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{auth, etl_runs, portfolios, prices, symbols, AppState};

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(title = "SigmaSight API", description = "Market data, portfolios and positions. \
        Decimals are exact and sent as JSON strings. JSON bodies of 1 KiB or more are sent \
        compressed (zstd, br or gzip) when `Accept-Encoding` asks for it."),
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
    modifiers(&BearerAuth, &ErrorHeaders),
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

/// Declares the headers `AppError` sends with a status on every path that answers it: a 401
/// names the `Bearer` scheme and a 429 says how many seconds to wait (`error.rs`).
struct ErrorHeaders;

impl Modify for ErrorHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, response) in &mut operation.responses.responses {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    let (name, schema, description) = match status.as_str() {
                        "401" => ("WWW-Authenticate", Type::String, "`Bearer`"),
                        "429" => ("Retry-After", Type::Integer, "Seconds to wait"),
                        _ => continue,
                    };
                    let header = HeaderBuilder::new()
                        .schema(Object::with_type(schema))
                        .description(Some(description))
                        .build();
                    response.headers.insert(name.to_owned(), header);
                }
            }
        }
    }
}

/// The document as served, generated when the server starts (a position's `opened_at` schema
/// ends at that day's tomorrow).
///
/// utoipa 5 writes a link's `operationId` as `operation_id` (its `Link` lacks serde's camelCase
/// renaming), which no OpenAPI reader follows, so the links' keys are put right here.
pub fn document() -> Result<Value, serde_json::Error> {
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    let operations = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|path| path.values_mut());
    let links = operations
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
    Ok(doc)
}

/// `/api/v1/openapi.json` and `/docs`.
pub fn router() -> Router<AppState> {
    let swagger = SwaggerUi::new("/docs");
    let swagger = match document() {
        Ok(doc) => swagger.external_url_unchecked("/api/v1/openapi.json", doc),
        // Not expected (the document is plain data); served as utoipa writes it rather than not.
        Err(error) => {
            tracing::error!(error = %error, "the OpenAPI document's links could not be fixed");
            swagger.url("/api/v1/openapi.json", ApiDoc::openapi())
        }
    };
    swagger.into()
}
