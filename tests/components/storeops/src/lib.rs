//! A component that makes a chosen sequence of key-value operations on the store `default` and
//! nothing else: what the store alone allows, measured on the same runtime as the components
//! (the benchmarks' "store ceiling").
//!
//! `POST /<op>,<op>,...` runs the operations in order and answers `200` with the number of
//! operations made (`400` for an unknown one). Keys are unique per request where a publish's
//! are (a new event), shared where a publish's are (a tenant's counter or index):
//!
//! | op | does | like a publish's |
//! |---|---|---|
//! | `get` | `get` of a shared 1 KiB value | catalog, token, subscriptions reads |
//! | `incr` | `wasi:keyvalue/atomics` increment of a new key | the event's dedupe claim |
//! | `seq` | increment of one shared counter | the tenant's event sequence |
//! | `set` | `set` of a new 1 KiB value | an event record |
//! | `setmany` | `wasi:keyvalue/batch` `set-many` of a new 1 KiB value and a small one | record and log entry |
//!
//! `POST /swap` is the minimal reproduction of a store's compare-and-swap: it sets a new key to
//! `old`, then `wasi:keyvalue/atomics` `current` and `swap` to `new`, and answers `200` with
//! what `swap` returned and what the key holds after it, e.g. `swap=ok holds=new` (a correct
//! store) or `swap=cas-failed holds=new` (a swap that wrote but reported failure, as Spin 4.0.2's
//! Redis store does).
//!
//! The response goes out as the components' do ([`send_response`]).
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

use eventplane_spin::send_response;
use spin_sdk::http::{IncomingRequest, Response, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store as wasi_store};

/// The most operations one request may ask for.
const MAX_OPS: usize = 64;

/// Runs the operations the path names, and answers as the components do.
#[http_component]
fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let path = request.path_with_query().unwrap_or_default();
    let ops = path.trim_start_matches('/');
    let ops = ops.split('?').next().unwrap_or_default();
    let outcome = if ops == "swap" {
        swap()
    } else {
        run(ops).map(|n| n.to_string())
    };
    let response = match outcome {
        Ok(answer) => text(200, &format!("{answer}\n")),
        Err(message) => text(400, &format!("{message}\n")),
    };
    send_response(response_out, response);
}

fn run(ops: &str) -> Result<usize, String> {
    let ops: Vec<&str> = ops.split(',').filter(|op| !op.is_empty()).collect();
    if ops.len() > MAX_OPS {
        return Err(format!("at most {MAX_OPS} operations"));
    }
    let store = Store::open_default().map_err(|e| e.to_string())?;
    let bucket = wasi_store::open("default").map_err(|e| format!("{e:?}"))?;
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let value = vec![b'x'; 1024];
    for (n, op) in ops.iter().enumerate() {
        let own = format!("storeops/{request_id}/{n}");
        match *op {
            "get" => {
                if store
                    .get("storeops/shared")
                    .map_err(|e| e.to_string())?
                    .is_none()
                {
                    store
                        .set("storeops/shared", &value)
                        .map_err(|e| e.to_string())?;
                }
            }
            "incr" => {
                atomics::increment(&bucket, &own, 1).map_err(|e| format!("{e:?}"))?;
            }
            "seq" => {
                atomics::increment(&bucket, "storeops/sequence", 1)
                    .map_err(|e| format!("{e:?}"))?;
            }
            "set" => store.set(&own, &value).map_err(|e| e.to_string())?,
            "setmany" => batch::set_many(
                &bucket,
                &[
                    (own.clone(), value.clone()),
                    (format!("{own}/log"), b"1".to_vec()),
                ],
            )
            .map_err(|e| format!("{e:?}"))?,
            other => return Err(format!("unknown operation {other:?}")),
        }
    }
    Ok(ops.len())
}

/// One compare-and-swap on a new key, reported (see the module docs).
fn swap() -> Result<String, String> {
    let bucket = wasi_store::open("default").map_err(|e| format!("{e:?}"))?;
    let key = format!("storeops/swap/{}", uuid::Uuid::new_v4().simple());
    bucket
        .set(&key, b"old")
        .map_err(|e| format!("set: {e:?}"))?;
    let cas = atomics::Cas::new(&bucket, &key).map_err(|e| format!("cas: {e:?}"))?;
    let current = cas.current().map_err(|e| format!("current: {e:?}"))?;
    if current.as_deref() != Some(b"old".as_slice()) {
        return Err(format!("current() read {current:?}, not \"old\""));
    }
    let said = match atomics::swap(cas, b"new") {
        Ok(()) => "ok".to_owned(),
        Err(atomics::CasError::CasFailed(_)) => "cas-failed".to_owned(),
        Err(atomics::CasError::StoreError(err)) => format!("store-error({err:?})"),
    };
    let holds = bucket.get(&key).map_err(|e| format!("get: {e:?}"))?;
    let holds = String::from_utf8_lossy(holds.as_deref().unwrap_or(b"(absent)")).into_owned();
    Ok(format!("swap={said} holds={holds}"))
}

fn text(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.to_owned())
        .build()
}
