//! External subscriptions (`EventAPIDefinition.externalSubscriptions`): their validation into
//! the form the dispatcher and the gateway read (`eventplane_bus::BusSubscription`, kept in the
//! API's record), the index of APIs that have some, and their GraphQL object with the state of
//! their consumption; and the rejected messages of a bus subscription or of an application
//! publishing over MQTT (both `eventplane_ingest::rejected` logs).

use async_graphql::{Context, Object, SimpleObject};
use eventplane_bus::BusSubscription;
use eventplane_bus::state::{self, BUS_APIS, BusState};
use eventplane_core::index::add_to_tenant_index;
use eventplane_core::{ApiId, Error, FieldError};
use eventplane_ingest::mqtt;
use eventplane_ingest::rejected::{MAX_REJECTED_PAGE, RejectedMessage, RejectedPage};

use crate::auth::Auth;
use crate::context::RequestScope;
use crate::errors::ApiResult;
use crate::model::{ApiRecord, ExternalSubscription};
use crate::scalars::SubscriptionAttributes;
use crate::time::Timestamp;

/// Validates an external subscription (named `field` in errors) for the bus: every problem is
/// reported, each with its field (`…url`, `…topic`, `…attributes.maxMessages`).
pub(crate) fn validate(sub: &ExternalSubscription, field: &str) -> Result<BusSubscription, Error> {
    let attributes = sub.attributes.clone().unwrap_or_default().0;
    BusSubscription::new(
        &sub.url,
        &sub.topic,
        sub.auth.as_ref().map(Auth::to_request_auth),
        &attributes,
    )
    .map_err(|problems| {
        let details: Vec<FieldError> = problems
            .into_iter()
            .map(|(name, message)| FieldError::new(format!("{field}.{name}"), message))
            .collect();
        let message = details
            .iter()
            .map(|d| format!("invalid {}: {}", d.field, d.message))
            .collect::<Vec<_>>()
            .join("; ");
        Error::validation(message, details)
    })
}

/// After `record` was written: the state of subscriptions it no longer has (of `before`) is
/// forgotten, the API is listed for the dispatcher, and its subscriptions are checked.
pub(crate) fn registered(
    scope: &RequestScope,
    record: &ApiRecord,
    before: &[BusSubscription],
) -> Result<(), Error> {
    for gone in before
        .iter()
        .filter(|old| !record.bus.iter().any(|sub| sub.key == old.key))
    {
        state::forget(scope.store(), &scope.tenant, &record.id, &gone.key)?;
    }
    if record.bus.is_empty() {
        return Ok(());
    }
    add_to_tenant_index(scope.store(), &scope.tenant, BUS_APIS, record.id.as_str())?;
    scope.bus_checker.check(&scope.tenant, &record.id);
    Ok(())
}

/// Forgets the state of every external subscription of `record` (being deleted).
pub(crate) fn forget_all(scope: &RequestScope, record: &ApiRecord) -> Result<(), Error> {
    for sub in &record.bus {
        state::forget(scope.store(), &scope.tenant, &record.id, &sub.key)?;
    }
    Ok(())
}

/// The external subscriptions of `record`, as GraphQL shows them.
pub(crate) fn views(record: &ApiRecord) -> Vec<ExternalSubscriptionView<'_>> {
    record
        .external_subscriptions
        .iter()
        .map(|sub| ExternalSubscriptionView {
            api: &record.id,
            sub,
        })
        .collect()
}

/// One external subscription of an API.
pub(crate) struct ExternalSubscriptionView<'a> {
    api: &'a ApiId,
    sub: &'a ExternalSubscription,
}

/// A subscription on an external event bus (Google Cloud Pub/Sub) from which eventplane
/// consumes the API's events: pulled on each `POST /dispatcher/tick` (`mode: pull`), or pushed
/// to `POST /events/{application}/pubsub` (`mode: push`).
#[Object(name = "EventAPISubscription")]
impl ExternalSubscriptionView<'_> {
    /// The Pub/Sub subscription resource,
    /// `https://<endpoint>/v1/projects/<project>/subscriptions/<subscription>`.
    async fn url(&self) -> &str {
        &self.sub.url
    }

    /// How to authenticate to the bus (secrets masked).
    async fn auth(&self) -> Option<&Auth> {
        self.sub.auth.as_ref()
    }

    /// The topic the subscription must be attached to, `projects/<project>/topics/<topic>`.
    async fn topic(&self) -> &str {
        &self.sub.topic
    }

    /// Protocol settings: `mode` (`pull` or `push`), `maxMessages`, `ackDeadlineSeconds`.
    async fn attributes(&self) -> Option<&SubscriptionAttributes> {
        self.sub.attributes.as_ref()
    }

    /// Where consuming it stands: last pull, messages taken, last error, rejected messages.
    async fn state(&self, ctx: &Context<'_>) -> ApiResult<SubscriptionState> {
        let scope = RequestScope::of(ctx)?;
        let key = eventplane_bus::subscription_key(&self.sub.url);
        let state = state::load(scope.store(), &scope.tenant, self.api, &key)?;
        Ok(SubscriptionState {
            api: self.api.clone(),
            key,
            state,
        })
    }
}

/// Where consuming an external subscription stands.
pub(crate) struct SubscriptionState {
    api: ApiId,
    key: String,
    state: BusState,
}

fn timestamp(ms: Option<u64>) -> Option<Timestamp> {
    ms.map(|ms| Timestamp::from_unix_seconds(i64::try_from(ms / 1000).unwrap_or(i64::MAX)))
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The most rejected messages one page lists.
const DEFAULT_REJECTED_PAGE: i32 = 50;

#[Object(name = "EventAPISubscriptionState")]
impl SubscriptionState {
    /// When it was last pulled, successfully or not.
    async fn last_pull_at(&self) -> Option<Timestamp> {
        timestamp(self.state.last_pull_at)
    }

    /// When the subscription resource was last checked (its topic).
    async fn last_check_at(&self) -> Option<Timestamp> {
        timestamp(self.state.last_check_at)
    }

    /// Messages stored as events and acknowledged.
    async fn messages_taken(&self) -> i64 {
        count(self.state.messages_taken)
    }

    /// Messages that were not valid events, recorded (see `rejected`) and acknowledged.
    async fn messages_rejected(&self) -> i64 {
        count(self.state.messages_rejected)
    }

    /// What went wrong on the last check or pull (unreachable bus, authentication, topic
    /// mismatch, failed acknowledgement); null once one succeeds.
    async fn last_error(&self) -> Option<&str> {
        self.state.last_error.as_deref()
    }

    /// When `lastError` happened.
    async fn last_error_at(&self) -> Option<Timestamp> {
        timestamp(self.state.last_error_at)
    }

    /// Messages that could not become events, oldest first (the newest 1000 are kept), with
    /// their raw content and the reason. `first`: 1 to 200 (default 50); `after`: the
    /// `nextCursor` of the previous page.
    async fn rejected(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<RejectedMessagePage> {
        let scope = RequestScope::of(ctx)?;
        let page = state::rejected_page(
            scope.store(),
            &scope.tenant,
            &self.api,
            &self.key,
            rejected_page_size(first)?,
            after.as_deref(),
        )?;
        Ok(page.into())
    }
}

/// The size of a page of rejected messages asked for with `first`: 1 to
/// [`MAX_REJECTED_PAGE`], [`DEFAULT_REJECTED_PAGE`] when not given.
fn rejected_page_size(first: Option<i32>) -> Result<usize, Error> {
    let first = first.unwrap_or(DEFAULT_REJECTED_PAGE);
    let max = i32::try_from(MAX_REJECTED_PAGE).unwrap_or(i32::MAX);
    if !(1..=max).contains(&first) {
        return Err(Error::invalid("first", format!("must be from 1 to {max}")));
    }
    Ok(usize::try_from(first).unwrap_or(1))
}

/// A page of the messages published over MQTT for `application` (`-`: topics that named no
/// application) that could not become events.
pub(crate) fn mqtt_rejected(
    scope: &RequestScope,
    application: &str,
    first: Option<i32>,
    after: Option<&str>,
) -> Result<RejectedMessagePage, Error> {
    let page = mqtt::rejected_log(application.trim()).page(
        scope.store(),
        &scope.tenant,
        rejected_page_size(first)?,
        after,
    )?;
    Ok(page.into())
}

/// A page of rejected messages.
#[derive(SimpleObject)]
#[graphql(name = "RejectedMessagePage")]
pub(crate) struct RejectedMessagePage {
    /// The messages.
    data: Vec<RejectedView>,
    /// Pass as `after` for the next page; null on the last.
    next_cursor: Option<String>,
}

impl From<RejectedPage> for RejectedMessagePage {
    fn from(page: RejectedPage) -> Self {
        Self {
            data: page.data.into_iter().map(RejectedView).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A message from an external subscription, or published over MQTT, that could not become an
/// event.
pub(crate) struct RejectedView(RejectedMessage);

#[Object(name = "RejectedMessage")]
impl RejectedView {
    /// The bus's id of the message; over MQTT, the first 32 hex digits of the SHA-256 of its
    /// topic, a zero byte and its payload.
    async fn message_id(&self) -> &str {
        &self.0.message_id
    }

    /// `INVALID_CLOUDEVENT`, `PAYLOAD_TOO_LARGE`, `EVENT_TYPE_NOT_REGISTERED` or
    /// `PAYLOAD_SCHEMA_VIOLATION`; over MQTT also `UNAUTHORIZED`, `FORBIDDEN` (the access token)
    /// and `NOT_FOUND` (no such application).
    async fn code(&self) -> &str {
        &self.0.code
    }

    /// Why it was rejected.
    async fn reason(&self) -> &str {
        &self.0.reason
    }

    /// Its attributes; over MQTT, `topic`.
    async fn attributes(&self) -> SubscriptionAttributes {
        SubscriptionAttributes(self.0.attributes.clone())
    }

    /// Its data: the text when it is UTF-8, else base64 (see `dataEncoding`); the first 64 KiB.
    /// Over MQTT the payload, with every access token replaced by `[redacted]`.
    async fn data(&self) -> &str {
        &self.0.data
    }

    /// `text` or `base64`.
    async fn data_encoding(&self) -> &str {
        &self.0.data_encoding
    }

    /// Whether `data` was cut at 64 KiB.
    async fn truncated(&self) -> bool {
        self.0.truncated
    }

    /// When the bus received it (RFC 3339, as the bus said); empty over MQTT.
    async fn publish_time(&self) -> &str {
        &self.0.publish_time
    }

    /// When it was rejected.
    async fn at(&self) -> Option<Timestamp> {
        timestamp(Some(self.0.at))
    }
}
