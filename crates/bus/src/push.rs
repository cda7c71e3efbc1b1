//! Push: which of an application's external subscriptions a Pub/Sub push request comes from.

use eventplane_core::keys::{self, APPLICATION_EVENT_APIS, APPLICATIONS_BY_NAME};
use eventplane_core::{ApiId, AppId, Error, KvStore, KvStoreExt, TenantId, index};
use serde::Deserialize;

use crate::config::{BusSubscription, Mode};
use crate::ingest::Target;
use crate::pull::load_api;

/// A push-mode external subscription of an application, with what its messages are checked
/// against.
#[derive(Debug, Clone)]
pub struct PushTarget {
    /// The event API it belongs to.
    pub api: ApiId,
    /// The subscription.
    pub subscription: BusSubscription,
    /// The application and the API's catalog.
    pub target: Target,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameHolder {
    app_id: AppId,
}

/// The push-mode external subscription named `resource`
/// (`projects/<project>/subscriptions/<subscription>`) of the application named `app_name`;
/// `None` if the application has none of that name.
pub fn push_target(
    store: &dyn KvStore,
    tenant: &TenantId,
    app_name: &str,
    resource: &str,
    max_event_bytes: u64,
) -> Result<Option<PushTarget>, Error> {
    let by_name = keys::record(tenant, APPLICATIONS_BY_NAME, app_name);
    let Some(holder) = store.get_json::<NameHolder>(&by_name)? else {
        return Ok(None);
    };
    let apis = keys::owned_index(tenant, APPLICATION_EVENT_APIS, holder.app_id.as_str());
    for member in index::all_members(store, &apis)? {
        let Ok(id) = member.parse::<ApiId>() else {
            continue;
        };
        let Some(api) = load_api(store, tenant, &id)? else {
            continue;
        };
        let Some(subscription) = api
            .bus
            .iter()
            .find(|sub| sub.settings.mode == Mode::Push && sub.resource == resource)
        else {
            continue;
        };
        let Some(target) = api.target(store, tenant, max_event_bytes)? else {
            return Ok(None);
        };
        return Ok(Some(PushTarget {
            api: api.id.clone(),
            subscription: subscription.clone(),
            target,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use eventplane_core::MemoryStore;
    use serde_json::json;

    use super::*;

    fn sub(name: &str, mode: &str) -> BusSubscription {
        let attributes: BTreeMap<String, String> =
            [("mode".to_owned(), mode.to_owned())].into_iter().collect();
        BusSubscription::new(
            &format!("https://pubsub.googleapis.com/v1/projects/shop/subscriptions/{name}"),
            "projects/shop/topics/orders",
            None,
            &attributes,
        )
        .expect("valid")
    }

    #[test]
    fn only_the_applications_own_push_subscriptions_are_found() -> Result<(), Error> {
        let store = MemoryStore::new();
        let tenant: TenantId = "acme".parse()?;
        let app = AppId::new();
        let api = ApiId::new();
        store.set_json(
            &keys::record_for(&tenant, &app),
            &json!({"id": app, "name": "shop"}),
        )?;
        store.set_json(
            &keys::record(&tenant, APPLICATIONS_BY_NAME, "shop"),
            &json!({"appId": app}),
        )?;
        store.set_json(
            &keys::owned_index(&tenant, APPLICATION_EVENT_APIS, app.as_str()),
            &json!([api]),
        )?;
        store.set_json(
            &keys::record_for(&tenant, &api),
            &json!({"id": api, "app_id": app, "catalog": [],
                "bus": [sub("pulled", "pull"), sub("pushed", "push")]}),
        )?;
        let found = push_target(
            &store,
            &tenant,
            "shop",
            "projects/shop/subscriptions/pushed",
            1,
        )?
        .expect("the push subscription");
        assert_eq!((found.api, found.target.app.name.as_str()), (api, "shop"));
        for (app, resource) in [
            ("shop", "projects/shop/subscriptions/pulled"),
            ("shop", "projects/shop/subscriptions/other"),
            ("erp", "projects/shop/subscriptions/pushed"),
        ] {
            assert!(
                push_target(&store, &tenant, app, resource, 1)?.is_none(),
                "{app} {resource}"
            );
        }
        Ok(())
    }
}
