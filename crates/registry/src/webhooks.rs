//! Application webhooks: their GraphQL type and input, and add / update / delete / list.

use async_graphql::{ID, InputObject, Object};
use eventplane_core::index::{add_to_existing, all_members, remove_from_existing, update_existing};
use eventplane_core::keys::{self, APPLICATION_WEBHOOKS};
use eventplane_core::{AppId, Error, Key, KvStoreExt, PrefixedId, WebhookId};

use crate::applications;
use crate::auth::{self, Auth, AuthInput};
use crate::context::RequestScope;
use crate::model::{ApplicationWebhookType, LastDelivery, WebhookRecord};
use crate::outbox;
use crate::time::Timestamp;
use crate::validate;

/// A webhook eventplane calls when something happens to the application.
#[Object(name = "ApplicationWebhook")]
impl WebhookRecord {
    /// The id (`whk_…`).
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The application the webhook belongs to.
    #[graphql(name = "applicationID")]
    async fn application_id(&self) -> ID {
        ID(self.app_id.to_string())
    }

    /// When it is called.
    #[graphql(name = "type")]
    async fn webhook_type(&self) -> ApplicationWebhookType {
        self.webhook_type
    }

    /// Where it is called (with a JSON POST).
    async fn url(&self) -> &str {
        &self.url
    }

    /// How eventplane authenticates to it (secrets masked).
    async fn auth(&self) -> Option<&Auth> {
        self.auth.as_ref()
    }

    /// The outcome of the last delivery to it, if any was attempted.
    async fn last_delivery(&self) -> Option<&LastDelivery> {
        self.last_delivery.as_ref()
    }
}

/// A webhook to call when something happens to the application.
#[derive(InputObject)]
pub(crate) struct ApplicationWebhookInput {
    /// When to call it.
    #[graphql(name = "type")]
    webhook_type: ApplicationWebhookType,
    /// Where to call it (http or https).
    url: String,
    /// How to authenticate to it.
    auth: Option<AuthInput>,
}

/// A validated webhook input.
#[derive(Clone)]
pub(crate) struct PreparedWebhook {
    webhook_type: ApplicationWebhookType,
    url: String,
    auth: Option<Auth>,
}

impl PreparedWebhook {
    /// The record of webhook `id` of application `app_id`.
    pub(crate) fn into_record(self, id: WebhookId, app_id: AppId, now: Timestamp) -> WebhookRecord {
        WebhookRecord {
            id,
            app_id,
            webhook_type: self.webhook_type,
            url: self.url,
            auth: self.auth,
            last_delivery: None,
            created_at: now,
        }
    }
}

/// Validates `input` (named `field` in errors).
pub(crate) fn prepare(
    input: ApplicationWebhookInput,
    field: &str,
) -> Result<PreparedWebhook, Error> {
    Ok(PreparedWebhook {
        webhook_type: input.webhook_type,
        url: validate::http_url(&format!("{field}.url"), input.url)?,
        auth: auth::optional_auth(input.auth, &format!("{field}.auth"))?,
    })
}

fn not_found(id: &impl std::fmt::Display) -> Error {
    Error::not_found(format!("there is no webhook {id}"))
}

/// The index of the webhooks of application `app_id`.
pub(crate) fn index_of(scope: &RequestScope, app_id: &AppId) -> Key {
    keys::owned_index(&scope.tenant, APPLICATION_WEBHOOKS, app_id.as_str())
}

/// Parses a GraphQL id into a webhook id.
pub(crate) fn parse_id(id: &ID) -> Result<WebhookId, Error> {
    Ok(id.parse::<WebhookId>()?)
}

/// The webhooks of application `app_id`, oldest first.
pub(crate) fn list(scope: &RequestScope, app_id: &AppId) -> Result<Vec<WebhookRecord>, Error> {
    let store = scope.store();
    let mut webhooks = Vec::new();
    for member in all_members(store, &index_of(scope, app_id))? {
        let key = keys::record(&scope.tenant, WebhookId::KIND, &member);
        if let Some(webhook) = store.get_json::<WebhookRecord>(&key)? {
            webhooks.push(webhook);
        }
    }
    Ok(webhooks)
}

/// Adds a webhook to application `app_id`.
pub(crate) fn add(
    scope: &RequestScope,
    app_id: &AppId,
    input: ApplicationWebhookInput,
) -> Result<WebhookRecord, Error> {
    let prepared = prepare(input, "in")?;
    let app = applications::load(scope, app_id)?;
    let record = prepared.into_record(WebhookId::new(), app.id.clone(), scope.now());
    let store = scope.store();
    let key = keys::record_for(&scope.tenant, &record.id);
    store.set_json(&key, &record)?;
    let index = index_of(scope, &app.id);
    let listed = add_to_existing(store, &index, record.id.as_str())?;
    // Undo if the application was deleted meanwhile (see event_apis::add).
    if !listed || !store.exists(&keys::record_for(&scope.tenant, &app.id))? {
        store.delete(&key)?;
        remove_from_existing(store, &index, record.id.as_str())?;
        return Err(applications::not_found(app_id));
    }
    Ok(record)
}

/// Replaces webhook `id` with `input`, keeping its last delivery.
pub(crate) fn update(
    scope: &RequestScope,
    id: &WebhookId,
    input: ApplicationWebhookInput,
) -> Result<WebhookRecord, Error> {
    let prepared = prepare(input, "in")?;
    let key = keys::record_for(&scope.tenant, id);
    update_existing(scope.store(), &key, |current: WebhookRecord| {
        let mut updated =
            prepared
                .clone()
                .into_record(current.id, current.app_id, current.created_at);
        updated.last_delivery = current.last_delivery;
        Ok(updated)
    })?
    .ok_or_else(|| not_found(id))
}

/// Deletes webhook `id` and its pending notifications; returns what it was.
pub(crate) fn delete(scope: &RequestScope, id: &WebhookId) -> Result<WebhookRecord, Error> {
    let store = scope.store();
    let key = keys::record_for(&scope.tenant, id);
    let record = store
        .get_json::<WebhookRecord>(&key)?
        .ok_or_else(|| not_found(id))?;
    store.delete(&key)?;
    remove_from_existing(store, &index_of(scope, &record.app_id), id.as_str())?;
    outbox::purge(store, &scope.tenant, |_, webhook| webhook == id)?;
    Ok(record)
}

/// Deletes every webhook of application `app_id` and its index.
pub(crate) fn delete_all_of(scope: &RequestScope, app_id: &AppId) -> Result<(), Error> {
    let store = scope.store();
    let index = index_of(scope, app_id);
    for member in all_members(store, &index)? {
        store.delete(&keys::record(&scope.tenant, WebhookId::KIND, &member))?;
    }
    store.delete(&index)?;
    Ok(())
}
