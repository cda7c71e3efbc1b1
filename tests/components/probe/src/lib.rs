//! A component that reports what the host gives it, for the host's end-to-end tests.
//!
//! Any request whose path info does not start with `/_probe/` is echoed as JSON:
//! `{"id": <component variable "id" or null>, "method", "path", "headers": {spin-*}}`.
//! Under `/_probe/` (path info from the `spin-path-info` header, else the URI path) it runs
//! one operation against a host interface and reports the outcome as JSON:
//!
//! | request | does |
//! |---|---|
//! | `GET/PUT/DELETE /_probe/kv/{store}/{key}` | `fermyon:spin/key-value` get (raw bytes) / set (body) / delete |
//! | `GET /_probe/wkv/{store}/{key}` | `wasi:keyvalue/store` get |
//! | `POST /_probe/cas-incr/{store}/{key}` | decimal-text counter by `wasi:keyvalue/atomics` compare-and-swap |
//! | `POST /_probe/incr/{store}/{key}?delta=N` | `wasi:keyvalue/atomics` increment |
//! | `GET /_probe/var/{name}` | `fermyon:spin/variables` get |
//! | `POST /_probe/fetch` `{"url", "method", "body"}` | outbound HTTP with `spin_sdk::http::send` |
//! | `GET /_probe/status/{code}` | an empty response with that status |
//!
//! `{store}` and `{key}` are percent-decoded; `{key}` is the rest of the path, so it may
//! contain `/`.
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

use serde_json::{Map, Value, json};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value;
use spin_sdk::variables;
use spin_sdk::wit::wasi::keyvalue::{atomics, store as wasi_store};

/// How many compare-and-swap attempts `cas-incr` makes before giving up.
const MAX_CAS_TRIES: u32 = 10_000;

/// Echoes the request, or runs the `/_probe/` operation it names.
#[http_component]
async fn handle(request: Request) -> Response {
    let path_info = request
        .header("spin-path-info")
        .and_then(|value| value.as_str())
        .map_or_else(|| request.path().to_owned(), str::to_owned);
    match path_info.strip_prefix("/_probe/") {
        Some(op) => probe(&request, op).await,
        None => echo(&request),
    }
}

fn echo(request: &Request) -> Response {
    let id = variables::get("id").map_or(Value::Null, Value::String);
    let headers: Map<String, Value> = request
        .headers()
        .filter(|(name, _)| name.to_ascii_lowercase().starts_with("spin-"))
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.to_owned(), Value::String(value))
        })
        .collect();
    json_response(
        200,
        &json!({
            "id": id,
            "method": request.method().to_string(),
            "path": request.path(),
            "headers": headers,
        }),
    )
}

async fn probe(request: &Request, op: &str) -> Response {
    let (name, args) = op.split_once('/').unwrap_or((op, ""));
    let method = request.method();
    match (name, method) {
        ("kv", Method::Get | Method::Put | Method::Delete) => with_store_key(args, |store, key| {
            spin_kv(method, &store, &key, request.body())
        }),
        ("wkv", Method::Get) => with_store_key(args, |store, key| wasi_kv_get(&store, &key)),
        ("cas-incr", Method::Post) => with_store_key(args, |store, key| cas_incr(&store, &key)),
        ("incr", Method::Post) => match query_param(request.query(), "delta") {
            None => with_store_key(args, |store, key| incr(&store, &key, 1)),
            Some(delta) => match delta.parse::<i64>() {
                Ok(delta) => with_store_key(args, |store, key| incr(&store, &key, delta)),
                Err(_) => probe_error(400, "delta must be an integer"),
            },
        },
        ("var", Method::Get) => variable(&percent_decode(args)),
        ("fetch", Method::Post) if args.is_empty() => fetch(request.body()).await,
        // Uses an interface eventplane's host does not implement: the call must trap, and the
        // host must answer 500 and log which interface was missing.
        ("sqlite", Method::Get) => match spin_sdk::sqlite::Connection::open_default() {
            Ok(_) => json_response(200, &json!({ "sqlite": "opened" })),
            Err(e) => probe_error(500, &format!("sqlite: {e}")),
        },
        ("status", Method::Get) => match args.parse::<u16>() {
            Ok(code) if (100..=999).contains(&code) => Response::new(code, ()),
            _ => probe_error(400, "status must be a number from 100 to 999"),
        },
        _ => probe_error(404, &format!("no probe operation {method} /_probe/{op}")),
    }
}

/// Splits `{store}/{key...}` and runs `f` on the decoded parts.
fn with_store_key(args: &str, f: impl FnOnce(String, String) -> Response) -> Response {
    match args.split_once('/') {
        Some((store, key)) if !store.is_empty() && !key.is_empty() => {
            f(percent_decode(store), percent_decode(key))
        }
        _ => probe_error(400, "expected /{store}/{key}"),
    }
}

fn spin_kv(method: &Method, store: &str, key: &str, body: &[u8]) -> Response {
    let result = key_value::Store::open(store).and_then(|store| match method {
        Method::Put => store.set(key, body).map(|()| None),
        Method::Delete => store.delete(key).map(|()| None),
        _ => store.get(key).map(Some),
    });
    match result {
        Ok(Some(Some(value))) => Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .body(value)
            .build(),
        Ok(Some(None)) => json_response(404, &json!({"missing": true})),
        Ok(None) => Response::new(204, ()),
        Err(err) => kv_error(match err {
            key_value::Error::AccessDenied => "access-denied".to_owned(),
            key_value::Error::NoSuchStore => "no-such-store".to_owned(),
            key_value::Error::StoreTableFull => "store-table-full".to_owned(),
            key_value::Error::Other(message) => format!("other: {message}"),
        }),
    }
}

fn wasi_error(err: wasi_store::Error) -> String {
    match err {
        wasi_store::Error::AccessDenied => "access-denied".to_owned(),
        wasi_store::Error::NoSuchStore => "no-such-store".to_owned(),
        wasi_store::Error::Other(message) => format!("other: {message}"),
    }
}

fn wasi_kv_get(store: &str, key: &str) -> Response {
    match wasi_store::open(store).and_then(|bucket| bucket.get(key)) {
        Ok(Some(value)) => Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .body(value)
            .build(),
        Ok(None) => json_response(404, &json!({"missing": true})),
        Err(err) => kv_error(wasi_error(err)),
    }
}

/// Increments a decimal-text counter by read-modify-write with compare-and-swap, reusing the
/// handle a failed swap returns, as the interface intends.
fn cas_incr(store: &str, key: &str) -> Response {
    let bucket = match wasi_store::open(store) {
        Ok(bucket) => bucket,
        Err(err) => return kv_error(wasi_error(err)),
    };
    let mut cas = match atomics::Cas::new(&bucket, key) {
        Ok(cas) => cas,
        Err(err) => return kv_error(wasi_error(err)),
    };
    for retries in 0..MAX_CAS_TRIES {
        let current = match cas.current() {
            Ok(current) => current,
            Err(err) => return kv_error(wasi_error(err)),
        };
        let value = match current {
            None => 0,
            Some(bytes) => match std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(value) => value,
                None => return probe_error(409, "the current value is not decimal text"),
            },
        };
        let new = value + 1;
        match atomics::swap(cas, new.to_string().as_bytes()) {
            Ok(()) => return json_response(200, &json!({"value": new, "retries": retries})),
            Err(atomics::CasError::CasFailed(fresh)) => cas = fresh,
            Err(atomics::CasError::StoreError(err)) => return kv_error(wasi_error(err)),
        }
    }
    probe_error(
        503,
        &format!("compare-and-swap failed {MAX_CAS_TRIES} times"),
    )
}

fn incr(store: &str, key: &str, delta: i64) -> Response {
    match wasi_store::open(store).and_then(|bucket| atomics::increment(&bucket, key, delta)) {
        Ok(value) => json_response(200, &json!({"value": value})),
        Err(err) => kv_error(wasi_error(err)),
    }
}

fn variable(name: &str) -> Response {
    match variables::get(name) {
        Ok(value) => json_response(200, &json!({"value": value})),
        Err(err) => {
            let description = match err {
                variables::Error::InvalidName(message) => format!("invalid-name: {message}"),
                variables::Error::Undefined(message) => format!("undefined: {message}"),
                variables::Error::Provider(message) => format!("provider: {message}"),
                variables::Error::Other(message) => format!("other: {message}"),
            };
            json_response(404, &json!({"var_error": description}))
        }
    }
}

async fn fetch(body: &[u8]) -> Response {
    let Ok(spec) = serde_json::from_slice::<Value>(body) else {
        return probe_error(400, "body must be JSON {\"url\", \"method\", \"body\"}");
    };
    let Some(url) = spec.get("url").and_then(Value::as_str) else {
        return probe_error(400, "url is required");
    };
    let method = match spec.get("method").and_then(Value::as_str).unwrap_or("GET") {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    };
    let outbound_body = spec
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(outbound_body)
        .build();
    match spin_sdk::http::send::<_, Response>(request).await {
        Ok(response) => {
            let headers: Map<String, Value> = response
                .headers()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.to_owned(), Value::String(value))
                })
                .collect();
            json_response(
                200,
                &json!({
                    "status": *response.status(),
                    "headers": headers,
                    "body": String::from_utf8_lossy(response.body()),
                }),
            )
        }
        Err(err) => json_response(502, &json!({"send_error": format!("{err:?}")})),
    }
}

/// The first value of `name` in a query string (not decoded: the probe only needs numbers).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Decodes `%XX` escapes; anything malformed is kept as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn kv_error(variant: String) -> Response {
    json_response(409, &json!({"kv_error": variant}))
}

fn probe_error(status: u16, message: &str) -> Response {
    json_response(status, &json!({"probe_error": message}))
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}
