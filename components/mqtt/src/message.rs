//! One MQTT message: parsed, authenticated, checked, stored and handed off like a published
//! event, or refused, recorded and noticed. The rules are `eventplane_ingest::mqtt`'s.

use eventplane_core::{Error, KvStore, ReadAhead, TenantId};
use eventplane_ingest::auth::{AuthFailure, authenticate_token, publish_keys};
use eventplane_ingest::handoff::HandOff;
use eventplane_ingest::mqtt::{self, Mode};
use eventplane_ingest::{Application, Rejection, now_ms, want_storing_reads};
use eventplane_spin::SpinStore;
use spin_sdk::mqtt::{Connection, Qos};

use crate::settings::Settings;

/// Why a message is refused, and where the refusal is recorded.
struct Refusal {
    rejection: Rejection,
    /// The tenant of the verified token, else the default tenant.
    tenant: TenantId,
    /// The log: the application the topic names, else the verified token's, else `-`.
    log: String,
}

/// What became of a message.
enum Outcome {
    /// Stored; the hand-off to make, if any event has subscribers.
    Accepted(Option<HandOff>),
    /// Refused.
    Refused(Refusal),
}

/// Handles the message `payload` received on `topic`. `Err` only when eventplane itself
/// failed (store, variables): the message must come again.
pub async fn handle(topic: &str, payload: &[u8]) -> Result<(), Error> {
    if mqtt::is_notice(topic) {
        eprintln!("mqtt: ignoring a message on {topic}: rejection notices never come back in");
        return Ok(());
    }
    let settings = Settings::load()?;
    // Fetches ahead what taking the message reads, as the gateway does.
    let store = ReadAhead::new(SpinStore::open_default()?);
    let now = now_ms();
    match ingest(&store, &settings, topic, payload, now).await? {
        Outcome::Accepted(hand_off) => {
            if let Some(hand_off) = hand_off {
                hand_off.send_to(&settings.handoff_url).await;
            }
            Ok(())
        }
        Outcome::Refused(refusal) => refuse(&store, &settings, topic, payload, &refusal, now),
    }
}

/// Takes the message the common way; `Err` only for failures of eventplane itself.
async fn ingest(
    store: &ReadAhead<SpinStore>,
    settings: &Settings,
    topic: &str,
    payload: &[u8],
    now: u64,
) -> Result<Outcome, Error> {
    let topic_application = settings.topic.application(topic)?;
    let unverified = |rejection| {
        Ok(Outcome::Refused(Refusal {
            rejection,
            tenant: settings.default_tenant.clone(),
            log: mqtt::log_name(topic_application, None).to_owned(),
        }))
    };
    let parsed = match mqtt::parse(payload, settings.auth.max_event_bytes) {
        Ok(parsed) => parsed,
        Err(rejection) => return unverified(rejection),
    };
    store.want(publish_keys(&settings.auth, &parsed.token, None, None));
    let (publisher, tenant) =
        match authenticate_token(store, &settings.auth, &parsed.token, None).await {
            Ok(verified) => verified,
            Err(AuthFailure::Denied(err)) => return unverified(Rejection::from_auth(&err)),
            Err(AuthFailure::Unavailable(err)) => return Err(err),
        };
    let refused = |rejection| {
        Ok(Outcome::Refused(Refusal {
            rejection,
            tenant: tenant.clone(),
            log: mqtt::log_name(topic_application, Some(&publisher.app)).to_owned(),
        }))
    };
    if let Err(rejection) = mqtt::authorize(&publisher, topic_application, &parsed.events) {
        return refused(rejection);
    }
    want_storing_reads(store, &tenant, &parsed.events);
    let Some(app) = Application::load(store, &tenant, &publisher.app)? else {
        return refused(Rejection::no_application(&publisher.app));
    };
    let checked = match parsed.mode {
        Mode::Batch => app.check_batch(&parsed.events).map(drop),
        Mode::Single => parsed
            .events
            .iter()
            .try_for_each(|event| app.check(event, None).map(drop)),
    };
    if let Err(err) = checked {
        return refused(Rejection::from_catalog(&err));
    }
    let mut stored = Vec::with_capacity(parsed.events.len());
    for event in parsed.events {
        stored.push(app.store(store, &tenant, event, None, now)?);
    }
    Ok(Outcome::Accepted(HandOff::of(store, &tenant, &stored)))
}

/// Records a refused message in its application's log, then publishes the notice (when
/// `mqtt_address` is set; a failed notice is only logged: the record is what counts).
fn refuse(
    store: &dyn KvStore,
    settings: &Settings,
    topic: &str,
    payload: &[u8],
    refusal: &Refusal,
    now: u64,
) -> Result<(), Error> {
    let record = mqtt::rejected_record(topic, payload, &refusal.rejection, now);
    let recorded = mqtt::rejected_log(&refusal.log).record(store, &refusal.tenant, &record)?;
    eprintln!(
        "mqtt: refused message {} on {topic} ({}{}): {}",
        record.message_id,
        record.code,
        if recorded { "" } else { ", seen before" },
        record.reason
    );
    if !settings.address.is_empty() {
        let notice = mqtt::notice(topic, &record);
        let address = mqtt::outbound_address(
            &settings.address,
            &uuid::Uuid::new_v4().simple().to_string(),
        );
        let sent = Connection::open(
            &address,
            &settings.username,
            &settings.password,
            settings.keep_alive_seconds,
        )
        .and_then(|connection| connection.publish(&notice.topic, &notice.body, Qos::AtLeastOnce));
        if let Err(err) = sent {
            eprintln!(
                "mqtt: cannot publish the rejection notice to {}: {err}",
                notice.topic
            );
        }
    }
    Ok(())
}
