//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>).
//!
//! A subscription's secret is `whsec_` followed by the base64 of 24 to 64 random bytes (the
//! key). Every delivery carries three headers:
//!
//! - `webhook-id`: the message id, the same on every attempt of one event to one subscription
//!   (so receivers can deduplicate; the dispatcher uses the event id);
//! - `webhook-timestamp`: the attempt's time, Unix seconds;
//! - `webhook-signature`: `v1,` and the base64 of HMAC-SHA256(key, `{id}.{timestamp}.{body}`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

/// The header carrying the message id.
pub const WEBHOOK_ID: &str = "webhook-id";
/// The header carrying the attempt's Unix time in seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying the signature(s).
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The shortest key a secret may hold, in bytes.
pub const MIN_KEY_BYTES: usize = 24;
/// The longest key a secret may hold, in bytes (the block size of SHA-256).
pub const MAX_KEY_BYTES: usize = 64;
/// How many random bytes a generated secret holds.
pub const GENERATED_KEY_BYTES: usize = 32;

/// Base64 with the standard alphabet, padding optional on input.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signing secret: `whsec_` followed by the base64 of a 24- to 64-byte key. `Debug` hides
/// it; it serializes as its text (for the stored record only: the API never returns it after
/// creation).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    text: String,
    key: Vec<u8>,
}

impl SigningSecret {
    /// The prefix of every secret.
    pub const PREFIX: &'static str = "whsec_";

    /// Checks a secret given to the API; the error is written for the client.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = format!(
            "must be `whsec_` followed by the base64 of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes"
        );
        let Some(encoded) = text.strip_prefix(Self::PREFIX) else {
            return Err(expected);
        };
        match LENIENT_BASE64.decode(encoded) {
            Ok(key) if (MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) => Ok(Self {
                text: text.to_owned(),
                key,
            }),
            Ok(key) => Err(format!("{expected}; it holds {} bytes", key.len())),
            Err(_) => Err(format!("{expected}; the part after `whsec_` is not base64")),
        }
    }

    /// A new secret from [`GENERATED_KEY_BYTES`] random bytes (the caller supplies them, so
    /// this crate stays deterministic): `whsec_` and their padded base64.
    pub fn generate(random: [u8; GENERATED_KEY_BYTES]) -> Self {
        Self {
            text: format!("{}{}", Self::PREFIX, STANDARD.encode(random)),
            key: random.to_vec(),
        }
    }

    /// The secret's text, `whsec_…`. A secret: show it only in the response that creates it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The HMAC key (the decoded bytes).
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(eventplane_outbound::auth::SECRET_MASK)
    }
}

impl Serialize for SigningSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for SigningSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The `webhook-signature` value for one message: `v1,` and the base64 of
/// HMAC-SHA256(key, `{msg_id}.{timestamp}.{body}`).
///
/// ```
/// use eventplane_dispatch::signing::{SigningSecret, sign};
/// let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let body = br#"{"test": 2432232314}"#;
/// assert_eq!(
///     sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/// );
/// # Ok::<(), String>(())
/// ```
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = keyed_mac(secret.key());
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The three Standard Webhooks headers of one attempt: `webhook-id`, `webhook-timestamp` and
/// `webhook-signature`, in that order.
pub fn webhook_headers(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (WEBHOOK_ID, msg_id.to_owned()),
        (WEBHOOK_TIMESTAMP, timestamp.to_string()),
        (WEBHOOK_SIGNATURE, sign(secret, msg_id, timestamp, body)),
    ]
}

/// HMAC-SHA256 keyed with `key`. HMAC zero-pads keys up to the block size (64 bytes) and
/// hashes longer ones first; a secret's key is at most 64 bytes, so padding it here and using
/// the infallible block-sized constructor is exactly HMAC, with no error path to handle.
fn keyed_mac(key: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; MAX_KEY_BYTES];
    let shortened;
    let key = if key.len() > MAX_KEY_BYTES {
        use sha2::Digest as _;
        shortened = Sha256::digest(key);
        shortened.as_slice()
    } else {
        key
    };
    block[..key.len()].copy_from_slice(key);
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_example_signature() -> Result<(), String> {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
        assert_eq!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        Ok(())
    }

    #[test]
    fn padding_the_key_is_exactly_hmac() {
        for len in [0, 1, 24, 32, 63, 64, 65, 100] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut reference =
                Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
            reference.update(b"message");
            let mut ours = keyed_mac(&key);
            ours.update(b"message");
            assert_eq!(
                ours.finalize().into_bytes(),
                reference.finalize().into_bytes(),
                "{len}"
            );
        }
    }

    #[test]
    fn headers_carry_id_timestamp_and_signature() -> Result<(), String> {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
        let headers = webhook_headers(&secret, "evt_1", 1_700_000_000, b"{}");
        assert_eq!(headers[0], ("webhook-id", "evt_1".to_owned()));
        assert_eq!(headers[1], ("webhook-timestamp", "1700000000".to_owned()));
        assert_eq!(headers[2].0, "webhook-signature");
        assert_eq!(headers[2].1, sign(&secret, "evt_1", 1_700_000_000, b"{}"));
        assert_ne!(headers[2].1, sign(&secret, "evt_1", 1_700_000_001, b"{}"));
        Ok(())
    }

    #[test]
    fn generated_secrets_hold_their_random_bytes() -> Result<(), String> {
        let secret = SigningSecret::generate([7; 32]);
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.expose().len(), 6 + 44);
        assert_eq!(SigningSecret::parse(secret.expose())?, secret);
        assert_eq!(secret.key(), [7; 32]);
        Ok(())
    }

    #[test]
    fn secrets_are_checked() {
        let b64 = |n: usize| STANDARD.encode(vec![1u8; n]);
        for good in [
            format!("whsec_{}", b64(24)),
            format!("whsec_{}", b64(64)),
            format!("whsec_{}", b64(32).trim_end_matches('=')),
        ] {
            assert!(SigningSecret::parse(&good).is_ok(), "{good}");
        }
        for (bad, why) in [
            (format!("whsec_{}", b64(23)), "it holds 23 bytes"),
            (format!("whsec_{}", b64(65)), "it holds 65 bytes"),
            (b64(32), "must be `whsec_`"),
            ("whsec_".to_owned(), "it holds 0 bytes"),
            ("whsec_not base64!".to_owned(), "not base64"),
            (
                "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
                "must be",
            ),
        ] {
            let err = SigningSecret::parse(&bad).expect_err(&bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn debug_hides_the_secret_and_serde_round_trips() -> Result<(), serde_json::Error> {
        let secret = SigningSecret::generate([9; 32]);
        assert!(!format!("{secret:?}").contains("whsec_"));
        let json = serde_json::to_string(&secret)?;
        assert_eq!(json, format!("\"{}\"", secret.expose()));
        assert_eq!(serde_json::from_str::<SigningSecret>(&json)?, secret);
        assert!(serde_json::from_str::<SigningSecret>("\"whsec_AAAA\"").is_err());
        Ok(())
    }
}
