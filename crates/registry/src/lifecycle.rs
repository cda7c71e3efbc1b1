//! Creating, updating and deleting applications, with their webhooks and event APIs.
//!
//! Write order makes concurrent requests safe without transactions: an application's own
//! indexes exist exactly while it does (created with it, deleted with it), adds to them never
//! recreate them, and an add that finds its application gone undoes itself. Deleting removes
//! the application record first, then everything under it, so no key is left behind.

use async_graphql::MaybeUndefined;
use eventplane_core::index::{
    add_to_existing, add_to_tenant_index, all_members, create_index, remove_from_existing,
    update_existing,
};
use eventplane_core::keys::{self, APPLICATIONS};
use eventplane_core::{ApiId, AppId, Error, KvStoreExt, PrefixedId, WebhookId};

use crate::applications::{self, ApplicationInput};
use crate::context::RequestScope;
use crate::credentials;
use crate::event_apis::{self, PreparedApi};
use crate::model::{ApiRecord, AppRecord, ApplicationStatus, ApplicationStatusCondition};
use crate::names;
use crate::outbox::{self, Action, Change};
use crate::scalars::Labels;
use crate::time::Timestamp;
use crate::validate::{self, MAX_DESCRIPTION};
use crate::webhooks::{self, PreparedWebhook};

/// A validated [`ApplicationInput`]; `None` for what the input left out.
struct PreparedApplication {
    name: String,
    description: Option<Option<String>>,
    labels: Option<Labels>,
    webhooks: Option<Vec<PreparedWebhook>>,
    event_apis: Option<Vec<PreparedApi>>,
}

/// Validates `input`, parsing every inline spec. Writes nothing.
fn prepare(input: ApplicationInput, scope: &RequestScope) -> Result<PreparedApplication, Error> {
    let description = match input.description {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(text) => Some(validate::optional_text(
            "in.description",
            Some(text),
            MAX_DESCRIPTION,
        )?),
    };
    let labels = match input.labels {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(Labels::default()),
        MaybeUndefined::Value(Labels(labels)) => Some(Labels(
            labels
                .into_iter()
                .map(|(key, values)| {
                    let values = validate::label("in.labels", &key, values)?;
                    Ok((key, values))
                })
                .collect::<Result<_, Error>>()?,
        )),
    };
    let webhooks = match input.webhooks {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(Vec::new()),
        MaybeUndefined::Value(webhooks) => Some(
            webhooks
                .into_iter()
                .enumerate()
                .map(|(i, webhook)| webhooks::prepare(webhook, &format!("in.webhooks[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
    };
    let event_apis = match input.event_apis {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(Vec::new()),
        MaybeUndefined::Value(apis) => Some(
            apis.into_iter()
                .enumerate()
                .map(|(i, api)| event_apis::prepare(api, &format!("in.eventAPIs[{i}]"), scope))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(PreparedApplication {
        name: validate::application_name("in.name", input.name)?,
        description,
        labels,
        webhooks,
        event_apis,
    })
}

/// Creates an application with its webhooks and event APIs.
pub(crate) fn create(scope: &RequestScope, input: ApplicationInput) -> Result<AppRecord, Error> {
    let prepared = prepare(input, scope)?;
    let now = scope.now();
    let app = AppRecord {
        id: AppId::new(),
        name: prepared.name,
        description: prepared.description.flatten(),
        labels: prepared.labels.unwrap_or_default(),
        status: ApplicationStatus {
            condition: ApplicationStatusCondition::Initial,
            timestamp: now,
        },
        client_ids: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    names::claim(scope, &app.name, &app.id)?;
    let webhooks = prepared.webhooks.unwrap_or_default();
    let apis = prepared.event_apis.unwrap_or_default();
    match write_new(scope, &app, webhooks, apis, now) {
        Ok(api_ids) => {
            let changes: Vec<Change> = api_ids
                .iter()
                .map(|id| Change::event_api(id, Action::Added))
                .collect();
            outbox::notify(scope, &app, &changes);
            Ok(app)
        }
        Err(err) => {
            // Best effort: leave nothing half-created behind; the error reported is the first.
            let _ = purge(scope, &app);
            Err(err)
        }
    }
}

/// Writes a new application, its children and their indexes; listed last. The indexes are
/// written before the children, so that [`purge`] finds every child should a write fail.
fn write_new(
    scope: &RequestScope,
    app: &AppRecord,
    webhooks: Vec<PreparedWebhook>,
    apis: Vec<PreparedApi>,
    now: Timestamp,
) -> Result<Vec<ApiId>, Error> {
    let store = scope.store();
    let tenant = &scope.tenant;
    let webhooks: Vec<_> = webhooks
        .into_iter()
        .map(|webhook| webhook.into_record(WebhookId::new(), app.id.clone(), now))
        .collect();
    let apis: Vec<_> = apis
        .into_iter()
        .map(|mut api| {
            api.fetch_if_needed(scope);
            api.into_record(ApiId::new(), app.id.clone(), now, now)
        })
        .collect();
    store.set_json(&keys::record_for(tenant, &app.id), app)?;
    let webhook_ids = webhooks.iter().map(|webhook| webhook.id.to_string());
    create_index(store, &webhooks::index_of(scope, &app.id), webhook_ids)?;
    let api_ids = apis.iter().map(|api| api.id.to_string());
    create_index(store, &event_apis::index_of(scope, &app.id), api_ids)?;
    for webhook in &webhooks {
        store.set_json(&keys::record_for(tenant, &webhook.id), webhook)?;
    }
    for api in &apis {
        store.set_json(&keys::record_for(tenant, &api.id), api)?;
    }
    add_to_tenant_index(store, tenant, APPLICATIONS, app.id.as_str())?;
    for api in &apis {
        crate::bus::registered(scope, api, &[])?;
    }
    Ok(apis.into_iter().map(|api| api.id).collect())
}

/// Updates application `id`. Fields given (even as `null`) replace the current ones; omitted
/// fields are kept. Given webhooks and event APIs replace all current ones.
pub(crate) fn update(
    scope: &RequestScope,
    id: &AppId,
    input: ApplicationInput,
) -> Result<AppRecord, Error> {
    let prepared = prepare(input, scope)?;
    let current = applications::load(scope, id)?;
    let renaming = current.name != prepared.name;
    if renaming {
        names::claim(scope, &prepared.name, id)?;
    }
    let now = scope.now();
    let mut replaced_name = None;
    let updated = update_existing(
        scope.store(),
        &keys::record_for(&scope.tenant, id),
        |mut app: AppRecord| {
            replaced_name = Some(app.name.clone());
            app.name.clone_from(&prepared.name);
            if let Some(description) = &prepared.description {
                app.description.clone_from(description);
            }
            if let Some(labels) = &prepared.labels {
                app.labels = labels.clone();
            }
            app.updated_at = now;
            Ok(app)
        },
    );
    let app = match updated {
        Ok(Some(app)) => app,
        failed => {
            if renaming {
                names::release(scope, &prepared.name, id)?;
            }
            return Err(failed.err().unwrap_or_else(|| applications::not_found(id)));
        }
    };
    let mut changes = Vec::new();
    if let Some(old_name) = replaced_name.filter(|old| *old != app.name) {
        names::release(scope, &old_name, id)?;
        changes.push(Change::EventingConfiguration);
    }
    if let Some(webhooks) = prepared.webhooks {
        replace_webhooks(scope, &app, webhooks, now)?;
    }
    if let Some(apis) = prepared.event_apis {
        changes.extend(replace_event_apis(scope, &app, apis, now)?);
    }
    outbox::notify(scope, &app, &changes);
    Ok(app)
}

fn replace_webhooks(
    scope: &RequestScope,
    app: &AppRecord,
    webhooks: Vec<PreparedWebhook>,
    now: Timestamp,
) -> Result<(), Error> {
    let store = scope.store();
    let index = webhooks::index_of(scope, &app.id);
    let old = all_members(store, &index)?;
    for member in &old {
        store.delete(&keys::record(&scope.tenant, WebhookId::KIND, member))?;
        remove_from_existing(store, &index, member)?;
    }
    outbox::purge(store, &scope.tenant, |_, webhook| {
        old.iter().any(|member| member == webhook.as_str())
    })?;
    for webhook in webhooks {
        let record = webhook.into_record(WebhookId::new(), app.id.clone(), now);
        let key = keys::record_for(&scope.tenant, &record.id);
        store.set_json(&key, &record)?;
        if !add_to_existing(store, &index, record.id.as_str())? {
            store.delete(&key)?;
            return Err(applications::not_found(&app.id));
        }
    }
    Ok(())
}

fn replace_event_apis(
    scope: &RequestScope,
    app: &AppRecord,
    apis: Vec<PreparedApi>,
    now: Timestamp,
) -> Result<Vec<Change>, Error> {
    let store = scope.store();
    let index = event_apis::index_of(scope, &app.id);
    let mut changes = Vec::new();
    for member in all_members(store, &index)? {
        let key = keys::record(&scope.tenant, ApiId::KIND, &member);
        if let Some(record) = store.get_json::<ApiRecord>(&key)? {
            crate::bus::forget_all(scope, &record)?;
        }
        store.delete(&key)?;
        remove_from_existing(store, &index, &member)?;
        if let Ok(id) = member.parse::<ApiId>() {
            changes.push(Change::event_api(&id, Action::Deleted));
        }
    }
    for mut api in apis {
        api.fetch_if_needed(scope);
        let record = api.into_record(ApiId::new(), app.id.clone(), now, now);
        let key = keys::record_for(&scope.tenant, &record.id);
        store.set_json(&key, &record)?;
        if !add_to_existing(store, &index, record.id.as_str())? {
            store.delete(&key)?;
            return Err(applications::not_found(&app.id));
        }
        crate::bus::registered(scope, &record, &[])?;
        changes.push(Change::event_api(&record.id, Action::Added));
    }
    Ok(changes)
}

/// Deletes application `id` and everything under it; returns what it was.
pub(crate) fn delete(scope: &RequestScope, id: &AppId) -> Result<AppRecord, Error> {
    let app = applications::load(scope, id)?;
    purge(scope, &app)?;
    Ok(app)
}

/// Removes every key of `app`: its record first (so adds racing with us undo themselves),
/// then its children, indexes, listing, name and pending notifications.
fn purge(scope: &RequestScope, app: &AppRecord) -> Result<(), Error> {
    let store = scope.store();
    store.delete(&keys::record_for(&scope.tenant, &app.id))?;
    event_apis::delete_all_of(scope, &app.id)?;
    webhooks::delete_all_of(scope, &app.id)?;
    credentials::delete_all_of(store, &scope.tenant, app)?;
    remove_from_existing(
        store,
        &keys::index(&scope.tenant, APPLICATIONS),
        app.id.as_str(),
    )?;
    names::release(scope, &app.name, &app.id)?;
    outbox::purge(store, &scope.tenant, |app_id, _| *app_id == app.id)
}
