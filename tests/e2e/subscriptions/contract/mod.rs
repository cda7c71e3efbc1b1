//! The subscriptions API against its own OpenAPI document, property-based: requests generated
//! from the document the server serves (`GET /subscriptions/openapi.json`), each answer checked
//! against it.
//!
//! For every operation the run sends [`POSITIVE`] requests that are valid by the document
//! (parameters, headers and bodies from their schemas, path ids both real and made up) and
//! [`NEGATIVE`] requests that break one thing the document states (a schema constraint, a rule
//! written in a description, the token, the media type, the body size). Every answer must:
//!
//! - not be a server error (5xx);
//! - have a status the operation documents, and a body its schema allows;
//! - for a valid request, be a success, or a 404 or 409 that the operation documents (a made-up
//!   id, a dead letter that is not there, a conflict); never a 400, 401, 413, 415 or 422, and
//!   never a 404 for a subscription that exists;
//! - for an invalid request, be a documented 4xx (the one status that fits, where only one does).
//!
//! Every mismatch is reported at once, with the seed: `CONTRACT_SEED=<seed>` runs the same
//! requests again (`CONTRACT_CASES=<n>` changes how many valid requests each operation gets).
//! What the document can only say in words is in [`rules`].

mod document;
mod generate;
mod rules;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use eventplane_tests::TestServer;
use rand::RngExt as _;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom as _, SliceRandom as _};
use serde_json::{Value, json as j};

use self::document::{Document, Location, Operation};
use self::generate::{Generator, break_text, rng_from};
use self::rules::{LENIENCIES, RULES, Rule};
use super::delivery::{ENV, tick};
use super::{Api, id_of};
use crate::e2e_test;
use crate::gateway::{Shop, order};
use crate::registry::ADMIN_TOKEN;

/// Valid requests per operation (`CONTRACT_CASES` overrides).
const POSITIVE: usize = 100;
/// Invalid requests per operation, for every 100 valid ones.
const NEGATIVE: usize = 40;
/// The tenant the server uses without a `Tenant` header.
const DEFAULT_TENANT: &str = "default";

/// A request body as sent.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json(Value),
    Raw(String),
}

/// A request, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Path parameters, by name.
    pub path: Vec<(String, String)>,
    /// Query parameters, as the values of their schemas (numbers for integers).
    pub query: Vec<(String, Value)>,
    pub tenant: Option<String>,
    pub token: Option<String>,
    pub content_type: Option<String>,
    pub body: Body,
    /// Whether the subscription named exists in the tenant (a 404 is then wrong).
    pub expect_found: bool,
}

/// A subscription known to exist.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    tenant: String,
    id: String,
}

/// What exists on the server that requests can name.
struct World {
    /// Subscriptions set up for the run, never replaced or deleted: one whose only attempt
    /// failed (so it has a dead letter), one whose attempt succeeded, one in another tenant.
    stable: Vec<Known>,
    /// Subscriptions the run's creates made, until a delete removes them.
    created: Vec<Known>,
    /// Names of the stored event: eventplane's id and the CloudEvents id.
    events: Vec<String>,
    sources: Vec<String>,
    tenants: Vec<String>,
}

impl World {
    /// The subscriptions, stored event, attempts and dead letter the run names.
    async fn set_up(
        shop: &Shop,
        failing: &TestServer,
        working: &TestServer,
    ) -> anyhow::Result<Self> {
        let subs = Api::new(&shop.r.app);
        let other_tenant = "contract-b";
        let body = |name: &str, url: String| {
            j!({"name": name, "sink": {"url": url}, "filter": {"application": "shop"},
                "delivery": {"retry": 0}})
        };
        let failing_id = id_of(
            &subs
                .create(&body("failing sink", failing.url("/in")))
                .await?,
        )?;
        let working_id = id_of(
            &subs
                .create(&body("working sink", working.url("/in")))
                .await?,
        )?;
        let other_id = id_of(
            &subs
                .as_tenant(other_tenant)
                .create(&body("other tenant", "https://hooks.example/in".into()))
                .await?,
        )?;
        shop.client()
            .structured(&order("o-1"))
            .await?
            .expect(202, "publish")?;
        let counts = tick(shop).await?;
        ensure!(counts["attempts"] == 2, "the setup's tick: {counts}");
        let dead = subs
            .call(
                reqwest::Method::GET,
                &format!("/{failing_id}/dead-letters"),
                None,
            )
            .await?;
        let event = dead.body["data"][0]["eventId"]
            .as_str()
            .with_context(|| format!("no dead letter: {dead:?}"))?
            .to_owned();
        let known = |tenant: &str, id: String| Known {
            tenant: tenant.into(),
            id,
        };
        Ok(Self {
            stable: vec![
                known(DEFAULT_TENANT, failing_id),
                known(DEFAULT_TENANT, working_id),
                known(other_tenant, other_id),
            ],
            created: Vec::new(),
            events: vec![event, "o-1".into()],
            sources: vec!["/applications/shop".into()],
            tenants: vec![DEFAULT_TENANT.into(), other_tenant.into()],
        })
    }
}

/// One answer that does not match the document.
struct Mismatch {
    operation: String,
    case: String,
    request: String,
    status: Option<u16>,
    body: String,
    check: String,
}

/// What a request was meant to be.
#[derive(Debug, Clone)]
enum Case {
    Valid,
    /// Breaks what the text says; the status that fits, if only one does.
    Invalid(String, Option<u16>),
}

/// A run: the document, what it has generated and sent, what did not match.
struct Run<'d> {
    doc: &'d Document,
    generator: Generator<'d>,
    world: World,
    rng: StdRng,
    http: reqwest::Client,
    base: reqwest::Url,
    sent: usize,
    invalid_sent: usize,
    /// How many answers of each status each operation got, valid and invalid requests apart.
    statuses: BTreeMap<(String, bool), BTreeMap<u16, usize>>,
    mismatches: Vec<Mismatch>,
}

e2e_test! {
    async fn the_server_keeps_to_its_openapi_document() -> anyhow::Result<()> {
        let seed = std::env::var("CONTRACT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
        let positive: usize = std::env::var("CONTRACT_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(POSITIVE);
        eprintln!("contract: seed {seed} (CONTRACT_SEED={seed} runs the same requests)");
        let started = Instant::now();
        let failing = TestServer::start(500, "down").await?;
        let working = TestServer::start(204, "").await?;
        let shop = Shop::start_with(ENV).await?;
        let world = World::set_up(&shop, &failing, &working).await?;
        let served = reqwest::get(shop.r.app.url("/subscriptions/openapi.json")).await?;
        let doc = Document::new(served.json().await?);
        let mut run = Run {
            doc: &doc,
            generator: Generator::new(&doc),
            world,
            rng: rng_from(seed),
            http: reqwest::Client::builder().timeout(Duration::from_secs(90)).build()?,
            base: reqwest::Url::parse(&shop.r.app.url("/"))?,
            sent: 0,
            invalid_sent: 0,
            statuses: BTreeMap::new(),
            mismatches: Vec::new(),
        };
        run.check_stated();
        let operations = doc.operations()?;
        let mut jobs = Vec::new();
        for index in 0..operations.len() {
            jobs.extend(std::iter::repeat_n((index, true), positive));
            let negative = positive * NEGATIVE / POSITIVE;
            jobs.extend(std::iter::repeat_n((index, false), negative));
        }
        jobs.shuffle(&mut run.rng);
        for (index, valid) in jobs {
            run.one(&operations[index], valid).await;
        }
        let elapsed = started.elapsed();
        eprintln!(
            "contract: {} requests ({} invalid) over {} operations in {:.1} s, {} mismatches",
            run.sent,
            run.invalid_sent,
            operations.len(),
            elapsed.as_secs_f64(),
            run.mismatches.len()
        );
        for ((operation, valid), counts) in &run.statuses {
            let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}×{n}")).collect();
            let kind = if *valid { "valid" } else { "invalid" };
            eprintln!("  {operation} ({kind}): {}", counts.join(" "));
        }
        let report = run.report(seed);
        let sent = run.sent;
        shop.stop().await?;
        ensure!(report.is_empty(), "{report}");
        if positive == POSITIVE {
            ensure!(sent >= 1000, "only {sent} requests were sent");
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Records a mismatch for every rule or leniency the document no longer states.
    fn check_stated(&mut self) {
        let stated = RULES
            .iter()
            .map(|rule| (rule.name, rule.stated_at, rule.says))
            .chain(LENIENCIES.iter().copied());
        for (name, at, says) in stated {
            let description = self.doc.at(at)["description"].as_str().unwrap_or_default();
            if !description.contains(says) {
                self.mismatches.push(Mismatch {
                    operation: "(document)".into(),
                    case: name.into(),
                    request: String::new(),
                    status: None,
                    body: String::new(),
                    check: format!("the description at {at} must say {says:?}"),
                });
            }
        }
    }

    /// Generates one request for `op`, sends it and checks the answer.
    async fn one(&mut self, op: &Operation, valid: bool) {
        let generated = if valid {
            self.valid_request(op).map(|request| (request, Case::Valid))
        } else {
            self.invalid_request(op)
        };
        let Some((request, case)) = generated else {
            if valid {
                self.mismatches.push(Mismatch {
                    operation: op.id.clone(),
                    case: "valid".into(),
                    request: String::new(),
                    status: None,
                    body: String::new(),
                    check: "the generator found no valid request in 200 tries".into(),
                });
            }
            return;
        };
        self.sent += 1;
        if matches!(case, Case::Invalid(..)) {
            self.invalid_sent += 1;
        }
        let summary = self.describe(op, &request);
        let (status, content_type, text) = match self.send(op, &request).await {
            Ok(answer) => answer,
            Err(err) => {
                self.mismatch(
                    op,
                    &case,
                    summary,
                    None,
                    String::new(),
                    format!("no answer: {err:#}"),
                );
                return;
            }
        };
        let valid = matches!(case, Case::Valid);
        *self
            .statuses
            .entry((op.id.clone(), valid))
            .or_default()
            .entry(status)
            .or_default() += 1;
        for problem in self.check(op, &request, &case, status, content_type.as_deref(), &text) {
            self.mismatch(
                op,
                &case,
                summary.clone(),
                Some(status),
                text.clone(),
                problem,
            );
        }
        self.learn(op, &request, &case, status, &text);
    }

    fn mismatch(
        &mut self,
        op: &Operation,
        case: &Case,
        request: String,
        status: Option<u16>,
        body: String,
        check: String,
    ) {
        self.mismatches.push(Mismatch {
            operation: op.id.clone(),
            case: match case {
                Case::Valid => "valid request".into(),
                Case::Invalid(what, _) => format!("invalid request: {what}"),
            },
            request,
            status,
            body,
            check,
        });
    }

    /// What the answer tells about the world: created and deleted subscriptions.
    fn learn(&mut self, op: &Operation, request: &Request, case: &Case, status: u16, text: &str) {
        if !matches!(case, Case::Valid) {
            return;
        }
        let tenant = request
            .tenant
            .as_deref()
            .map_or(DEFAULT_TENANT, |t| t.trim_matches([' ', '\t']))
            .to_owned();
        if op.id == "createSubscription" && status == 201 {
            let body: Value = serde_json::from_str(text).unwrap_or_default();
            if let Some(id) = body["id"].as_str() {
                self.world.created.push(Known {
                    tenant,
                    id: id.to_owned(),
                });
            }
        } else if op.method == reqwest::Method::DELETE && status == 204 {
            let id = path_value(request, "id");
            self.world
                .created
                .retain(|known| !(known.id == id && known.tenant == tenant));
        }
    }

    /// The problems of an answer.
    fn check(
        &self,
        op: &Operation,
        request: &Request,
        case: &Case,
        status: u16,
        content_type: Option<&str>,
        text: &str,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        if status >= 500 {
            problems.push("a server error".to_owned());
        }
        match op.response(status) {
            None => problems.push(format!("{status} is not a documented response")),
            Some(response) => match &response.schema {
                Some(schema) => {
                    if !content_type.is_some_and(|t| t.starts_with("application/json")) {
                        problems.push(format!("the content type is {content_type:?}, not JSON"));
                    }
                    match serde_json::from_str::<Value>(text) {
                        Err(e) => problems.push(format!("the body is not JSON: {e}")),
                        Ok(body) => {
                            let found = self.doc.problems(schema, &body);
                            if !found.is_empty() {
                                problems.push(format!(
                                    "the body does not match the documented schema: {}",
                                    found.join("; ")
                                ));
                            }
                        }
                    }
                }
                None if !text.is_empty() => {
                    problems.push("a body where the document says there is none".into());
                }
                None => {}
            },
        }
        match case {
            Case::Valid => {
                let allowed = match status {
                    200..=299 => true,
                    404 => !request.expect_found,
                    409 => true,
                    _ => false,
                };
                if !allowed {
                    problems.push(if status == 404 {
                        "a valid request about an existing subscription was answered 404".into()
                    } else {
                        format!("a valid request was refused with {status}")
                    });
                }
            }
            Case::Invalid(_, expected) => {
                if (200..300).contains(&status) {
                    problems.push(format!("an invalid request was accepted with {status}"));
                } else if let Some(expected) = expected
                    && status != *expected
                    && status < 500
                    // The subscription named may not exist, which some operations check first.
                    && (status != 404 || request.expect_found)
                {
                    problems.push(format!("expected {expected}, got {status}"));
                }
            }
        }
        problems
    }

    // ---- generating -------------------------------------------------------------------------

    /// The rules about `op`'s requests.
    fn rules(&self, op: &Operation) -> Vec<&'static Rule> {
        RULES
            .iter()
            .filter(|rule| (rule.applies)(self.doc, op))
            .collect()
    }

    /// A request valid by the document, or `None` if none was found in 200 tries.
    fn valid_request(&mut self, op: &Operation) -> Option<Request> {
        let rules = self.rules(op);
        for _ in 0..200 {
            let mut request = self.draw(op);
            for rule in &rules {
                (rule.keep)(&mut self.rng, &mut request);
            }
            if self.valid(op, &request) && rules.iter().all(|rule| (rule.holds)(self.doc, &request))
            {
                return Some(request);
            }
        }
        None
    }

    /// A request from the schemas (not yet checked).
    fn draw(&mut self, op: &Operation) -> Request {
        let rng = &mut self.rng;
        let mut request = Request {
            path: Vec::new(),
            query: Vec::new(),
            tenant: None,
            token: (op.secured || rng.random_bool(0.5)).then(|| ADMIN_TOKEN.to_owned()),
            content_type: None,
            body: Body::None,
            expect_found: false,
        };
        let names_event = op
            .parameters
            .iter()
            .any(|p| p.location == Location::Path && p.name == "eventId");
        let mut tenant_of_id = None;
        for parameter in op
            .parameters
            .iter()
            .filter(|p| p.location == Location::Path)
        {
            let value = match parameter.name.as_str() {
                "id" if self.rng.random_bool(0.75) => {
                    // Replacing or deleting the stable subscriptions would lose their records.
                    let keep_stable =
                        op.method == reqwest::Method::PUT || op.method == reqwest::Method::DELETE;
                    let stable = if keep_stable {
                        &[][..]
                    } else {
                        &self.world.stable[..]
                    };
                    let candidates: Vec<&Known> =
                        stable.iter().chain(&self.world.created).collect();
                    match candidates.choose(&mut self.rng) {
                        Some(known) => {
                            tenant_of_id = Some(known.tenant.clone());
                            request.expect_found =
                                !names_event && self.world.stable.contains(known);
                            known.id.clone()
                        }
                        None => text_of(&self.generator.value(&mut self.rng, &parameter.schema)),
                    }
                }
                "eventId" if self.rng.random_bool(0.6) => self
                    .world
                    .events
                    .choose(&mut self.rng)
                    .cloned()
                    .unwrap_or_default(),
                _ => text_of(&self.generator.value(&mut self.rng, &parameter.schema)),
            };
            request.path.push((parameter.name.clone(), value));
        }
        for parameter in op
            .parameters
            .iter()
            .filter(|p| p.location == Location::Query)
        {
            if !parameter.required && !self.rng.random_bool(0.4) {
                continue;
            }
            let known = match parameter.name.as_str() {
                "eventId" => &self.world.events,
                "source" => &self.world.sources,
                _ => &Vec::new(),
            };
            let value = match known.choose(&mut self.rng) {
                Some(known) if self.rng.random_bool(0.5) => j!(known),
                _ => self.generator.value(&mut self.rng, &parameter.schema),
            };
            if parameter.name == "eventId" {
                request.expect_found = false;
            }
            request.query.push((parameter.name.clone(), value));
        }
        if let Some(parameter) = op.parameter(Location::Header, "Tenant") {
            request.tenant = match tenant_of_id {
                Some(tenant) if tenant == DEFAULT_TENANT && self.rng.random_bool(0.5) => None,
                Some(tenant) => Some(tenant),
                None => match self.rng.random_range(0..3) {
                    0 => None,
                    1 => self.world.tenants.choose(&mut self.rng).cloned(),
                    _ => Some(text_of(
                        &self.generator.value(&mut self.rng, &parameter.schema),
                    )),
                },
            };
        }
        if let Some((required, schema)) = &op.body
            && (*required || self.rng.random_bool(0.7))
        {
            request.body = Body::Json(self.generator.value(&mut self.rng, schema));
            request.content_type = [
                "application/json",
                "application/json; charset=utf-8",
                "Application/JSON",
            ]
            .choose(&mut self.rng)
            .map(|t| (*t).to_owned());
        }
        request
    }

    /// Whether every part of `request` is valid by its schema.
    fn valid(&self, op: &Operation, request: &Request) -> bool {
        let parameter_ok = |location: Location, name: &str, value: &Value| {
            op.parameter(location, name)
                .is_some_and(|p| self.doc.valid(&p.schema, value))
        };
        request.path.iter().all(|(name, value)| {
            sendable_segment(value) && parameter_ok(Location::Path, name, &j!(value))
        }) && request
            .query
            .iter()
            .all(|(name, value)| parameter_ok(Location::Query, name, value))
            && request
                .tenant
                .as_ref()
                .is_none_or(|tenant| parameter_ok(Location::Header, "Tenant", &j!(tenant)))
            && match (&request.body, &op.body) {
                (Body::Json(body), Some((_, schema))) => self.doc.valid(schema, body),
                (Body::None, Some((required, _))) => !required,
                (Body::None, None) => true,
                _ => false,
            }
    }

    /// A request that breaks one thing the document states, or `None` if the one chosen could
    /// not be broken.
    fn invalid_request(&mut self, op: &Operation) -> Option<(Request, Case)> {
        let base = self.valid_request(op)?;
        let mut kinds: Vec<String> = Vec::new();
        if op.secured {
            kinds.push("token".into());
        }
        for parameter in &op.parameters {
            match parameter.location {
                Location::Header => kinds.push(format!("header {}", parameter.name)),
                Location::Query => kinds.push(format!("query {}", parameter.name)),
                Location::Path => kinds.push(format!("path {}", parameter.name)),
            }
        }
        if op.body.is_some() {
            for kind in ["body", "body", "body", "not JSON", "media type"] {
                kinds.push(kind.into());
            }
            for (index, _) in RULES.iter().enumerate() {
                if (RULES[index].applies)(self.doc, op) {
                    kinds.push(format!("rule {index}"));
                }
            }
        }
        for _ in 0..20 {
            let kind = kinds.choose(&mut self.rng)?.clone();
            if let Some(broken) = self.break_request(op, &base, &kind) {
                return Some(broken);
            }
        }
        None
    }

    fn break_request(
        &mut self,
        op: &Operation,
        base: &Request,
        kind: &str,
    ) -> Option<(Request, Case)> {
        let mut request = base.clone();
        let case = |what: String, status: Option<u16>| Case::Invalid(what, status);
        if kind == "token" {
            request.token = [None, Some("wrong-token".to_owned())]
                .choose(&mut self.rng)?
                .clone();
            return Some((request, case("no admin token".into(), Some(401))));
        }
        if kind == "not JSON" {
            request.body = Body::Raw("{\"name\": ".into());
            request.content_type = Some("application/json".into());
            return Some((request, case("a body that is not JSON".into(), Some(400))));
        }
        if kind == "media type" {
            request.content_type = Some("text/plain".into());
            if matches!(request.body, Body::None) {
                request.body = Body::Raw("{}".into());
            }
            return Some((request, case("the media type".into(), Some(415))));
        }
        if let Some(index) = kind.strip_prefix("rule ") {
            let rule = &RULES[index.parse::<usize>().ok()?];
            if matches!(request.body, Body::None) {
                let (_, schema) = op.body.as_ref()?;
                request.body = Body::Json(self.generator.value(&mut self.rng, schema));
                request.content_type = Some("application/json".into());
            }
            if !(rule.breaks)(&mut self.rng, &mut request) || (rule.holds)(self.doc, &request) {
                return None;
            }
            return Some((
                request,
                case(format!("breaks the rule: {}", rule.name), rule.refused_with),
            ));
        }
        if kind == "body" {
            let (_, schema) = op.body.as_ref()?;
            let current = match &request.body {
                Body::Json(body) => body.clone(),
                _ => self.generator.value(&mut self.rng, schema),
            };
            let (broken, what) = self.generator.violate(&mut self.rng, schema, &current)?;
            if self.doc.valid(schema, &broken) {
                return None;
            }
            request.body = Body::Json(broken);
            request.content_type = Some("application/json".into());
            return Some((request, case(format!("body: {what}"), None)));
        }
        let (location, name) = match kind.split_once(' ')? {
            ("header", name) => (Location::Header, name),
            ("query", name) => (Location::Query, name),
            ("path", name) => (Location::Path, name),
            _ => return None,
        };
        let parameter = op.parameter(location, name)?.clone();
        let current = match location {
            Location::Header => request.tenant.clone().map(|t| j!(t)),
            Location::Query => request
                .query
                .iter()
                .find(|(n, _)| *n == parameter.name)
                .map(|(_, v)| v.clone()),
            Location::Path => Some(j!(path_value(&request, name))),
        }
        .unwrap_or_else(|| self.generator.value(&mut self.rng, &parameter.schema));
        let text = if self.rng.random_bool(0.3) {
            break_text(&mut self.rng, &text_of(&current))
        } else {
            let (value, _) = self
                .generator
                .violate(&mut self.rng, &parameter.schema, &current)?;
            text_of(&value)
        };
        // As the server reads it: a header trimmed, a number as a number.
        let seen = match location {
            Location::Header => text.trim_matches([' ', '\t']).to_owned(),
            _ => text.clone(),
        };
        let sendable = match location {
            // Leniency: an empty query value is no value.
            Location::Query => !text.is_empty(),
            Location::Header => text.bytes().all(|b| (0x20..0x7f).contains(&b)),
            Location::Path => sendable_segment(&text),
        };
        if !sendable
            || self
                .doc
                .valid(&parameter.schema, &self.read_text(&parameter.schema, &seen))
        {
            return None;
        }
        match location {
            Location::Header => request.tenant = Some(text.clone()),
            Location::Query => {
                request.query.retain(|(n, _)| *n != parameter.name);
                request.query.push((parameter.name.clone(), j!(text)));
            }
            Location::Path => {
                request.expect_found = false;
                for (n, value) in &mut request.path {
                    if *n == parameter.name {
                        value.clone_from(&text);
                    }
                }
            }
        }
        let expected = match location {
            Location::Path if name == "id" => Some(404),
            Location::Path => None,
            _ => Some(400),
        };
        Some((request, case(format!("{kind} = {text:?}"), expected)))
    }

    /// A parameter's text as the value its schema describes: for a schema of numbers, a
    /// decimal integer (signed, leading zeros allowed, as the server reads it) or a JSON
    /// number is that number; anything else is a string.
    fn read_text(&self, schema: &str, text: &str) -> Value {
        let numeric = matches!(
            self.doc.schema(schema)["type"].as_str(),
            Some("integer" | "number")
        );
        if !numeric {
            return j!(text);
        }
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let trimmed = digits.trim_start_matches('0');
            let magnitude = if trimmed.is_empty() { "0" } else { trimmed };
            let sign = if text.starts_with('-') { "-" } else { "" };
            if let Ok(number) = serde_json::from_str::<Value>(&format!("{sign}{magnitude}")) {
                return number;
            }
        }
        match serde_json::from_str::<Value>(text) {
            Ok(number @ Value::Number(_)) => number,
            _ => j!(text),
        }
    }

    // ---- sending ----------------------------------------------------------------------------

    fn url(&self, op: &Operation, request: &Request) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.clear();
            for segment in op.path.split('/').filter(|s| !s.is_empty()) {
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => segments.push(&path_value(request, name)),
                    None => segments.push(segment),
                };
            }
        }
        if !request.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &request.query {
                pairs.append_pair(name, &text_of(value));
            }
        }
        url
    }

    async fn send(
        &self,
        op: &Operation,
        request: &Request,
    ) -> anyhow::Result<(u16, Option<String>, String)> {
        let mut builder = self.http.request(op.method.clone(), self.url(op, request));
        if let Some(token) = &request.token {
            builder = builder.bearer_auth(token);
        }
        if let Some(tenant) = &request.tenant {
            builder = builder.header("Tenant", tenant);
        }
        if let Some(content_type) = &request.content_type {
            builder = builder.header("content-type", content_type);
        }
        builder = match &request.body {
            Body::None => builder,
            Body::Json(body) => builder.body(serde_json::to_vec(body)?),
            Body::Raw(text) => builder.body(text.clone()),
        };
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((status, content_type, response.text().await?))
    }

    // ---- reporting --------------------------------------------------------------------------

    fn describe(&self, op: &Operation, request: &Request) -> String {
        let mut text = format!("{} {}", op.method, self.url(op, request));
        let _ = write!(
            text,
            "\n      tenant: {:?}, token: {}, content-type: {:?}",
            request.tenant,
            match request.token.as_deref() {
                Some(ADMIN_TOKEN) => "admin",
                Some(_) => "wrong",
                None => "none",
            },
            request.content_type
        );
        match &request.body {
            Body::None => {}
            Body::Json(body) => {
                let _ = write!(text, "\n      body: {}", cut(&body.to_string(), 1500));
            }
            Body::Raw(raw) => {
                let _ = write!(text, "\n      body (raw): {}", cut(raw, 300));
            }
        }
        text
    }

    /// Every mismatch, grouped by operation and check, the seed to replay; empty if none.
    fn report(&self, seed: u64) -> String {
        if self.mismatches.is_empty() {
            return String::new();
        }
        let mut groups: BTreeMap<(String, String), usize> = BTreeMap::new();
        for m in &self.mismatches {
            let check = m.check.split(':').next().unwrap_or_default().to_owned();
            *groups.entry((m.operation.clone(), check)).or_default() += 1;
        }
        let mut text = format!(
            "{} answers in {} requests do not match the OpenAPI document (replay: \
             CONTRACT_SEED={seed})\n",
            self.mismatches.len(),
            self.sent
        );
        for ((operation, check), count) in &groups {
            let _ = writeln!(text, "  {count:4} × {operation}: {check}");
        }
        for m in &self.mismatches {
            let _ = write!(
                text,
                "\n[{}] {}\n    {}\n    request: {}\n    answer: {} {}\n",
                m.operation,
                m.check,
                m.case,
                m.request,
                m.status.map_or("-".into(), |s| s.to_string()),
                cut(&m.body, 600)
            );
        }
        text
    }
}

/// Whether `text` reaches the server as a path segment: a URL drops tabs and line breaks,
/// and `.` and `..` are not segments it keeps.
fn sendable_segment(text: &str) -> bool {
    !text.is_empty() && text != "." && text != ".." && !text.contains(['\t', '\n', '\r'])
}

/// The value of path parameter `name`.
fn path_value(request: &Request, name: &str) -> String {
    request
        .path
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A parameter value as text: a string as itself, anything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `text`, cut after `max` characters.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text.to_owned(),
    }
}
