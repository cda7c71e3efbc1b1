//! Applications: their GraphQL type and inputs, reads (one, a filtered page) and labels.
//! Creating, updating and deleting them is in [`crate::lifecycle`].

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use eventplane_core::index::{all_members, update_existing};
use eventplane_core::keys::{self, APPLICATIONS};
use eventplane_core::{AppId, Error, KvStoreExt, PrefixedId};

use eventplane_ingest::mqtt::TopicPattern;

use crate::context::RequestScope;
use crate::errors::ApiResult;
use crate::event_apis::{self, EventApiDefinitionInput, EventApiDefinitionPage};
use crate::model::{ApiRecord, AppRecord, ApplicationStatus, WebhookRecord};
use crate::pagination::{self, PageInfo};
use crate::scalars::{Labels, PageCursor};
use crate::validate;
use crate::webhooks::{self, ApplicationWebhookInput};

/// An application: a system that emits events, registered with its event APIs.
#[Object(name = "Application")]
impl AppRecord {
    /// The id (`app_…`).
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The name: a DNS label, unique in the tenant.
    async fn name(&self) -> &str {
        &self.name
    }

    /// The description.
    async fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The labels; with `key`, only that label.
    async fn labels(&self, key: Option<String>) -> Labels {
        match key {
            None => self.labels.clone(),
            Some(key) => Labels(
                self.labels
                    .0
                    .get_key_value(&key)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .into_iter()
                    .collect(),
            ),
        }
    }

    /// The status.
    async fn status(&self) -> &ApplicationStatus {
        &self.status
    }

    /// The webhooks, oldest first.
    async fn webhooks(&self, ctx: &Context<'_>) -> ApiResult<Vec<WebhookRecord>> {
        Ok(webhooks::list(RequestScope::of(ctx)?, &self.id)?)
    }

    /// The event API definitions; `group` keeps only those of that group.
    #[graphql(name = "eventAPIs")]
    async fn event_apis(
        &self,
        ctx: &Context<'_>,
        group: Option<String>,
        #[graphql(default_with = "Some(pagination::DEFAULT_PAGE_SIZE)")] first: Option<i32>,
        after: Option<PageCursor>,
    ) -> ApiResult<EventApiDefinitionPage> {
        Ok(event_apis::page(
            RequestScope::of(ctx)?,
            &self.id,
            group,
            first,
            after,
        )?)
    }

    /// One event API definition of this application.
    #[graphql(name = "eventAPI")]
    async fn event_api(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<ApiRecord>> {
        let scope = RequestScope::of(ctx)?;
        let id = event_apis::parse_id(&id)?;
        let api = event_apis::load(scope, &id)?;
        if api.app_id != self.id {
            return Err(Error::not_found(format!("there is no event API {id}")).into());
        }
        Ok(Some(api))
    }

    /// Where the application publishes its events.
    async fn eventing_configuration(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<ApplicationEventingConfiguration> {
        let scope = RequestScope::of(ctx)?;
        let config = &scope.config;
        // Without the query: Spin's address names eventplane's own `client_id` there, and a
        // broker drops a connection when another client connects with the same id.
        let broker_url = config.mqtt_address.trim();
        let broker_url = broker_url
            .split_once('?')
            .map_or(broker_url, |(url, _)| url);
        let mqtt = if broker_url.is_empty() {
            None
        } else {
            Some(ApplicationMqttConfiguration {
                broker_url: broker_url.to_owned(),
                topic: TopicPattern::parse(&config.mqtt_topic)?.topic_of(&self.name),
            })
        };
        Ok(ApplicationEventingConfiguration {
            default_url: config.default_events_url(&self.name),
            mqtt,
        })
    }
}

/// Where an application publishes its events.
#[derive(SimpleObject)]
pub(crate) struct ApplicationEventingConfiguration {
    /// The events URL: `<events_base_url>/events/<application name>/v1/events`.
    #[graphql(name = "defaultURL")]
    default_url: String,
    /// Where the application may publish CloudEvents over MQTT instead (structured mode, the
    /// access token in each event's extension attribute `accesstoken`); null when the
    /// deployment has no MQTT broker.
    mqtt: Option<ApplicationMqttConfiguration>,
}

/// Where an application publishes CloudEvents over MQTT.
#[derive(SimpleObject)]
pub(crate) struct ApplicationMqttConfiguration {
    /// The broker: `mqtt_address` without its query (eventplane's own `client_id`).
    #[graphql(name = "brokerURL")]
    broker_url: String,
    /// The topic to publish to: `mqtt_topic` with its `+` replaced by the application's name.
    /// Refused messages are noticed on `<topic>/rejected`.
    topic: String,
}

/// A page of applications.
#[derive(SimpleObject)]
pub(crate) struct ApplicationPage {
    /// The applications on this page.
    pub(crate) data: Vec<AppRecord>,
    /// Where the page is in the list.
    pub(crate) page_info: PageInfo,
    /// How many applications match.
    pub(crate) total_count: i32,
}

/// One label of an application.
#[derive(SimpleObject)]
pub(crate) struct Label {
    /// The key.
    key: String,
    /// Its values.
    values: Vec<String>,
}

/// An application.
#[derive(InputObject)]
pub(crate) struct ApplicationInput {
    /// A DNS label (lowercase letters, digits and `-`, at most 63, starting and ending with a
    /// letter or digit), unique in the tenant.
    pub name: String,
    /// The description.
    pub description: MaybeUndefined<String>,
    /// The labels.
    pub labels: MaybeUndefined<Labels>,
    /// The webhooks.
    pub webhooks: MaybeUndefined<Vec<ApplicationWebhookInput>>,
    /// The event API definitions.
    #[graphql(name = "eventAPIs")]
    pub event_apis: MaybeUndefined<Vec<EventApiDefinitionInput>>,
}

/// How the values of a label filter are combined.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterOperator {
    /// The label has all the values.
    All,
    /// The label has at least one of the values.
    Any,
}

/// Keeps the objects whose label `label` has the `values`, as `operator` says. With no values,
/// having the label is enough.
#[derive(InputObject)]
pub(crate) struct LabelFilter {
    /// The label key.
    label: String,
    /// The values to look for.
    values: Vec<String>,
    /// How the values are combined.
    #[graphql(default_with = "Some(FilterOperator::All)")]
    operator: Option<FilterOperator>,
}

impl LabelFilter {
    fn matches(&self, labels: &Labels) -> bool {
        let Some(values) = labels.0.get(&self.label) else {
            return false;
        };
        let has = |value: &String| values.contains(value);
        match self.operator.unwrap_or(FilterOperator::All) {
            FilterOperator::All => self.values.iter().all(has),
            FilterOperator::Any => self.values.is_empty() || self.values.iter().any(has),
        }
    }
}

/// The "no such application" error.
pub(crate) fn not_found(id: &impl std::fmt::Display) -> Error {
    Error::not_found(format!("there is no application {id}"))
}

/// Parses a GraphQL id into an application id.
pub(crate) fn parse_id(id: &ID) -> Result<AppId, Error> {
    Ok(id.parse::<AppId>()?)
}

/// The application `id` of the scope's tenant.
pub(crate) fn load(scope: &RequestScope, id: &AppId) -> Result<AppRecord, Error> {
    scope
        .store()
        .get_json(&keys::record_for(&scope.tenant, id))?
        .ok_or_else(|| not_found(id))
}

/// A page of the tenant's applications that match every filter.
pub(crate) fn page(
    scope: &RequestScope,
    filter: Option<Vec<LabelFilter>>,
    first: Option<i32>,
    after: Option<PageCursor>,
) -> Result<ApplicationPage, Error> {
    let filters = filter.unwrap_or_default();
    for (i, filter) in filters.iter().enumerate() {
        if filter.label.trim().is_empty() {
            return Err(Error::invalid(
                format!("filter[{i}].label"),
                "must not be empty",
            ));
        }
    }
    let first = pagination::page_size(first)?;
    let after = pagination::decode_cursor(after)?;
    let store = scope.store();
    let members = all_members(store, &keys::index(&scope.tenant, APPLICATIONS))?;
    let page = pagination::page(
        members,
        after.as_deref(),
        first,
        !filters.is_empty(),
        |member| store.get_json::<AppRecord>(&keys::record(&scope.tenant, AppId::KIND, member)),
        |app| filters.iter().all(|filter| filter.matches(&app.labels)),
    )?;
    Ok(ApplicationPage {
        data: page.items,
        page_info: page.page_info,
        total_count: page.total_count,
    })
}

/// Adds `values` to label `key` of application `id` (creating the label).
pub(crate) fn add_label(
    scope: &RequestScope,
    id: &AppId,
    key: String,
    values: Vec<String>,
) -> Result<Label, Error> {
    if key.trim().is_empty() {
        return Err(Error::invalid("key", "must not be empty"));
    }
    let values = validate::label("values", &key, values)?;
    let now = scope.now();
    let app = update_existing(
        scope.store(),
        &keys::record_for(&scope.tenant, id),
        |mut app: AppRecord| {
            let label = app.labels.0.entry(key.clone()).or_default();
            label.extend(values.iter().cloned());
            label.sort();
            label.dedup();
            app.updated_at = now;
            Ok(app)
        },
    )?
    .ok_or_else(|| not_found(id))?;
    let values = app.labels.0.get(&key).cloned().unwrap_or_default();
    Ok(Label { key, values })
}

/// Removes `values` from label `key` of application `id`; with no values, or none left, the
/// label goes. Returns what is left of the label, if anything.
pub(crate) fn delete_label(
    scope: &RequestScope,
    id: &AppId,
    key: String,
    values: Vec<String>,
) -> Result<Option<Label>, Error> {
    let now = scope.now();
    let app = update_existing(
        scope.store(),
        &keys::record_for(&scope.tenant, id),
        |mut app: AppRecord| {
            let Some(label) = app.labels.0.get_mut(&key) else {
                return Err(Error::not_found(format!(
                    "application {id} has no label {key:?}"
                )));
            };
            label.retain(|value| !values.contains(value));
            if values.is_empty() || label.is_empty() {
                app.labels.0.remove(&key);
            }
            app.updated_at = now;
            Ok(app)
        },
    )?
    .ok_or_else(|| not_found(id))?;
    Ok(app.labels.0.get(&key).map(|values| Label {
        key: key.clone(),
        values: values.clone(),
    }))
}
