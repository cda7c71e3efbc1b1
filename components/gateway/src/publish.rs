//! Publishing: CloudEvents (`POST /events/publish`) and Kyma's legacy format
//! (`POST /events/{application}/v1/events`), authenticated, validated against the
//! application's catalog, and stored before the answer.

use eventplane_core::{Error, ReadAhead, TenantId};
use eventplane_events::cloudevents::{self, ContentMode, Event};
use eventplane_events::legacy::{self, LegacyError, LegacyResponse};
use eventplane_events::token::{self, AuthError, Publisher, SCOPE_PUBLISH};
use eventplane_events::{CatalogError, limits};
use eventplane_eventstore::Stored;
use eventplane_ingest::auth::{AuthFailure, authenticate, publish_keys};
use eventplane_ingest::config::Config;
use eventplane_ingest::handoff::HandOff;
use eventplane_ingest::{Application, now_ms, want_storing_reads};
use eventplane_spin::request::{header, headers, read_body};
use eventplane_spin::{SpinStore, error_response, json_response};
use serde_json::{Value, json};
use spin_sdk::http::{IncomingRequest, Response};

/// Why a publish failed, before it is put in the endpoint's error shape.
pub enum Failure {
    /// Authentication or authorization (401 / 403 with its challenge).
    Auth(AuthError),
    /// Not in the catalog, or the data violates the schema (422).
    Catalog(CatalogError),
    /// Anything else.
    Other(Error),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self::Other(err)
    }
}

impl From<AuthError> for Failure {
    fn from(err: AuthError) -> Self {
        Self::Auth(err)
    }
}

impl From<CatalogError> for Failure {
    fn from(err: CatalogError) -> Self {
        Self::Catalog(err)
    }
}

impl From<AuthFailure> for Failure {
    fn from(err: AuthFailure) -> Self {
        match err {
            AuthFailure::Denied(err) => Self::Auth(err),
            AuthFailure::Unavailable(err) => Self::Other(err),
        }
    }
}

fn with_challenge(mut response: Response, err: &AuthError) -> Response {
    match err.www_authenticate() {
        Some(challenge) => response.set_header("www-authenticate", challenge),
        None => {
            // Forbidden: no challenge (core's default `Bearer` would be wrong here).
            response = Response::builder()
                .status(*response.status())
                .header("content-type", "application/json")
                .body(response.into_body())
                .build();
        }
    }
    response
}

impl Failure {
    /// The response in the CloudEvents endpoint's shape (`{"error": {...}}`).
    fn response(&self) -> Response {
        match self {
            Self::Auth(err) => with_challenge(error_response(&err.to_error()), err),
            Self::Catalog(err) => json_response(err.status(), &err.body()),
            Self::Other(err) => error_response(err),
        }
    }

    /// The response in Kyma's legacy shape.
    fn legacy_response(&self) -> Response {
        let (status, body) = match self {
            Self::Auth(err) => {
                let legacy = LegacyError::from(&err.to_error());
                let response = json_response(err.status(), &legacy.body());
                return with_challenge(response, err);
            }
            Self::Catalog(err) => (err.status(), LegacyError::from(err).body()),
            Self::Other(err) => (err.status(), LegacyError::from(err).body()),
        };
        let mut response = json_response(status, &body);
        if let Self::Other(err) = self {
            for (name, value) in err.headers() {
                response.set_header(name, value);
            }
        }
        response
    }
}

/// The authenticated context of one publish.
struct Context {
    /// Reads ahead what a publish needs (`publish_keys`, the source markers): a publish
    /// makes some six round trips to the store instead of twelve.
    store: ReadAhead<SpinStore>,
    config: Config,
    publisher: Publisher,
    tenant: TenantId,
}

/// Authenticates `request`, a publish for `application` (else the one its token names).
async fn context(request: &IncomingRequest, application: Option<&str>) -> Result<Context, Failure> {
    let config = Config::load()?;
    let store = ReadAhead::new(SpinStore::open_default().map_err(Error::from)?);
    let authorization = header(request, "authorization");
    let tenant_header = header(request, "tenant");
    if let Ok(token) = token::bearer_token(authorization.as_deref()) {
        store.want(publish_keys(
            &config,
            token,
            tenant_header.as_deref(),
            application,
        ));
    }
    let (publisher, tenant) = authenticate(
        &store,
        &config,
        authorization.as_deref(),
        tenant_header.as_deref(),
    )
    .await?;
    Ok(Context {
        store,
        config,
        publisher,
        tenant,
    })
}

/// The application named `name` with its catalog; 404 if there is none.
fn application(ctx: &Context, name: &str) -> Result<Application, Error> {
    Application::load(&ctx.store, &ctx.tenant, name)?
        .ok_or_else(|| Error::not_found(format!("there is no application named {name:?}")))
}

/// Stores one validated event of `app`.
fn store(
    ctx: &Context,
    app: &Application,
    event: Event,
    type_version: Option<String>,
) -> Result<Stored, Error> {
    app.store(&ctx.store, &ctx.tenant, event, type_version, now_ms())
}

fn accepted(stored: &Stored) -> Value {
    json!({
        "id": stored.event.event_id,
        "source": stored.event.source,
        "eventId": stored.event.id.to_string(),
        "duplicate": stored.duplicate,
    })
}

// ---- CloudEvents ----------------------------------------------------------------------------

/// `POST /events/publish`: the answer, and the hand-off to make after it.
pub async fn cloudevents(request: IncomingRequest) -> (Response, Option<HandOff>) {
    match publish_cloudevents(request).await {
        Ok(answer) => answer,
        Err(failure) => (failure.response(), None),
    }
}

async fn publish_cloudevents(
    request: IncomingRequest,
) -> Result<(Response, Option<HandOff>), Failure> {
    let ctx = context(&request, None).await?;
    let content_type = header(&request, "content-type");
    let mode = cloudevents::content_mode(content_type.as_deref()).supported()?;
    let limit = match mode {
        ContentMode::Batch => limits::max_batch_body_bytes(ctx.config.max_event_bytes),
        _ => ctx.config.max_event_bytes,
    };
    let headers = headers(&request);
    if mode == ContentMode::Binary && !headers.iter().any(|(name, _)| name.starts_with("ce-")) {
        // Neither a CloudEvents media type nor binary-mode attributes: the wrong content type.
        return Err(Error::unsupported_media_type(format!(
            "Content-Type {:?} with no ce-* headers is not a CloudEvent: use \
             application/cloudevents+json, application/cloudevents-batch+json, or binary mode \
             with ce-specversion, ce-id, ce-source and ce-type headers",
            content_type.as_deref().unwrap_or("")
        ))
        .into());
    }
    let body = read_body(request, usize::try_from(limit).unwrap_or(usize::MAX)).await?;
    let events = match mode {
        ContentMode::Binary => vec![cloudevents::from_binary(
            &headers,
            content_type.as_deref(),
            &body,
        )?],
        ContentMode::Structured => vec![cloudevents::from_structured(&body)?],
        ContentMode::Batch => cloudevents::from_batch(&body)?,
        ContentMode::Unsupported(_) => {
            return Err(Error::unsupported_media_type("unsupported content type").into());
        }
    };
    limits::check_events(&events, ctx.config.max_event_bytes)?;
    for event in &events {
        token::authorize_source(&ctx.publisher, &event.source)?;
    }
    want_storing_reads(&ctx.store, &ctx.tenant, &events);
    let app = application(&ctx, &ctx.publisher.app)?;
    match mode {
        ContentMode::Batch => {
            app.check_batch(&events)?;
        }
        _ => {
            for event in &events {
                app.check(event, None)?;
            }
        }
    }
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        stored.push(store(&ctx, &app, event, None)?);
    }
    let mut results: Vec<Value> = stored.iter().map(accepted).collect();
    let body = match mode {
        ContentMode::Batch => json!({ "events": results }),
        _ => results.pop().unwrap_or(Value::Null),
    };
    Ok((
        json_response(202, &body),
        HandOff::of(&ctx.store, &ctx.tenant, &stored),
    ))
}

// ---- legacy ---------------------------------------------------------------------------------

/// `POST /events/{application}/v1/events`: the answer, and the hand-off to make after it.
pub async fn legacy(request: IncomingRequest, application: &str) -> (Response, Option<HandOff>) {
    match publish_legacy(request, application).await {
        Ok(answer) => answer,
        Err(LegacyFailure::Kyma(err)) => (json_response(err.status, &err.body()), None),
        Err(LegacyFailure::Other(failure)) => (failure.legacy_response(), None),
    }
}

enum LegacyFailure {
    Kyma(LegacyError),
    Other(Failure),
}

impl<T: Into<Failure>> From<T> for LegacyFailure {
    fn from(err: T) -> Self {
        Self::Other(err.into())
    }
}

async fn publish_legacy(
    request: IncomingRequest,
    application: &str,
) -> Result<(Response, Option<HandOff>), LegacyFailure> {
    let ctx = context(&request, Some(application)).await?;
    token::authorize(&ctx.publisher, SCOPE_PUBLISH, application)?;
    let content_type = header(&request, "content-type").unwrap_or_default();
    if cloudevents::media_type(&content_type) != "application/json" {
        return Err(Error::unsupported_media_type(format!(
            "Content-Type must be application/json, not {content_type:?}"
        ))
        .into());
    }
    let limit = usize::try_from(ctx.config.max_event_bytes).unwrap_or(usize::MAX);
    let body = read_body(request, limit).await?;
    let parsed = legacy::parse(&body).map_err(LegacyFailure::Kyma)?;
    let event = parsed.to_event(application);
    want_storing_reads(&ctx.store, &ctx.tenant, std::slice::from_ref(&event));
    let app = self::application(&ctx, application)?;
    app.check(&event, Some(&parsed.event_type_version))?;
    let stored = store(&ctx, &app, event, Some(parsed.event_type_version.clone()))?;
    let answer = if stored.duplicate {
        LegacyResponse::duplicate(&parsed.event_id)
    } else {
        LegacyResponse::published(&parsed.event_id)
    };
    let hand_off = HandOff::of(&ctx.store, &ctx.tenant, std::slice::from_ref(&stored));
    Ok((json_response(200, &answer), hand_off))
}

/// `GET /events/{application}/v1/events/subscribed`: the event types of the application's
/// catalog that at least one active subscription can receive (its filter's criteria other
/// than extension attributes, which depend on each event, accept the type from this
/// application's source), each once, in catalog order.
pub async fn subscribed(request: IncomingRequest, application: &str) -> Response {
    let result = async {
        let ctx = context(&request, Some(application)).await?;
        token::authorize(&ctx.publisher, SCOPE_PUBLISH, application)?;
        let app = self::application(&ctx, application)?;
        let subscriptions = eventplane_dispatch::active(&ctx.store, &ctx.tenant)?;
        let source = cloudevents::application_source(&app.name);
        let mut events_info: Vec<Value> = Vec::new();
        for entry in &app.entries {
            let info = json!({ "name": entry.name, "version": entry.version });
            let wanted = subscriptions
                .iter()
                .any(|s| s.filter.may_match_type(&app.name, &entry.name, &source));
            if wanted && !events_info.contains(&info) {
                events_info.push(info);
            }
        }
        Ok::<_, Failure>(json_response(200, &json!({ "eventsInfo": events_info })))
    };
    match result.await {
        Ok(response) => response,
        Err(failure) => failure.legacy_response(),
    }
}
