//! The root types and the one [`schema()`] builder. Resolvers only parse ids, find the request's
//! [`RequestScope`] and call the domain functions.

use async_graphql::{Context, EmptySubscription, ID, Object, Schema};

use crate::applications::{self, ApplicationInput, ApplicationPage, Label, LabelFilter};
use crate::bus::{self, RejectedMessagePage};
use crate::context::RequestScope;
use crate::credentials::{self, ClientCredentials};
use crate::errors::{ApiResult, ErrorCodes};
use crate::event_apis::{self, EventApiDefinitionInput};
use crate::lifecycle;
use crate::model::{ApiRecord, AppRecord, SpecRecord, WebhookRecord};
use crate::pagination::{self, Pageable};
use crate::scalars::PageCursor;
use crate::webhooks::{self, ApplicationWebhookInput};

/// The registry's GraphQL schema.
pub type RegistrySchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema (introspection on). Attach a [`RequestScope`] to every request.
pub fn schema() -> RegistrySchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .register_output_type::<Pageable>()
        .extension(ErrorCodes)
        .finish()
}

/// The queries.
pub struct Query;

/// Reads of applications and event APIs.
#[Object]
impl Query {
    /// The tenant's applications that match every filter, in creation order.
    async fn applications(
        &self,
        ctx: &Context<'_>,
        filter: Option<Vec<LabelFilter>>,
        #[graphql(default_with = "Some(pagination::DEFAULT_PAGE_SIZE)")] first: Option<i32>,
        after: Option<PageCursor>,
    ) -> ApiResult<ApplicationPage> {
        Ok(applications::page(
            RequestScope::of(ctx)?,
            filter,
            first,
            after,
        )?)
    }

    /// One application.
    async fn application(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<AppRecord>> {
        let scope = RequestScope::of(ctx)?;
        Ok(Some(applications::load(
            scope,
            &applications::parse_id(&id)?,
        )?))
    }

    /// One event API definition.
    #[graphql(name = "eventAPI")]
    async fn event_api(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<ApiRecord>> {
        let scope = RequestScope::of(ctx)?;
        Ok(Some(event_apis::load(scope, &event_apis::parse_id(&id)?)?))
    }

    /// CloudEvents published over MQTT for the application named `application` that could not
    /// become events (refused token, not a CloudEvent, not in the catalog, …), oldest first
    /// (the newest 1000 are kept), with their payload (access tokens redacted) and the reason.
    /// `application` is the name the topic gave (`-`: messages whose topic named no application
    /// and whose token did not verify). `first`: 1 to 200 (default 50); `after`: the
    /// `nextCursor` of the previous page.
    async fn mqtt_rejected_messages(
        &self,
        ctx: &Context<'_>,
        application: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<RejectedMessagePage> {
        let scope = RequestScope::of(ctx)?;
        Ok(bus::mqtt_rejected(
            scope,
            &application,
            first,
            after.as_deref(),
        )?)
    }
}

/// The mutations.
pub struct Mutation;

/// Changes to applications, their labels, webhooks and event APIs.
#[Object]
impl Mutation {
    /// Registers an application with its webhooks and event APIs. Every inline spec is
    /// validated first: if one is invalid, nothing is stored.
    async fn create_application(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "in")] input: ApplicationInput,
    ) -> ApiResult<AppRecord> {
        Ok(lifecycle::create(RequestScope::of(ctx)?, input)?)
    }

    /// Updates an application. Fields given (even as `null`) replace the current ones; omitted
    /// fields are kept. Given `webhooks` and `eventAPIs` replace all current ones (with new
    /// ids). A rename moves `eventingConfiguration.defaultURL`.
    async fn update_application(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(name = "in")] input: ApplicationInput,
    ) -> ApiResult<AppRecord> {
        let scope = RequestScope::of(ctx)?;
        Ok(lifecycle::update(
            scope,
            &applications::parse_id(&id)?,
            input,
        )?)
    }

    /// Deletes an application and everything under it; returns what it was.
    async fn delete_application(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<AppRecord>> {
        let scope = RequestScope::of(ctx)?;
        Ok(Some(lifecycle::delete(
            scope,
            &applications::parse_id(&id)?,
        )?))
    }

    /// Adds values to a label of an application (creating the label); returns the label.
    async fn add_application_label(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "applicationID")] application_id: ID,
        key: String,
        values: Vec<String>,
    ) -> ApiResult<Label> {
        let scope = RequestScope::of(ctx)?;
        let id = applications::parse_id(&application_id)?;
        Ok(applications::add_label(scope, &id, key, values)?)
    }

    /// Removes values from a label of an application; with no values, or none left, the label
    /// goes. Returns what is left of the label. `NOT_FOUND` if the application has no such
    /// label.
    async fn delete_application_label(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "applicationID")] application_id: ID,
        key: String,
        values: Vec<String>,
    ) -> ApiResult<Option<Label>> {
        let scope = RequestScope::of(ctx)?;
        let id = applications::parse_id(&application_id)?;
        Ok(applications::delete_label(scope, &id, key, values)?)
    }

    /// Adds a webhook to an application.
    async fn add_application_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "applicationID")] application_id: ID,
        #[graphql(name = "in")] input: ApplicationWebhookInput,
    ) -> ApiResult<WebhookRecord> {
        let scope = RequestScope::of(ctx)?;
        let id = applications::parse_id(&application_id)?;
        Ok(webhooks::add(scope, &id, input)?)
    }

    /// Replaces a webhook's type, URL and auth.
    async fn update_application_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "webhookID")] webhook_id: ID,
        #[graphql(name = "in")] input: ApplicationWebhookInput,
    ) -> ApiResult<WebhookRecord> {
        let scope = RequestScope::of(ctx)?;
        Ok(webhooks::update(
            scope,
            &webhooks::parse_id(&webhook_id)?,
            input,
        )?)
    }

    /// Deletes a webhook (and its pending notifications); returns what it was.
    async fn delete_application_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "webhookID")] webhook_id: ID,
    ) -> ApiResult<Option<WebhookRecord>> {
        let scope = RequestScope::of(ctx)?;
        Ok(Some(webhooks::delete(
            scope,
            &webhooks::parse_id(&webhook_id)?,
        )?))
    }

    /// Adds an event API to an application. An inline spec (`spec.data`) is validated and its
    /// event catalog derived; an invalid one is rejected with `INVALID_SPEC` and nothing is
    /// stored. A `spec.fetchRequest` without `data` is fetched before the mutation returns;
    /// a failed fetch still stores the API, with `fetchRequest.status.condition = FAILED` and
    /// a message saying why. The application's `CONFIGURATION_CHANGED` webhooks are notified.
    #[graphql(name = "addEventAPI")]
    async fn add_event_api(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "applicationID")] application_id: ID,
        #[graphql(name = "in")] input: EventApiDefinitionInput,
    ) -> ApiResult<ApiRecord> {
        let scope = RequestScope::of(ctx)?;
        let id = applications::parse_id(&application_id)?;
        Ok(event_apis::add(scope, &id, input)?)
    }

    /// Replaces an event API (its id and application stay), as `addEventAPI` validates it.
    #[graphql(name = "updateEventAPI")]
    async fn update_event_api(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(name = "in")] input: EventApiDefinitionInput,
    ) -> ApiResult<ApiRecord> {
        let scope = RequestScope::of(ctx)?;
        Ok(event_apis::update(
            scope,
            &event_apis::parse_id(&id)?,
            input,
        )?)
    }

    /// Fetches an event API's spec again from its `fetchRequest`. On success the document,
    /// its format and the event catalog are replaced; a failed refetch keeps the last good
    /// document and catalog and only updates `fetchRequest.status`.
    #[graphql(name = "refetchEventAPISpec")]
    async fn refetch_event_api_spec(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "eventID")] event_id: ID,
    ) -> ApiResult<Option<SpecRecord>> {
        let scope = RequestScope::of(ctx)?;
        Ok(Some(event_apis::refetch(
            scope,
            &event_apis::parse_id(&event_id)?,
        )?))
    }

    /// Creates OAuth 2.0 client credentials with which the application obtains access tokens
    /// for publishing (`POST /oauth/token`, client-credentials grant). The secret is returned
    /// only here; it is stored as a salted hash.
    #[graphql(name = "requestClientCredentialsForApplication")]
    async fn request_client_credentials_for_application(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "applicationID")] application_id: ID,
    ) -> ApiResult<ClientCredentials> {
        let scope = RequestScope::of(ctx)?;
        Ok(credentials::request(
            scope,
            &applications::parse_id(&application_id)?,
        )?)
    }

    /// Revokes client credentials: no token is issued for them any more (tokens already
    /// issued stay valid until they expire). Whether they existed.
    async fn revoke_client_credentials(&self, ctx: &Context<'_>, client_id: ID) -> ApiResult<bool> {
        let scope = RequestScope::of(ctx)?;
        let client_id = client_id
            .parse::<eventplane_core::ClientId>()
            .map_err(eventplane_core::Error::from)?;
        Ok(credentials::revoke(scope, &client_id)?)
    }

    /// Deletes an event API; returns what it was.
    #[graphql(name = "deleteEventAPI")]
    async fn delete_event_api(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<ApiRecord>> {
        let scope = RequestScope::of(ctx)?;
        Ok(Some(event_apis::delete(
            scope,
            &event_apis::parse_id(&id)?,
        )?))
    }
}
