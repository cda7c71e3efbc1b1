//! Application names, unique per tenant.
//!
//! A name is claimed by incrementing its claim counter: the create (or rename) that sees `1` owns
//! it, every other sees more and gets `NOT_UNIQUE`, so two concurrent creates cannot both win.
//! A counter, not a compare-and-swap against "absent", because Spin's SQLite store performs the
//! latter as an unconditional write. The owner then records itself under the name (which also
//! lets the gateway find an application by name); releasing deletes both keys.

use eventplane_core::keys::{self, APPLICATION_NAME_CLAIMS, APPLICATIONS_BY_NAME};
use eventplane_core::{AppId, Error, KvStoreExt};
use serde::{Deserialize, Serialize};

use crate::context::RequestScope;

/// Who holds a name (`t/<tenant>/r/app-by-name/<name>`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameHolder {
    app_id: AppId,
}

/// Claims `name` for application `app_id`; `NOT_UNIQUE` if it is taken.
pub(crate) fn claim(scope: &RequestScope, name: &str, app_id: &AppId) -> Result<(), Error> {
    let store = scope.store();
    let claim = keys::record(&scope.tenant, APPLICATION_NAME_CLAIMS, name);
    if store.increment(&claim, 1)? != 1 {
        return Err(Error::already_exists(format!(
            "an application named {name:?} already exists"
        )));
    }
    let holder = NameHolder {
        app_id: app_id.clone(),
    };
    store.set_json(
        &keys::record(&scope.tenant, APPLICATIONS_BY_NAME, name),
        &holder,
    )
}

/// Releases `name` if application `app_id` holds it (or its claim never got recorded).
pub(crate) fn release(scope: &RequestScope, name: &str, app_id: &AppId) -> Result<(), Error> {
    let store = scope.store();
    let by_name = keys::record(&scope.tenant, APPLICATIONS_BY_NAME, name);
    if let Some(holder) = store.get_json::<NameHolder>(&by_name)?
        && holder.app_id != *app_id
    {
        return Ok(());
    }
    // The holder record first: once the claim is gone, someone else may claim the name and
    // record themselves.
    store.delete(&by_name)?;
    store.delete(&keys::record(&scope.tenant, APPLICATION_NAME_CLAIMS, name))?;
    Ok(())
}
