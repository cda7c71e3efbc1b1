//! The key that signs our access tokens, and its public key set for the gateway.
//!
//! The operator sets it with the secret variable `token_signing_key` (a PEM private key). When
//! that is empty (development), one ES256 key is generated the first time it is needed and kept
//! in the store (`sys/signing-key/current`), with its public JWKS beside it so that verifying
//! needs no key derivation. Concurrent first uses elect one generator with `increment` (a
//! compare-and-swap from "absent" is not reliable on Spin's SQLite store); the others wait for
//! its key, and take over if it never appears (the generator died).

use std::time::Duration;

use eventplane_core::{Error, KvStore, KvStoreExt, keys};
use serde::{Deserialize, Serialize};

use crate::token::{Jwks, SigningKey};

/// The name of the generated key's record.
const CURRENT: &str = "current";

/// How often, and how long between, a waiting instance looks for the elected generator's key.
const WAIT_ROUNDS: u32 = 40;
const WAIT_STEP: Duration = Duration::from_millis(25);

/// The generated key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    /// PKCS#8 PEM of the private key.
    pem: String,
    /// Its public key set.
    jwks: Jwks,
}

/// The signing key: `configured_pem` when set, else the generated one (generated now if
/// there is none yet). `sleep` waits between looks for a key another instance is generating.
pub fn signing_key(
    store: &dyn KvStore,
    configured_pem: &str,
    sleep: &dyn Fn(Duration),
) -> Result<SigningKey, Error> {
    if !configured_pem.trim().is_empty() {
        return SigningKey::from_pem(configured_pem).map_err(|e| {
            Error::internal(format!(
                "token_signing_key is not a usable private key: {e}"
            ))
        });
    }
    let stored = stored_key(store, sleep)?;
    SigningKey::from_pem(&stored.pem)
        .map_err(|e| Error::internal(format!("the stored signing key is unusable: {e}")))
}

/// The public keys that verify our tokens: those of `configured_pem` when set, else those of
/// the generated key (generated now if there is none yet).
pub fn public_keys(
    store: &dyn KvStore,
    configured_pem: &str,
    sleep: &dyn Fn(Duration),
) -> Result<Jwks, Error> {
    if !configured_pem.trim().is_empty() {
        return Ok(signing_key(store, configured_pem, sleep)?.jwks());
    }
    Ok(stored_key(store, sleep)?.jwks)
}

/// Where the generated signing key is kept: what [`public_keys`] reads when no key is
/// configured.
pub fn stored_key_record() -> eventplane_core::Key {
    keys::system(keys::SIGNING_KEYS, CURRENT)
}

fn stored_key(store: &dyn KvStore, sleep: &dyn Fn(Duration)) -> Result<StoredKey, Error> {
    let key = stored_key_record();
    if let Some(stored) = store.get_json::<StoredKey>(&key)? {
        return Ok(stored);
    }
    let claim = keys::system(keys::SIGNING_KEY_CLAIMS, CURRENT);
    if store.increment(&claim, 1)? != 1 {
        for _ in 0..WAIT_ROUNDS {
            sleep(WAIT_STEP);
            if let Some(stored) = store.get_json::<StoredKey>(&key)? {
                return Ok(stored);
            }
        }
    }
    let generated = SigningKey::generate()?;
    let fresh = StoredKey {
        pem: generated.to_pem().to_owned(),
        jwks: generated.jwks(),
    };
    let bytes = serde_json::to_vec(&fresh)
        .map_err(|e| Error::internal_with("encoding the signing key", e))?;
    // Strict stores refuse a second creation: then the winner's key is the one to use.
    if !store.compare_and_swap(&key, None, &bytes)? {
        return store
            .get_json::<StoredKey>(&key)?
            .ok_or_else(|| Error::internal("the signing key vanished while it was created"));
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use eventplane_core::MemoryStore;

    use super::*;

    fn no_sleep(_: Duration) {}

    #[test]
    fn a_generated_key_is_kept_and_its_public_keys_verify_it() {
        let store = MemoryStore::new();
        let first = signing_key(&store, "", &no_sleep).expect("generated");
        let again = signing_key(&store, "", &no_sleep).expect("stored");
        assert_eq!(first.kid(), again.kid());
        let public = public_keys(&store, "", &no_sleep).expect("public keys");
        assert!(public.find(first.kid()).is_some());
    }

    #[test]
    fn a_configured_key_wins_and_a_bad_one_is_a_clear_error() {
        let store = MemoryStore::new();
        let generated = SigningKey::generate().expect("key");
        let configured = signing_key(&store, generated.to_pem(), &no_sleep).expect("configured");
        assert_eq!(configured.kid(), generated.kid());
        assert!(
            store.keys().is_empty(),
            "nothing stored: {:?}",
            store.keys()
        );
        let err = signing_key(&store, "not a pem", &no_sleep).expect_err("bad pem");
        assert!(err.to_string().contains("token_signing_key"), "{err}");
    }

    #[test]
    fn concurrent_first_uses_agree_on_one_key() {
        for store in [MemoryStore::new(), MemoryStore::spin_sqlite_like()] {
            let store = Arc::new(store);
            let kids: Vec<String> = (0..8)
                .map(|_| {
                    let store = store.clone();
                    std::thread::spawn(move || {
                        signing_key(store.as_ref(), "", &std::thread::sleep)
                            .map(|k| k.kid().to_owned())
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().expect("thread").expect("key"))
                .collect();
            assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
        }
    }
}
