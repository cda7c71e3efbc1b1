//! The subscriptions REST API, free of Spin: what each [`Operation`] does with a request that
//! has been authenticated, scoped to a tenant and had its body read, and the [`Reply`] it
//! gives. The `dispatcher` component routes, checks the admin token, reads the body (at most
//! [`MAX_BODY_BYTES`], after [`Operation::check_content_type`]) and turns the reply into a
//! response.
//!
//! | operation | request | reply |
//! |---|---|---|
//! | [`Create`](Operation::Create) | `POST /subscriptions`, a subscription body | `201`, the view with the generated secret (once), `Location` |
//! | [`List`](Operation::List) | `GET /subscriptions?limit=&cursor=` | `200`, `{"data": [...], "nextCursor": "…" \| null}` |
//! | [`Get`](Operation::Get) | `GET /subscriptions/{id}` | `200`, the view |
//! | [`Replace`](Operation::Replace) | `PUT /subscriptions/{id}`, a subscription body | `200`, the view |
//! | [`Delete`](Operation::Delete) | `DELETE /subscriptions/{id}` | `204` |
//! | [`Pause`](Operation::Pause) | `POST /subscriptions/{id}/pause`, optionally `{"reason": "…"}` | `200`, the view |
//! | [`Resume`](Operation::Resume) | `POST /subscriptions/{id}/resume` | `200`, the view |
//!
//! Errors are [`Error`]s: `400` (malformed JSON, a body that is not an object, a bad `limit` or
//! `cursor`), `404` (an unknown or malformed id), `415` (a body that is not
//! `application/json`), `422` (invalid fields, each with its path).

use eventplane_core::{Error, FieldError, KvStore, SubscriptionId, TenantId};
use serde_json::{Value, json};

use crate::input::{SubscriptionInput, parse_pause};
use crate::lookup::EventRef;
use crate::records::{AttemptOutcome, Trigger};
use crate::signing::GENERATED_KEY_BYTES;
use crate::time::Timestamp;
use crate::{engine, store};

/// The largest request body accepted, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The media type of request bodies.
pub const JSON: &str = "application/json";

/// Where the subscriptions live: `/subscriptions`.
pub const BASE_PATH: &str = "/subscriptions";

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Create a subscription.
    Create,
    /// A page of the tenant's subscriptions.
    List,
    /// One subscription.
    Get,
    /// Replace a subscription.
    Replace,
    /// Delete a subscription.
    Delete,
    /// Pause a subscription.
    Pause,
    /// Resume a subscription.
    Resume,
    /// A page of a subscription's attempts.
    Attempts,
    /// A page of a subscription's dead letters.
    DeadLetters,
    /// Deliver a dead letter again.
    Redeliver,
    /// Deliver stored events again (`{since, until?, afterSequence?}`).
    Replay,
}

impl Operation {
    /// Whether the request's body is read: a subscription (create, replace) or an optional
    /// pause reason.
    pub fn reads_body(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Replace | Self::Pause | Self::Replay
        )
    }

    /// Checks the `Content-Type` of a request before its body is read: `application/json`
    /// (parameters such as `charset` allowed) for a create or a replace, and for a pause when
    /// the header is present (a pause may come without a body, and so without the header).
    /// `415` otherwise. Requests whose body is not read pass.
    pub fn check_content_type(self, content_type: Option<&str>) -> Result<(), Error> {
        match (self, content_type) {
            (Self::Pause, None) => Ok(()),
            (Self::Create | Self::Replace | Self::Pause | Self::Replay, content_type) => {
                let content_type = content_type.unwrap_or_default();
                let media_type = content_type.split(';').next().unwrap_or_default();
                if media_type.trim().eq_ignore_ascii_case(JSON) {
                    Ok(())
                } else {
                    Err(Error::unsupported_media_type(format!(
                        "Content-Type must be {JSON}, not {content_type:?}"
                    )))
                }
            }
            _ => Ok(()),
        }
    }
}

/// The OpenAPI 3.1 document of the dispatcher's HTTP API, served at
/// `GET /subscriptions/openapi.json`.
pub const OPENAPI: &str = include_str!("../api/openapi.json");

/// What a route of the dispatcher leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// An operation of the subscriptions API.
    Api(Operation),
    /// `POST /dispatcher/tick`.
    Tick,
    /// The OpenAPI document.
    OpenApi,
}

/// The dispatcher's routes, in matching order (first match wins): method, path pattern
/// (`{name}` matches one segment), endpoint. The component serves exactly these, and a test
/// holds [`OPENAPI`] to them.
pub const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("GET", "/subscriptions/openapi.json", Endpoint::OpenApi),
    ("POST", "/subscriptions", Endpoint::Api(Operation::Create)),
    ("GET", "/subscriptions", Endpoint::Api(Operation::List)),
    ("GET", "/subscriptions/{id}", Endpoint::Api(Operation::Get)),
    (
        "PUT",
        "/subscriptions/{id}",
        Endpoint::Api(Operation::Replace),
    ),
    (
        "DELETE",
        "/subscriptions/{id}",
        Endpoint::Api(Operation::Delete),
    ),
    (
        "POST",
        "/subscriptions/{id}/pause",
        Endpoint::Api(Operation::Pause),
    ),
    (
        "POST",
        "/subscriptions/{id}/resume",
        Endpoint::Api(Operation::Resume),
    ),
    (
        "GET",
        "/subscriptions/{id}/attempts",
        Endpoint::Api(Operation::Attempts),
    ),
    (
        "GET",
        "/subscriptions/{id}/dead-letters",
        Endpoint::Api(Operation::DeadLetters),
    ),
    (
        "POST",
        "/subscriptions/{id}/dead-letters/{eventId}/redeliver",
        Endpoint::Api(Operation::Redeliver),
    ),
    (
        "POST",
        "/subscriptions/{id}/replay",
        Endpoint::Api(Operation::Replay),
    ),
    ("POST", "/dispatcher/tick", Endpoint::Tick),
];

/// A request to the subscriptions API, authenticated and with its body read.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// What it asks for.
    pub operation: Operation,
    /// The `{id}` path segment, for operations on one subscription.
    pub id: Option<&'a str>,
    /// The `{eventId}` path segment, for a redelivery.
    pub event_id: Option<&'a str>,
    /// The query string (without `?`), for a list.
    pub query: &'a str,
    /// The body (empty when not read).
    pub body: &'a [u8],
}

/// What to answer: a status, a JSON body (none for `204`) and, for a create, the `Location`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The `Location` header (the created subscription's path).
    pub location: Option<String>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            location: None,
        }
    }
}

/// Runs `request` for `tenant` at `now_ms` (Unix milliseconds). `secret_random` supplies the
/// random bytes of a generated signing secret; it is called only by a create that gives no
/// secret.
pub fn execute(
    kv: &dyn KvStore,
    tenant: &TenantId,
    request: Request<'_>,
    now_ms: u64,
    secret_random: impl FnOnce() -> Result<[u8; GENERATED_KEY_BYTES], Error>,
) -> Result<Reply, Error> {
    let id = || parse_id(request.id.unwrap_or_default());
    Ok(match request.operation {
        Operation::Create => {
            let input = SubscriptionInput::parse(&parse_json(request.body)?)?;
            let random = match input.signing_secret {
                Some(_) => [0; GENERATED_KEY_BYTES],
                None => secret_random()?,
            };
            let created = store::create(kv, tenant, input, random, now_ms)?;
            Reply {
                location: Some(format!("{BASE_PATH}/{}", created.subscription.id)),
                ..Reply::json(201, created.view())
            }
        }
        Operation::List => {
            let query = ListQuery::parse(request.query)?;
            let page = store::list(kv, tenant, query.cursor.as_deref(), query.limit)?;
            Reply::json(200, page.view())
        }
        Operation::Get => Reply::json(200, store::get(kv, tenant, &id()?)?.view()),
        Operation::Replace => {
            let id = id()?;
            let input = SubscriptionInput::parse(&parse_json(request.body)?)?;
            Reply::json(200, store::replace(kv, tenant, &id, input, now_ms)?.view())
        }
        Operation::Delete => {
            store::delete(kv, tenant, &id()?, now_ms)?;
            Reply {
                status: 204,
                body: None,
                location: None,
            }
        }
        Operation::Pause => {
            let id = id()?;
            let reason = if request.body.trim_ascii().is_empty() {
                None
            } else {
                parse_pause(&parse_json(request.body)?)?
            };
            Reply::json(200, store::pause(kv, tenant, &id, reason, now_ms)?.view())
        }
        Operation::Resume => Reply::json(200, store::resume(kv, tenant, &id()?, now_ms)?.view()),
        Operation::Attempts => {
            let query = attempt_query(request.query)?;
            Reply::json(200, store::list_attempts(kv, tenant, &id()?, &query)?)
        }
        Operation::DeadLetters => {
            let paging = ListQuery::parse(request.query)?;
            let (event, source) = event_filter(request.query)?;
            let query = store::DeadLetterQuery {
                event,
                source,
                limit: paging.limit,
                cursor: paging.cursor,
            };
            Reply::json(200, store::dead_letters(kv, tenant, &id()?, &query)?)
        }
        Operation::Redeliver => {
            let id = id()?;
            let text = request.event_id.unwrap_or_default();
            let source = query_value(request.query, "source");
            let named = EventRef::parse(text, source.as_deref())?;
            store::get(kv, tenant, &id)?;
            let event = named.resolve(kv, tenant)?.ok_or_else(|| {
                Error::not_found(format!("no event has the CloudEvents id {text:?}"))
            })?;
            store::dead_letter(kv, tenant, &id, &event)?;
            if !engine::redeliver(kv, tenant, &id, &event, Trigger::Redeliver, now_ms)? {
                return Err(Error::conflict(format!(
                    "the event {event} is already being delivered to {id} again"
                )));
            }
            store::remove_dead_letter(kv, tenant, &id, &event)?;
            Reply::json(202, json!({ "eventId": event, "status": "scheduled" }))
        }
        Operation::Replay => {
            let subscription = store::get(kv, tenant, &id()?)?;
            let window = ReplayWindow::parse(&parse_json(request.body)?)?;
            let outcome = engine::replay(
                kv,
                tenant,
                &subscription,
                window.since_ms,
                window.until_ms,
                window.after_sequence,
                now_ms,
            )?;
            Reply::json(202, serde_json::to_value(outcome).unwrap_or_default())
        }
    })
}

/// The last non-empty value of the query parameter `name`, if any.
fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(key, value)| key == name && !value.is_empty())
        .last()
        .map(|(_, value)| value.into_owned())
}

/// The event filter of a listing: `eventId` (eventplane's id or a CloudEvents id, see
/// [`EventRef`]) with an optional `source`, or a `source` alone (only events from it).
fn event_filter(query: &str) -> Result<(Option<EventRef>, Option<String>), Error> {
    let source = query_value(query, "source");
    match query_value(query, "eventId") {
        Some(id) => Ok((Some(EventRef::parse(&id, source.as_deref())?), None)),
        None => {
            if let Some(source) = &source {
                crate::lookup::check_source(source)?;
            }
            Ok((None, source))
        }
    }
}

/// The query of an attempts listing: `eventId` (eventplane's or the CloudEvents id) and
/// `source` ([`EventRef`]; a `source` alone keeps the events from it), `status` (`succeeded` or
/// `failed`), `since` (RFC 3339), `limit` (1 to 200, default 50) and `cursor`; a malformed one
/// is a `400`.
pub fn attempt_query(query: &str) -> Result<store::AttemptQuery, Error> {
    let mut parsed = store::AttemptQuery::default();
    (parsed.event, parsed.source) = event_filter(query)?;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if value.is_empty() {
            continue;
        }
        match name.as_ref() {
            "status" => {
                parsed.outcome = Some(match value.as_ref() {
                    "succeeded" => AttemptOutcome::Succeeded,
                    "failed" => AttemptOutcome::Failed,
                    _ => return Err(Error::invalid("status", "must be succeeded or failed")),
                });
            }
            "since" => {
                parsed.since_ms = Some(
                    Timestamp::parse_rfc3339(&value)
                        .ok_or_else(|| Error::invalid("since", "must be an RFC 3339 time"))?
                        .unix_ms(),
                );
            }
            _ => {}
        }
    }
    // Paging as for every list; here the cursor is an event sequence number.
    let paging = ListQuery::parse(query)?;
    parsed.limit = store::page_size::<u64>(paging.limit, paging.cursor.as_deref())?;
    parsed.after_sequence = paging.cursor.and_then(|cursor| cursor.parse().ok());
    Ok(parsed)
}

/// The body of a replay: `since` (RFC 3339, required), `until` (RFC 3339, exclusive, after
/// `since`), and `afterSequence` (to continue a replay where the previous answer stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    /// From (Unix ms).
    pub since_ms: u64,
    /// Until (Unix ms, exclusive).
    pub until_ms: Option<u64>,
    /// Continue after this sequence number.
    pub after_sequence: Option<u64>,
}

impl ReplayWindow {
    /// Reads a replay body; every problem at once, with field paths (`422`); not an object:
    /// `400`.
    pub fn parse(body: &Value) -> Result<Self, Error> {
        let Some(map) = body.as_object() else {
            return Err(Error::invalid("body", "must be a JSON object"));
        };
        let mut problems = Vec::new();
        for key in map.keys() {
            if !matches!(key.as_str(), "since" | "until" | "afterSequence") {
                problems.push(FieldError::new(key.clone(), "is not a field of a replay"));
            }
        }
        let mut time = |field: &str, required: bool| -> Option<u64> {
            match map.get(field) {
                None | Some(Value::Null) if !required => None,
                None | Some(Value::Null) => {
                    problems.push(FieldError::new(field, "is required (an RFC 3339 time)"));
                    None
                }
                Some(value) => {
                    let parsed = value.as_str().and_then(Timestamp::parse_rfc3339);
                    if parsed.is_none() {
                        problems.push(FieldError::new(
                            field,
                            "must be an RFC 3339 time, e.g. 2026-11-28T09:00:00Z",
                        ));
                    }
                    parsed.map(Timestamp::unix_ms)
                }
            }
        };
        let since = time("since", true);
        let until = time("until", false);
        let after_sequence = match map.get("afterSequence") {
            None | Some(Value::Null) => None,
            Some(value) => {
                if value.as_u64().is_none() {
                    problems.push(FieldError::new(
                        "afterSequence",
                        "must be the continueAfterSequence of a previous answer",
                    ));
                }
                value.as_u64()
            }
        };
        if let (Some(since), Some(until)) = (since, until)
            && until <= since
        {
            problems.push(FieldError::new("until", "must be later than since"));
        }
        match since {
            Some(since_ms) if problems.is_empty() => Ok(Self {
                since_ms,
                until_ms: until,
                after_sequence,
            }),
            _ => Err(Error::unprocessable("the replay is invalid", problems)),
        }
    }
}

/// The paging parameters of a list: `limit` and `cursor` (other parameters are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// The page size asked for (checked by [`store::list`]).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// Reads a query string (`limit=2&cursor=sub_…`, form-encoded); a `limit` that is not a
    /// whole number is a `400`. Empty values count as absent; of repeated ones the last counts.
    pub fn parse(query: &str) -> Result<Self, Error> {
        let mut parsed = Self::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = Some(value.into_owned()).filter(|value| !value.is_empty());
            match name.as_ref() {
                "limit" => {
                    parsed.limit =
                        value
                            .map(|text| text.parse::<u32>())
                            .transpose()
                            .map_err(|_| {
                                Error::invalid(
                                    "limit",
                                    format!(
                                        "must be a whole number from 1 to {}",
                                        store::MAX_PAGE_SIZE
                                    ),
                                )
                            })?;
                }
                "cursor" => parsed.cursor = value,
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// The subscription id of a path segment; `404 NOT_FOUND` if it is not one (no such
/// subscription can exist).
pub fn parse_id(text: &str) -> Result<SubscriptionId, Error> {
    text.parse()
        .map_err(|_| Error::not_found(format!("no subscription {text}")))
}

/// A request body as JSON; `400` (field `body`) if it is not.
pub fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|err| Error::invalid("body", format!("is not JSON: {err}")))
}

#[cfg(test)]
mod tests {
    use eventplane_core::MemoryStore;
    use serde_json::json;

    use super::*;
    use crate::tests::{NOW, SECRET, full_body, tenant};

    fn run(
        store: &MemoryStore,
        operation: Operation,
        id: Option<&str>,
        body: &[u8],
    ) -> Result<Reply, Error> {
        run_query(store, operation, id, "", body)
    }

    fn run_query(
        store: &MemoryStore,
        operation: Operation,
        id: Option<&str>,
        query: &str,
        body: &[u8],
    ) -> Result<Reply, Error> {
        let request = Request {
            operation,
            id,
            event_id: None,
            query,
            body,
        };
        execute(store, &tenant(), request, NOW, || {
            Ok([9; GENERATED_KEY_BYTES])
        })
    }

    fn minimal(name: &str) -> Vec<u8> {
        json!({"name": name, "sink": {"url": "https://hooks.example/in"},
               "filter": {"application": "shop"}})
        .to_string()
        .into_bytes()
    }

    fn body(reply: &Reply) -> &Value {
        reply.body.as_ref().expect("a JSON body")
    }

    #[test]
    fn create_get_replace_pause_resume_delete() -> Result<(), Error> {
        let store = MemoryStore::spin_sqlite_like();
        let created = run(&store, Operation::Create, None, &minimal("orders"))?;
        assert_eq!(created.status, 201);
        let id = body(&created)["id"].as_str().expect("id").to_owned();
        assert!(id.starts_with("sub_"), "{id}");
        assert_eq!(created.location, Some(format!("/subscriptions/{id}")));
        let secret = body(&created)["signing"]["secret"]
            .as_str()
            .expect("secret");
        assert!(secret.starts_with("whsec_"), "{secret}");

        let got = run(&store, Operation::Get, Some(&id), b"")?;
        assert_eq!(got.status, 200);
        assert_eq!(body(&got)["signing"], json!({"secretSet": true}));

        let replaced = run(&store, Operation::Replace, Some(&id), &minimal("renamed"))?;
        assert_eq!(
            (
                replaced.status,
                &body(&replaced)["name"],
                &body(&replaced)["version"]
            ),
            (200, &json!("renamed"), &json!(2))
        );

        let paused = run(
            &store,
            Operation::Pause,
            Some(&id),
            br#"{"reason": "maintenance"}"#,
        )?;
        assert_eq!(body(&paused)["status"], json!("paused"));
        assert_eq!(body(&paused)["pausedReason"], json!("maintenance"));
        let resumed = run(&store, Operation::Resume, Some(&id), b"")?;
        assert_eq!(body(&resumed)["status"], json!("active"));
        let paused = run(&store, Operation::Pause, Some(&id), b" ")?;
        assert_eq!(body(&paused).get("pausedReason"), None);

        let deleted = run(&store, Operation::Delete, Some(&id), b"")?;
        assert_eq!((deleted.status, deleted.body), (204, None));
        let err = run(&store, Operation::Get, Some(&id), b"").expect_err("deleted");
        assert_eq!(err.status(), 404);
        Ok(())
    }

    #[test]
    fn a_given_secret_needs_no_randomness() -> Result<(), Error> {
        let store = MemoryStore::new();
        let request = Request {
            operation: Operation::Create,
            id: None,
            event_id: None,
            query: "",
            body: &full_body().to_string().into_bytes(),
        };
        let reply = execute(&store, &tenant(), request, NOW, || {
            Err(Error::internal("no randomness"))
        })?;
        assert_eq!(body(&reply)["signing"], json!({"secretSet": true}));
        assert!(!body(&reply).to_string().contains(SECRET));
        Ok(())
    }

    #[test]
    fn lists_page_with_limit_and_cursor() -> Result<(), Error> {
        let store = MemoryStore::spin_sqlite_like();
        for i in 0..3 {
            run(&store, Operation::Create, None, &minimal(&format!("s{i}")))?;
        }
        let first = run_query(&store, Operation::List, None, "limit=2&other=x", b"")?;
        assert_eq!(body(&first)["data"].as_array().map(Vec::len), Some(2));
        let cursor = body(&first)["nextCursor"]
            .as_str()
            .expect("cursor")
            .to_owned();
        let rest = run_query(
            &store,
            Operation::List,
            None,
            &format!("cursor={cursor}&limit=2"),
            b"",
        )?;
        assert_eq!(body(&rest)["data"][0]["name"], json!("s2"));
        assert_eq!(body(&rest)["nextCursor"], Value::Null);
        let all = run_query(&store, Operation::List, None, "limit=&cursor=", b"")?;
        assert_eq!(body(&all)["data"].as_array().map(Vec::len), Some(3));
        for (query, field) in [
            ("limit=ten", "limit"),
            ("limit=-1", "limit"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("cursor=nope", "cursor"),
        ] {
            let err = run_query(&store, Operation::List, None, query, b"").expect_err(query);
            assert_eq!(
                (err.status(), err.details()[0].field.as_str()),
                (400, field),
                "{query}"
            );
        }
        Ok(())
    }

    #[test]
    fn bad_bodies_and_ids() -> Result<(), Error> {
        let store = MemoryStore::new();
        for (body, status, field) in [
            (&b"{"[..], 400, "body"),
            (b"", 400, "body"),
            (b"[1]", 400, "body"),
            (
                br#"{"name": "x", "sink": {"url": "ftp://x"}, "filter": {"application": "shop"}}"#,
                422,
                "sink.url",
            ),
        ] {
            let err = run(&store, Operation::Create, None, body).expect_err("bad body");
            assert_eq!(
                (err.status(), err.details()[0].field.as_str()),
                (status, field)
            );
        }
        let id = run(&store, Operation::Create, None, &minimal("s"))?;
        let id = body(&id)["id"].as_str().expect("id").to_owned();
        for (pause, status, field) in [
            (&br#"{"reason": 5}"#[..], 422, "reason"),
            (br#"{"why": "x"}"#, 422, "why"),
            (br#""x""#, 400, "body"),
            (b"{", 400, "body"),
        ] {
            let err = run(&store, Operation::Pause, Some(&id), pause).expect_err("bad pause");
            assert_eq!(
                (err.status(), err.details()[0].field.as_str()),
                (status, field)
            );
        }
        for unknown in [
            "sub_123",
            "nope",
            "",
            "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f",
        ] {
            for operation in [Operation::Get, Operation::Delete, Operation::Resume] {
                let err = run(&store, operation, Some(unknown), b"").expect_err("unknown");
                assert_eq!(err.status(), 404, "{operation:?} {unknown}");
            }
        }
        Ok(())
    }

    #[test]
    fn content_types_are_checked_before_reading() {
        for (operation, content_type, ok) in [
            (Operation::Create, Some("application/json"), true),
            (
                Operation::Create,
                Some("Application/JSON; charset=utf-8"),
                true,
            ),
            (Operation::Create, Some("text/plain"), false),
            (Operation::Create, None, false),
            (
                Operation::Replace,
                Some("application/x-www-form-urlencoded"),
                false,
            ),
            (Operation::Pause, None, true),
            (Operation::Pause, Some("application/json"), true),
            (Operation::Pause, Some("text/plain"), false),
            (Operation::Get, Some("text/plain"), true),
            (Operation::Delete, None, true),
        ] {
            let result = operation.check_content_type(content_type);
            assert_eq!(result.is_ok(), ok, "{operation:?} {content_type:?}");
            if let Err(err) = result {
                assert_eq!(err.status(), 415);
            }
        }
    }
}

#[cfg(test)]
mod attempt_query_tests {
    use super::*;

    #[test]
    fn attempts_are_paged_like_every_list() -> Result<(), Error> {
        let query = attempt_query("status=failed&cursor=7&limit=3")?;
        assert_eq!(
            (query.outcome, query.after_sequence, query.limit),
            (Some(AttemptOutcome::Failed), Some(7), 3)
        );
        assert_eq!(attempt_query("")?.limit, 50);
        for (text, field) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=ten", "limit"),
            ("cursor=sub_1", "cursor"),
            ("status=maybe", "status"),
            ("since=yesterday", "since"),
        ] {
            let err = attempt_query(text).expect_err(text);
            assert_eq!(
                (err.status(), err.details()[0].field.as_str()),
                (400, field),
                "{text}"
            );
        }
        // An event named by eventplane's id or by its publisher's, with or without a source.
        let ours = "evt_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f";
        let by_ours = attempt_query(&format!("eventId={ours}"))?;
        assert!(matches!(by_ours.event, Some(EventRef::Internal(_))));
        let by_theirs = attempt_query("eventId=4711&source=%2Fapplications%2Fshop")?;
        assert_eq!(
            by_theirs.event,
            Some(EventRef::CloudEvent {
                id: "4711".into(),
                source: Some("/applications/shop".into())
            })
        );
        assert_eq!(by_theirs.source, None, "the source chooses the event");
        let from = attempt_query("source=%2Fapplications%2Fshop")?;
        assert_eq!(
            (from.event, from.source.as_deref()),
            (None, Some("/applications/shop"))
        );
        Ok(())
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn a_source_alone_is_held_to_the_length_it_has_with_an_event_id() {
        let long = "s".repeat(crate::lookup::MAX_REFERENCE_CHARS + 1);
        for query in [
            format!("source={long}"),
            format!("eventId=4711&source={long}"),
        ] {
            let err = attempt_query(&query).expect_err("too long");
            assert_eq!(
                (err.status(), err.details()[0].field.as_str()),
                (400, "source")
            );
        }
    }
}

#[cfg(test)]
mod replay_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_replay_window_is_checked_field_by_field() {
        let ok = ReplayWindow::parse(&json!({"since": "2026-11-28T09:00:00Z"})).expect("valid");
        assert_eq!(ok.until_ms, None);
        let err = ReplayWindow::parse(
            &json!({"since": "yesterday", "until": "2026-11-28T08:00:00Z",
                                              "afterSequence": -1, "from": 1}),
        )
        .expect_err("invalid");
        assert_eq!(err.status(), 422);
        let fields: Vec<_> = err.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["from", "since", "afterSequence"]);
        let err = ReplayWindow::parse(&json!({"since": "2026-11-28T09:00:00Z",
                                              "until": "2026-11-28T08:00:00Z"}))
        .expect_err("until before since");
        assert_eq!(err.details()[0].field, "until");
        let err = ReplayWindow::parse(&json!({})).expect_err("since is required");
        assert_eq!(err.details()[0].field, "since");
        assert_eq!(
            ReplayWindow::parse(&json!([]))
                .expect_err("not an object")
                .status(),
            400
        );
    }
}

#[cfg(test)]
mod openapi_tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_openapi_document_describes_exactly_the_routes() {
        let document: Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("a path item") {
                if method != "parameters" {
                    documented.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
            .collect();
        assert_eq!(documented, served);
        // Every $ref points at something in the document.
        let text = OPENAPI;
        for reference in text.split("\"$ref\": \"#/").skip(1) {
            let pointer = reference.split('"').next().unwrap_or_default();
            assert!(
                document.pointer(&format!("/{pointer}")).is_some(),
                "dangling $ref #/{pointer}"
            );
        }
    }
}
