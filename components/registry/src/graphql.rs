//! GraphQL over HTTP on `/graphql`: authentication, tenant, content negotiation and size
//! limits around the registry schema.

use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use eventplane_core::TenantId;
use eventplane_core::auth::bearer_matches;
use eventplane_registry_api::{ErrorCode, RequestScope, SharedStore, schema};
use eventplane_spin::{SpinStore, request};
use futures::StreamExt as _;
use serde_json::json;
use spin_sdk::http::{IncomingRequest, Method, Response};

use crate::bus::ChainedBusChecker;
use crate::config::Config;
use crate::fetcher::ChainedFetcher;

/// The media type of GraphQL responses (GraphQL over HTTP).
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Serves one GraphQL request.
pub async fn serve(request: IncomingRequest) -> Response {
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("registry: {e}");
            return error(
                500,
                "INTERNAL",
                "the registry is not configured correctly",
                &[],
            );
        }
    };
    let method = request.method();
    let header = |name: &str| request::header(&request, name);
    let accept = header("accept").unwrap_or_default();
    if method == Method::Get && accept.contains("text/html") {
        return graphiql();
    }
    if !bearer_matches(header("authorization").as_deref(), &config.admin_token) {
        return error(
            401,
            "UNAUTHENTICATED",
            "a valid `Authorization: Bearer <admin token>` header is required",
            &[("www-authenticate", "Bearer")],
        );
    }
    let tenant_text = header("tenant").unwrap_or_else(|| config.default_tenant.clone());
    let tenant = match TenantId::new(tenant_text.trim()) {
        Ok(tenant) => tenant,
        Err(e) => {
            return error(
                400,
                "BAD_USER_INPUT",
                &format!("invalid Tenant header: {e}"),
                &[],
            );
        }
    };

    let gql_request = match method {
        Method::Get => {
            let path_with_query = request.path_with_query().unwrap_or_default();
            let query = path_with_query
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("");
            match async_graphql::http::parse_query_string(query) {
                Ok(req) if is_mutation(&req) => {
                    return error(
                        405,
                        "BAD_USER_INPUT",
                        "mutations must be sent with POST",
                        &[("allow", "POST")],
                    );
                }
                Ok(req) => req,
                Err(e) => {
                    return error(
                        400,
                        "BAD_USER_INPUT",
                        &format!("invalid GraphQL GET request: {e}"),
                        &[],
                    );
                }
            }
        }
        _ => {
            let content_type = header("content-type").unwrap_or_default();
            let media_type = content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if media_type != "application/json" {
                return error(
                    415,
                    "BAD_USER_INPUT",
                    &format!("Content-Type must be application/json, not {content_type:?}"),
                    &[],
                );
            }
            let limit = config.max_request_bytes();
            let body = match read_body(request, limit).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            match serde_json::from_slice::<async_graphql::Request>(&body) {
                Ok(req) => req,
                Err(e) => {
                    return error(
                        400,
                        "BAD_USER_INPUT",
                        &format!(
                            "the body is not a GraphQL request ({{\"query\", \"variables\", \"operationName\"}}): {e}"
                        ),
                        &[],
                    );
                }
            }
        }
    };

    let store = match SpinStore::open_default() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("registry: cannot open the key-value store: {e}");
            return error(
                503,
                ErrorCode::ServiceUnavailable.as_str(),
                "the store is unavailable; try again",
                &[("retry-after", "1")],
            );
        }
    };
    let store: SharedStore = Arc::new(store);
    let fetcher = Arc::new(ChainedFetcher {
        admin_token: config.admin_token.clone(),
        fetch_timeout: config.fetch_timeout,
    });
    let bus_checker = Arc::new(ChainedBusChecker {
        admin_token: config.admin_token.clone(),
    });
    let scope = RequestScope::new(store.clone(), tenant.clone(), config.registry.clone())
        .with_fetcher(fetcher)
        .with_bus_checker(bus_checker);
    let response = schema().execute(scope.attach(gql_request)).await;
    if method == Method::Post {
        crate::webhooks::deliver_pending(&*store, &tenant).await;
    }

    let graphql_response = accept.contains(GRAPHQL_RESPONSE);
    // A request that got nothing done because the store did not answer is a 503 (with
    // Retry-After), whatever the media type. Otherwise, with application/graphql-response+json,
    // a request that could not run at all (no data) is a 400; with application/json every
    // GraphQL response is a 200.
    let no_data = response.data == async_graphql::Value::Null && response.is_err();
    let unavailable = no_data
        && response.errors.iter().any(|e| {
            e.extensions.as_ref().and_then(|x| x.get("code"))
                == Some(&async_graphql::Value::from(
                    ErrorCode::ServiceUnavailable.as_str(),
                ))
        });
    let status = if unavailable {
        503
    } else if graphql_response && no_data {
        400
    } else {
        200
    };
    let content_type = if graphql_response {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    };
    match serde_json::to_vec(&response) {
        Ok(body) => {
            let mut builder = Response::builder();
            builder.status(status).header("content-type", content_type);
            if unavailable {
                builder.header("retry-after", "1");
            }
            builder.body(body).build()
        }
        Err(e) => {
            eprintln!("registry: cannot serialise a response: {e}");
            error(500, "INTERNAL", "internal error", &[])
        }
    }
}

/// Whether the operation the request would run is a mutation (not allowed over GET).
fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false; // executing it reports the syntax error
    };
    match &document.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
        DocumentOperations::Multiple(ops) => match &request.operation_name {
            Some(name) => ops
                .get(name.as_str())
                .is_some_and(|op| op.node.ty == OperationType::Mutation),
            None => ops.values().any(|op| op.node.ty == OperationType::Mutation),
        },
    }
}

/// Reads the body, refusing (413) past `limit` bytes without reading the rest.
async fn read_body(request: IncomingRequest, limit: usize) -> Result<Vec<u8>, Response> {
    let mut body = Vec::new();
    let mut stream = std::pin::pin!(request.into_body_stream());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                400,
                "BAD_USER_INPUT",
                &format!("cannot read the body: {e}"),
                &[],
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(error(
                413,
                "BAD_USER_INPUT",
                &format!(
                    "the request body is larger than {limit} bytes (spec_max_bytes × 2 + 64 KiB)"
                ),
                &[],
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A GraphQL-shaped error response outside of execution (transport and auth errors).
fn error(status: u16, code: &str, message: &str, headers: &[(&str, &str)]) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    let mut builder = Response::builder();
    builder
        .status(status)
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder.header(*name, *value);
    }
    builder.body(body.to_string()).build()
}

/// GraphiQL for browsers.
fn graphiql() -> Response {
    let page = async_graphql::http::GraphiQLSource::build()
        .endpoint("/graphql")
        .title("eventplane registry")
        .finish();
    Response::builder()
        .status(200)
        .header("content-type", "text/html; charset=utf-8")
        .body(page)
        .build()
}
