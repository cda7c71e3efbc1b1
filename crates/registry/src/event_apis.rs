//! Event API definitions: their GraphQL types and inputs, validation of an input into a record
//! (parsing an inline spec into the event catalog), and add / update / delete / page.
//!
//! An API's record holds its spec document and its catalog, so a page of APIs with their specs
//! and events is one read per API.

use async_graphql::{ID, InputObject, Object, SimpleObject};
use eventplane_core::index::{add_to_existing, all_members, remove_from_existing, update_existing};
use eventplane_core::keys::{self, APPLICATION_EVENT_APIS};
use eventplane_core::{ApiId, AppId, Error, KvStoreExt, PrefixedId};
use eventplane_outbound::{FetchJob, FetchMode as OutboundFetchMode, FetchOutcome, FetchedFormat};
use eventplane_spec as spec;

use crate::applications;
use crate::auth::{self, Auth, AuthInput};
use crate::context::RequestScope;
use crate::model::{
    ApiRecord, CatalogEvent, EventApiSpecType, ExternalSubscription, FetchMode, FetchRequestRecord,
    FetchRequestStatus, FetchRequestStatusCondition, SpecFormat, SpecRecord, Version,
};
use crate::outbox::{self, Action, Change};
use crate::pagination::{self, PageInfo};
use crate::scalars::{Clob, PageCursor, SubscriptionAttributes};
use crate::time::Timestamp;
use crate::validate::{self, MAX_DESCRIPTION, MAX_SHORT_TEXT};

/// The status message of a fetch request given together with `data`: the data is used as
/// given, and the URL is fetched only when asked.
const NOT_FETCHED_DATA_GIVEN: &str =
    "not fetched: the spec was given as data; refetchEventAPISpec fetches it from the URL";

// ---- output ---------------------------------------------------------------------------------

/// One event type of an API's catalog, derived from its spec: every message a channel carries.
#[Object(name = "EventType")]
impl CatalogEvent {
    /// The event type's name. A channel with one message: the channel's name (AsyncAPI 2.x) or
    /// address, else its key (3.x). A channel with several messages, or sharing its address with
    /// another: the message's CloudEvents type (a `ce-type` header's `const`), else its name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The key under `channels` of the channel that carries the message (2.x: its name; 3.x: its
    /// id).
    async fn channel(&self) -> Option<&str> {
        self.0.channel.as_deref()
    }

    /// The message's name: its key in the channel's `messages` (3.x), else its `messageId`,
    /// else its `name` (2.x).
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// The message's `contentType`, else the spec's `defaultContentType`.
    async fn content_type(&self) -> Option<&str> {
        self.0.content_type.as_deref()
    }

    /// The payload's `schemaFormat`, when the spec states one.
    async fn schema_format(&self) -> Option<&str> {
        self.0.schema_format.as_deref()
    }

    /// Whether the spec marks the message (or its 2.x operation) `deprecated`.
    async fn deprecated(&self) -> bool {
        self.0.deprecated
    }

    /// The trailing `.v<N>` of the name (`v1`) when present, else the spec's `info.version`.
    async fn version(&self) -> &str {
        &self.0.version
    }

    /// The message's summary.
    async fn summary(&self) -> Option<&str> {
        self.0.summary.as_deref()
    }

    /// The message's payload schema, as JSON text, with local `$ref`s resolved.
    async fn payload_schema(&self) -> Option<Clob> {
        self.0
            .payload_schema
            .as_ref()
            .map(|schema| Clob(schema.to_string()))
    }
}

/// A page of event API definitions.
#[derive(SimpleObject)]
#[graphql(name = "EventAPIDefinitionPage")]
pub(crate) struct EventApiDefinitionPage {
    /// The definitions on this page.
    pub(crate) data: Vec<ApiRecord>,
    /// Where the page is in the list.
    pub(crate) page_info: PageInfo,
    /// How many definitions the whole list has.
    pub(crate) total_count: i32,
}

/// An event API definition: the spec of events an application emits, the event catalog derived
/// from it, and where else the events can be consumed (external subscriptions).
#[Object(name = "EventAPIDefinition")]
impl ApiRecord {
    /// The id (`api_…`).
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The application the API belongs to.
    #[graphql(name = "applicationID")]
    async fn application_id(&self) -> ID {
        ID(self.app_id.to_string())
    }

    /// The name.
    async fn name(&self) -> &str {
        &self.name
    }

    /// The description.
    async fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Group allows you to find the same API but in different version.
    async fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The spec document and how it is fetched.
    async fn spec(&self) -> &SpecRecord {
        &self.spec
    }

    /// How subscribers authenticate to consume the events (secrets masked).
    async fn auth(&self) -> Option<&Auth> {
        self.auth.as_ref()
    }

    /// Subscriptions on external event buses where the application publishes these events,
    /// each with the state of its consumption.
    async fn external_subscriptions(&self) -> Vec<crate::bus::ExternalSubscriptionView<'_>> {
        crate::bus::views(self)
    }

    /// The version.
    async fn version(&self) -> Option<&Version> {
        self.version.as_ref()
    }

    /// The event catalog derived from the spec; empty while no spec document is known (e.g.
    /// one only to be fetched).
    async fn events(&self) -> &Vec<CatalogEvent> {
        &self.catalog
    }
}

/// The spec of an event API.
#[Object(name = "EventAPISpec")]
impl SpecRecord {
    /// The document, as given or (later) fetched.
    async fn data(&self) -> Option<Clob> {
        self.data.clone().map(Clob)
    }

    /// The kind of spec.
    #[graphql(name = "type")]
    async fn spec_type(&self) -> EventApiSpecType {
        self.spec_type
    }

    /// The document's format, as given or detected.
    async fn format(&self) -> Option<SpecFormat> {
        self.format
    }

    /// Where the document is fetched from, if it is.
    async fn fetch_request(&self) -> Option<&FetchRequestRecord> {
        self.fetch_request.as_ref()
    }
}

// ---- input ----------------------------------------------------------------------------------

/// A request to fetch a spec from a URL.
#[derive(InputObject)]
pub(crate) struct FetchRequestInput {
    /// Where the spec is (http or https).
    url: String,
    /// How to authenticate to `url`.
    auth: Option<AuthInput>,
    /// How to read `url`.
    #[graphql(default_with = "Some(FetchMode::Single)")]
    mode: Option<FetchMode>,
    /// Which documents to take from a package or an index.
    filter: Option<String>,
}

/// A version of an API.
#[derive(InputObject)]
pub(crate) struct VersionInput {
    /// For example `4.6`.
    value: String,
    /// Whether this version is deprecated.
    #[graphql(default_with = "Some(false)")]
    deprecated: Option<bool>,
    /// Since which version it is deprecated.
    deprecated_since: Option<String>,
    /// If true, it will be removed in the next version.
    #[graphql(default_with = "Some(false)")]
    for_removal: Option<bool>,
}

/// The spec of an event API: give `data`, a `fetchRequest`, or both.
#[derive(InputObject)]
#[graphql(name = "EventAPISpecInput")]
pub(crate) struct EventApiSpecInput {
    /// The document: AsyncAPI 2.0 to 2.6 or 3.x, JSON or YAML, at most `spec_max_bytes`. It is
    /// validated (`INVALID_SPEC` with the path of the problem) and its event catalog derived.
    data: Option<Clob>,
    /// The kind of spec.
    event_spec_type: EventApiSpecType,
    /// The document's format; detected when not given.
    format: Option<SpecFormat>,
    /// Where to fetch the document from. Without `data`, the document is fetched before the
    /// mutation returns: on success `data`, `format` and the event catalog come from it and
    /// the status is `SUCCEEDED`; on failure the API is stored anyway, with status `FAILED`
    /// and a message saying why. With `data`, the data is used and the URL is fetched only by
    /// `refetchEventAPISpec`.
    fetch_request: Option<FetchRequestInput>,
}

/// A subscription on an external event bus.
#[derive(InputObject)]
#[graphql(name = "EventAPISubscriptionInput")]
pub(crate) struct EventApiSubscriptionInput {
    /// The subscription's URL (http or https).
    url: String,
    /// How to authenticate to the bus.
    auth: Option<AuthInput>,
    /// The topic the application publishes to.
    topic: String,
    /// Bus-specific attributes.
    attributes: Option<SubscriptionAttributes>,
}

/// An event API definition.
#[derive(InputObject)]
#[graphql(name = "EventAPIDefinitionInput")]
pub(crate) struct EventApiDefinitionInput {
    /// The name.
    name: String,
    /// The description.
    description: Option<String>,
    /// The spec.
    spec: EventApiSpecInput,
    /// Group allows you to find the same API but in different version.
    group: Option<String>,
    /// How subscribers authenticate to consume the events.
    auth: Option<AuthInput>,
    /// Subscriptions on external event buses where the application publishes these events.
    external_subscriptions: Option<Vec<EventApiSubscriptionInput>>,
    /// The version.
    version: Option<VersionInput>,
}

/// A validated input: everything of a record but its id, owner and times.
#[derive(Clone)]
pub(crate) struct PreparedApi {
    name: String,
    description: Option<String>,
    group: Option<String>,
    spec: SpecRecord,
    auth: Option<Auth>,
    external_subscriptions: Vec<ExternalSubscription>,
    bus: Vec<eventplane_bus::BusSubscription>,
    version: Option<Version>,
    catalog: Vec<CatalogEvent>,
}

impl PreparedApi {
    /// Fetches the document when the spec has a fetch request and no data.
    pub(crate) fn fetch_if_needed(&mut self, scope: &RequestScope) {
        if self.spec.data.is_some() {
            return;
        }
        if let Some(outcome) = fetch_spec(scope, &self.spec) {
            apply_fetch(
                &mut self.spec,
                &mut self.catalog,
                outcome,
                scope.config.spec_max_bytes,
                scope.now(),
            );
        }
    }

    /// The record of API `id` of application `app_id`, created at `created_at`.
    pub(crate) fn into_record(
        self,
        id: ApiId,
        app_id: AppId,
        created_at: Timestamp,
        now: Timestamp,
    ) -> ApiRecord {
        ApiRecord {
            id,
            app_id,
            name: self.name,
            description: self.description,
            group: self.group,
            spec: self.spec,
            auth: self.auth,
            external_subscriptions: self.external_subscriptions,
            bus: self.bus,
            version: self.version,
            catalog: self.catalog,
            created_at,
            updated_at: now,
        }
    }
}

/// Validates `input` (named `field` in errors), parsing its inline spec. Writes nothing.
pub(crate) fn prepare(
    input: EventApiDefinitionInput,
    field: &str,
    scope: &RequestScope,
) -> Result<PreparedApi, Error> {
    let (spec, catalog) = prepare_spec(input.spec, &format!("{field}.spec"), scope)?;
    let external_subscriptions = input
        .external_subscriptions
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, sub)| {
            let field = format!("{field}.externalSubscriptions[{i}]");
            let subscription = ExternalSubscription {
                url: validate::http_url(&format!("{field}.url"), sub.url)?,
                auth: auth::optional_auth(sub.auth, &format!("{field}.auth"))?,
                topic: validate::required_text(
                    &format!("{field}.topic"),
                    sub.topic,
                    MAX_SHORT_TEXT,
                )?,
                attributes: sub.attributes,
            };
            let validated = crate::bus::validate(&subscription, &field)?;
            Ok((subscription, validated))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let (external_subscriptions, bus): (Vec<_>, Vec<_>) =
        external_subscriptions.into_iter().unzip();
    let version = match input.version {
        None => None,
        Some(version) => Some(Version {
            value: validate::required_text(
                &format!("{field}.version.value"),
                version.value,
                MAX_SHORT_TEXT,
            )?,
            deprecated: version.deprecated,
            deprecated_since: validate::optional_text(
                &format!("{field}.version.deprecatedSince"),
                version.deprecated_since,
                MAX_SHORT_TEXT,
            )?,
            for_removal: version.for_removal,
        }),
    };
    Ok(PreparedApi {
        name: validate::required_text(&format!("{field}.name"), input.name, MAX_SHORT_TEXT)?,
        description: validate::optional_text(
            &format!("{field}.description"),
            input.description,
            MAX_DESCRIPTION,
        )?,
        group: validate::optional_text(&format!("{field}.group"), input.group, MAX_SHORT_TEXT)?,
        spec,
        auth: auth::optional_auth(input.auth, &format!("{field}.auth"))?,
        external_subscriptions,
        bus,
        version,
        catalog,
    })
}

fn prepare_spec(
    input: EventApiSpecInput,
    field: &str,
    scope: &RequestScope,
) -> Result<(SpecRecord, Vec<CatalogEvent>), Error> {
    let fetch_request = match input.fetch_request {
        None => None,
        Some(fetch) => Some(FetchRequestRecord {
            url: validate::http_url(&format!("{field}.fetchRequest.url"), fetch.url)?,
            auth: auth::optional_auth(fetch.auth, &format!("{field}.fetchRequest.auth"))?,
            mode: fetch.mode.unwrap_or(FetchMode::Single),
            filter: validate::optional_text(
                &format!("{field}.fetchRequest.filter"),
                fetch.filter,
                MAX_SHORT_TEXT,
            )?,
            status: FetchRequestStatus {
                condition: FetchRequestStatusCondition::Initial,
                message: Some(NOT_FETCHED_DATA_GIVEN.to_owned()),
                timestamp: scope.now(),
            },
        }),
    };
    let Some(Clob(data)) = input.data else {
        if fetch_request.is_none() {
            return Err(Error::invalid(
                field,
                "give `data`, a `fetchRequest`, or both",
            ));
        }
        let spec = SpecRecord {
            data: None,
            spec_type: input.event_spec_type,
            format: input.format,
            fetch_request,
        };
        return Ok((spec, Vec::new()));
    };
    let limit = scope.config.spec_max_bytes;
    if data.len() > limit {
        return Err(Error::invalid(
            format!("{field}.data"),
            format!(
                "is {} bytes, more than the limit spec_max_bytes = {limit} bytes",
                data.len()
            ),
        ));
    }
    let (format, catalog) = derive_catalog(&data, input.format)
        .map_err(|err| Error::invalid_spec(err.path, format!("{field}.data: {}", err.message)))?;
    let spec = SpecRecord {
        data: Some(data),
        spec_type: input.event_spec_type,
        format: Some(format),
        fetch_request,
    };
    Ok((spec, catalog))
}

/// Parses a spec document: its format and event catalog.
fn derive_catalog(
    data: &str,
    format: Option<SpecFormat>,
) -> Result<(SpecFormat, Vec<CatalogEvent>), spec::SpecError> {
    let parsed = spec::parse(data, format.map(to_spec_format))?;
    let format = match parsed.format {
        spec::SpecFormat::Json => SpecFormat::Json,
        spec::SpecFormat::Yaml => SpecFormat::Yaml,
    };
    let catalog = parsed.events.into_iter().map(CatalogEvent).collect();
    Ok((format, catalog))
}

// ---- fetching -------------------------------------------------------------------------------

/// The job that fetches `request`, declared format `format`.
fn fetch_job(request: &FetchRequestRecord, format: Option<SpecFormat>) -> FetchJob {
    FetchJob {
        url: request.url.clone(),
        auth: request.auth.as_ref().map(Auth::to_request_auth),
        mode: match request.mode {
            FetchMode::Single => OutboundFetchMode::Single,
            FetchMode::Package => OutboundFetchMode::Package,
            FetchMode::Index => OutboundFetchMode::Index,
        },
        format: format.map(|format| match format {
            SpecFormat::Json => FetchedFormat::Json,
            SpecFormat::Yaml => FetchedFormat::Yaml,
        }),
    }
}

/// Fetches the document of `spec`'s fetch request (if it has one); the outcome to apply.
fn fetch_spec(scope: &RequestScope, spec: &SpecRecord) -> Option<FetchOutcome> {
    let request = spec.fetch_request.as_ref()?;
    Some(
        scope
            .fetcher
            .fetch(&scope.tenant, &fetch_job(request, spec.format)),
    )
}

/// Applies a fetch outcome to an API record at `now`. A success replaces the document, its
/// format and the catalog; a failure only updates the status, so a good spec is never lost.
/// Whether the document changed.
fn apply_fetch(
    spec: &mut SpecRecord,
    catalog: &mut Vec<CatalogEvent>,
    outcome: FetchOutcome,
    spec_max_bytes: usize,
    now: Timestamp,
) -> bool {
    let Some(request) = spec.fetch_request.as_mut() else {
        return false;
    };
    let parsed = match outcome {
        FetchOutcome::Succeeded { data, .. } if data.len() > spec_max_bytes => Err(format!(
            "the fetched document is {} bytes, more than spec_max_bytes = {spec_max_bytes} bytes",
            data.len()
        )),
        FetchOutcome::Succeeded { data, format } => {
            let declared = match format {
                FetchedFormat::Json => SpecFormat::Json,
                FetchedFormat::Yaml => SpecFormat::Yaml,
            };
            derive_catalog(&data, Some(declared))
                .map(|(format, events)| (data, format, events))
                .map_err(|e| e.to_string())
        }
        FetchOutcome::Failed { message } => Err(message),
    };
    match parsed {
        Ok((data, format, events)) => {
            let changed = spec.data.as_deref() != Some(data.as_str());
            request.status = FetchRequestStatus {
                condition: FetchRequestStatusCondition::Succeeded,
                message: None,
                timestamp: now,
            };
            spec.data = Some(data);
            spec.format = Some(format);
            *catalog = events;
            changed
        }
        Err(message) => {
            request.status = FetchRequestStatus {
                condition: FetchRequestStatusCondition::Failed,
                message: Some(message),
                timestamp: now,
            };
            false
        }
    }
}

fn to_spec_format(format: SpecFormat) -> spec::SpecFormat {
    match format {
        SpecFormat::Json => spec::SpecFormat::Json,
        SpecFormat::Yaml => spec::SpecFormat::Yaml,
    }
}

// ---- operations -----------------------------------------------------------------------------

fn not_found(id: &impl std::fmt::Display) -> Error {
    Error::not_found(format!("there is no event API {id}"))
}

/// The index of the APIs of application `app_id`.
pub(crate) fn index_of(scope: &RequestScope, app_id: &AppId) -> eventplane_core::Key {
    keys::owned_index(&scope.tenant, APPLICATION_EVENT_APIS, app_id.as_str())
}

/// Parses a GraphQL id into an API id.
pub(crate) fn parse_id(id: &ID) -> Result<ApiId, Error> {
    Ok(id.parse::<ApiId>()?)
}

/// The API `id` of the scope's tenant.
pub(crate) fn load(scope: &RequestScope, id: &ApiId) -> Result<ApiRecord, Error> {
    scope
        .store()
        .get_json(&keys::record_for(&scope.tenant, id))?
        .ok_or_else(|| not_found(id))
}

/// Adds an API to the application `app_id`.
pub(crate) fn add(
    scope: &RequestScope,
    app_id: &AppId,
    input: EventApiDefinitionInput,
) -> Result<ApiRecord, Error> {
    let mut prepared = prepare(input, "in", scope)?;
    let app = applications::load(scope, app_id)?;
    prepared.fetch_if_needed(scope);
    let now = scope.now();
    let record = prepared.into_record(ApiId::new(), app.id.clone(), now, now);
    let store = scope.store();
    let key = keys::record_for(&scope.tenant, &record.id);
    store.set_json(&key, &record)?;
    let index = index_of(scope, &app.id);
    let listed = add_to_existing(store, &index, record.id.as_str())?;
    // The application may have been deleted since we loaded it: its index is then gone (or
    // about to be); undo rather than leave an orphan.
    if !listed || !store.exists(&keys::record_for(&scope.tenant, &app.id))? {
        store.delete(&key)?;
        remove_from_existing(store, &index, record.id.as_str())?;
        return Err(applications::not_found(app_id));
    }
    crate::bus::registered(scope, &record, &[])?;
    outbox::notify(scope, &app, &[Change::event_api(&record.id, Action::Added)]);
    Ok(record)
}

/// Replaces the API `id` with `input`, keeping its id, application and creation time.
pub(crate) fn update(
    scope: &RequestScope,
    id: &ApiId,
    input: EventApiDefinitionInput,
) -> Result<ApiRecord, Error> {
    let mut prepared = prepare(input, "in", scope)?;
    let key = keys::record_for(&scope.tenant, id);
    if !scope.store().exists(&key)? {
        return Err(not_found(id));
    }
    prepared.fetch_if_needed(scope);
    let now = scope.now();
    let mut before = Vec::new();
    let updated = update_existing(scope.store(), &key, |current: ApiRecord| {
        before.clone_from(&current.bus);
        Ok(prepared
            .clone()
            .into_record(current.id, current.app_id, current.created_at, now))
    })?
    .ok_or_else(|| not_found(id))?;
    crate::bus::registered(scope, &updated, &before)?;
    if let Ok(app) = applications::load(scope, &updated.app_id) {
        outbox::notify(scope, &app, &[Change::event_api(id, Action::Updated)]);
    }
    Ok(updated)
}

/// Fetches the spec of API `id` again from its fetch request. A success replaces the document
/// and the catalog (and notifies the application's webhooks if the document changed); a
/// failure only updates the status. Returns the spec as stored.
pub(crate) fn refetch(scope: &RequestScope, id: &ApiId) -> Result<SpecRecord, Error> {
    let current = load(scope, id)?;
    if current.spec.fetch_request.is_none() {
        return Err(Error::invalid(
            "eventID",
            format!("the event API {id} has no fetchRequest: there is nothing to refetch"),
        ));
    }
    let Some(outcome) = fetch_spec(scope, &current.spec) else {
        return Ok(current.spec);
    };
    let now = scope.now();
    let key = keys::record_for(&scope.tenant, id);
    let mut changed = false;
    let updated = update_existing(scope.store(), &key, |mut record: ApiRecord| {
        changed = apply_fetch(
            &mut record.spec,
            &mut record.catalog,
            outcome.clone(),
            scope.config.spec_max_bytes,
            now,
        );
        if changed {
            record.updated_at = now;
        }
        Ok(record)
    })?
    .ok_or_else(|| not_found(id))?;
    if changed && let Ok(app) = applications::load(scope, &updated.app_id) {
        outbox::notify(scope, &app, &[Change::event_api(id, Action::Updated)]);
    }
    Ok(updated.spec)
}

/// Deletes the API `id`; returns what it was.
pub(crate) fn delete(scope: &RequestScope, id: &ApiId) -> Result<ApiRecord, Error> {
    let record = load(scope, id)?;
    let store = scope.store();
    store.delete(&keys::record_for(&scope.tenant, id))?;
    remove_from_existing(store, &index_of(scope, &record.app_id), id.as_str())?;
    crate::bus::forget_all(scope, &record)?;
    if let Ok(app) = applications::load(scope, &record.app_id) {
        outbox::notify(scope, &app, &[Change::event_api(id, Action::Deleted)]);
    }
    Ok(record)
}

/// Deletes every API of application `app_id` and its index.
pub(crate) fn delete_all_of(scope: &RequestScope, app_id: &AppId) -> Result<Vec<ApiId>, Error> {
    let store = scope.store();
    let index = index_of(scope, app_id);
    let mut deleted = Vec::new();
    for member in all_members(store, &index)? {
        let key = keys::record(&scope.tenant, ApiId::KIND, &member);
        if let Some(record) = store.get_json::<ApiRecord>(&key)? {
            crate::bus::forget_all(scope, &record)?;
        }
        store.delete(&key)?;
        if let Ok(id) = member.parse() {
            deleted.push(id);
        }
    }
    store.delete(&index)?;
    Ok(deleted)
}

/// A page of the APIs of application `app_id`, optionally only those of `group`.
pub(crate) fn page(
    scope: &RequestScope,
    app_id: &AppId,
    group: Option<String>,
    first: Option<i32>,
    after: Option<PageCursor>,
) -> Result<EventApiDefinitionPage, Error> {
    let first = pagination::page_size(first)?;
    let after = pagination::decode_cursor(after)?;
    let store = scope.store();
    let members = all_members(store, &index_of(scope, app_id))?;
    let page = pagination::page(
        members,
        after.as_deref(),
        first,
        group.is_some(),
        |member| store.get_json::<ApiRecord>(&keys::record(&scope.tenant, ApiId::KIND, member)),
        |api| group.is_none() || api.group == group,
    )?;
    Ok(EventApiDefinitionPage {
        data: page.items,
        page_info: page.page_info,
        total_count: page.total_count,
    })
}
