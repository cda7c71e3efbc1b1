//! Delivery over Spin's outbound HTTP: the [`Transport`] the dispatcher's work loop
//! ([`eventplane_dispatch::engine`]) sends through, and `POST /dispatcher/tick`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventplane_core::{Error, EventId, KvStore, ReadAhead, TenantId};
use eventplane_dispatch::SinkAuth;
use eventplane_dispatch::engine::{self, Counts, Env, Response, Transport};
use eventplane_dispatch::outgoing::Outgoing;
use eventplane_dispatch::records::RESPONSE_EXCERPT_BYTES;
use eventplane_spin::SpinStore;
use eventplane_spin::client::{CallError, oauth_token, send_keeping_head};
use eventplane_spin::request::number_variable;
use eventplane_spin::timer::{block_on, timeout};
use spin_sdk::http::Method;

/// The longest a tick may run, and its default.
pub const MAX_TICK_BUDGET_MS: u64 = 60_000;
/// The budget of a tick that names none.
pub const DEFAULT_TICK_BUDGET_MS: u64 = 10_000;

/// Sends delivery requests with Spin's outbound HTTP (hosts: `delivery_allowed_hosts`).
struct SpinTransport<'a> {
    store: &'a SpinStore,
    tenant: &'a TenantId,
}

impl Transport for SpinTransport<'_> {
    fn oauth2_authorization(&self, auth: &SinkAuth) -> Result<String, String> {
        let SinkAuth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
        } = auth
        else {
            return Err("not an OAuth 2.0 sink".to_owned());
        };
        block_on(oauth_token(
            self.store,
            self.tenant,
            token_url,
            client_id,
            client_secret,
            scope.as_deref(),
        ))
        .map(|token| format!("Bearer {token}"))
    }

    fn send(&self, request: &Outgoing, timeout_ms: u64) -> Response {
        let call = send_keeping_head(
            Method::Post,
            &request.url,
            &request.headers,
            request.body.clone(),
            RESPONSE_EXCERPT_BYTES,
        );
        match block_on(timeout(Duration::from_millis(timeout_ms), call)) {
            None => Response::Timeout,
            Some(Ok(reply)) => Response::Status {
                status: reply.status,
                retry_after: reply.header("retry-after").map(str::to_owned),
                body: reply.body,
            },
            Some(Err(CallError::Unreachable { .. })) => Response::Connection,
            Some(Err(other)) => Response::Transport(other.to_string()),
        }
    }
}

/// Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn random() -> u64 {
    eventplane_core::random::bytes::<8>().map_or_else(|_| now_ms(), u64::from_le_bytes)
}

/// How many other due attempts a hand-off makes after its event's, and how long it may take
/// for them.
pub const HANDOFF_DRAIN: usize = 10;
/// See [`HANDOFF_DRAIN`].
pub const HANDOFF_DRAIN_BUDGET_MS: u64 = 1_000;

/// `event_retention_hours` in milliseconds. Hours may be fractional (`0.5` is half an hour);
/// negative or not finite is a configuration error.
fn retention_ms(hours: f64) -> Result<u64, Error> {
    if !hours.is_finite() || hours < 0.0 {
        return Err(Error::internal(format!(
            "the variable event_retention_hours must be a number of hours >= 0, not {hours}"
        )));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = (hours * 3_600_000.0).min(u64::MAX as f64) as u64;
    Ok(ms)
}

/// Runs `work` with the dispatcher's environment for `tenant`, on `kv` (`store`, or a view of
/// it that reads ahead); OAuth 2.0 sink tokens are cached in `store`.
fn with_env<T>(
    kv: &dyn KvStore,
    store: &SpinStore,
    tenant: &TenantId,
    work: impl FnOnce(&Env<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let lease_seconds: u64 = number_variable("delivery_lease_seconds")?;
    let retention_ms = retention_ms(number_variable::<f64>("event_retention_hours")?)?;
    let transport = SpinTransport { store, tenant };
    let env = Env {
        store: kv,
        tenant,
        transport: &transport,
        now_ms: &now_ms,
        random: &random,
        lease_ms: lease_seconds.saturating_mul(1000),
        retention_ms,
    };
    work(&env)
}

/// Runs the dispatcher's work for `tenant` for at most `budget_ms`.
pub fn tick(store: &SpinStore, tenant: &TenantId, budget_ms: u64) -> Result<Counts, Error> {
    with_env(store, store, tenant, |env| {
        engine::tick(env, budget_ms.min(MAX_TICK_BUDGET_MS))
    })
}

/// The gateway's hand-off of a just-accepted event (`None`: of a publish whose events no
/// subscription receives): the event's first attempts now, then a few other due attempts.
///
/// Reads ahead ([`ReadAhead`]): the event's delivery names the keys it reads next, so that on
/// Redis they come in two round trips rather than one each.
pub fn hand_off(
    store: SpinStore,
    tenant: &TenantId,
    event: Option<&EventId>,
) -> Result<Counts, Error> {
    let ahead = ReadAhead::new(store);
    with_env(&ahead, ahead.inner(), tenant, |env| {
        let deadline = now_ms().saturating_add(HANDOFF_DRAIN_BUDGET_MS);
        engine::deliver_event(env, event, HANDOFF_DRAIN, deadline)
    })
}
