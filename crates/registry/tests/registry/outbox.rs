use anyhow::{Context as _, Result};
use eventplane_registry_api::{
    Credential, DeliveryOutcome, DeliveryStatus, MAX_DELIVERY_ATTEMPTS, Notification, Timestamp,
    pending_notifications, record_delivery,
};
use serde_json::json;

use crate::support::{BASE_URL, Harness, NOW, SHOP_SPEC, api_input, id_at};

const WEBHOOK: &str = "query($id: ID!) { application(id: $id) { webhooks {
    url lastDelivery { status timestamp message attempts done } } } }";

fn app_with_webhooks(h: &Harness) -> Result<String> {
    h.create_app(json!({
        "name": "shop",
        "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://shop.example.com/hook",
                      "auth": {"credential": {"basic": {"username": "eventplane", "password": "pw"}}}}],
    }))
}

fn pending(h: &Harness) -> Result<Vec<Notification>> {
    Ok(pending_notifications(h.store.as_ref(), &h.tenant)?)
}

fn outcome(status: DeliveryStatus, message: &str) -> DeliveryOutcome {
    DeliveryOutcome {
        status,
        message: Some(message.to_owned()),
        at: Timestamp::from_unix_seconds(NOW + 5),
    }
}

#[test]
fn adding_an_event_api_queues_a_configuration_changed_notification() -> Result<()> {
    let h = Harness::new();
    let app = app_with_webhooks(&h)?;
    assert!(
        pending(&h)?.is_empty(),
        "creating without APIs changes no API"
    );
    let api = h.add_api(&app, "orders", SHOP_SPEC)?;

    let notifications = pending(&h)?;
    let [notification] = notifications.as_slice() else {
        panic!("expected one notification, got {notifications:?}");
    };
    assert_eq!(notification.url, "https://shop.example.com/hook");
    assert_eq!(notification.application_id.as_str(), app);
    assert_eq!(notification.attempts, 0);
    let Some(Credential::Basic { username, password }) = notification
        .auth
        .as_ref()
        .and_then(|a| a.credential.as_ref())
    else {
        panic!("expected basic auth, got {:?}", notification.auth);
    };
    assert_eq!((username.as_str(), password.as_str()), ("eventplane", "pw"));
    assert_eq!(
        notification.payload,
        json!({
            "type": "CONFIGURATION_CHANGED",
            "notificationID": notification.id.as_str(),
            "webhookID": notification.webhook_id.as_str(),
            "timestamp": "2023-11-14T22:13:20Z",
            "application": {
                "id": app,
                "name": "shop",
                "eventingConfiguration": {"defaultURL": format!("{BASE_URL}/events/shop/v1/events")},
            },
            "changes": [{"eventAPI": {"id": api, "action": "added"}}],
        })
    );
    Ok(())
}

#[test]
fn updates_deletes_and_renames_are_notified_too() -> Result<()> {
    let h = Harness::new();
    let app = app_with_webhooks(&h)?;
    let api = h.add_api(&app, "orders", SHOP_SPEC)?;
    h.ok(
        "mutation($id: ID!, $in: EventAPIDefinitionInput!) { updateEventAPI(id: $id, in: $in) { id } }",
        json!({"id": api, "in": api_input("orders", SHOP_SPEC)}),
    )?;
    h.ok(
        "mutation($id: ID!) { deleteEventAPI(id: $id) { id } }",
        json!({"id": api}),
    )?;
    h.ok(
        "mutation($id: ID!) { updateApplication(id: $id, in: {name: \"webshop\"}) { id } }",
        json!({"id": app}),
    )?;
    let changes: Vec<_> = pending(&h)?
        .into_iter()
        .map(|n| n.payload["changes"].clone())
        .collect();
    assert_eq!(
        changes,
        [
            json!([{"eventAPI": {"id": api, "action": "added"}}]),
            json!([{"eventAPI": {"id": api, "action": "updated"}}]),
            json!([{"eventAPI": {"id": api, "action": "deleted"}}]),
            json!([{"eventingConfiguration": {"defaultURL": format!("{BASE_URL}/events/webshop/v1/events")}}]),
        ]
    );
    Ok(())
}

#[test]
fn a_successful_delivery_leaves_the_outbox_and_shows_on_the_webhook() -> Result<()> {
    let h = Harness::new();
    let app = app_with_webhooks(&h)?;
    h.add_api(&app, "orders", SHOP_SPEC)?;
    let notification = pending(&h)?.into_iter().next().context("a notification")?;
    record_delivery(
        h.store.as_ref(),
        &h.tenant,
        &notification.id,
        outcome(DeliveryStatus::Succeeded, "HTTP 204"),
        true,
    )?;
    assert!(pending(&h)?.is_empty());
    assert!(!h.keys().iter().any(|key| key.contains("/r/ntf/")));
    let data = h.ok(WEBHOOK, json!({"id": app}))?;
    assert_eq!(
        data["application"]["webhooks"][0]["lastDelivery"],
        json!({"status": "SUCCEEDED", "timestamp": "2023-11-14T22:13:25Z",
               "message": "HTTP 204", "attempts": 1, "done": true})
    );
    // Reporting again (another instance got there first) is harmless.
    record_delivery(
        h.store.as_ref(),
        &h.tenant,
        &notification.id,
        outcome(DeliveryStatus::Failed, "late"),
        true,
    )?;
    let data = h.ok(WEBHOOK, json!({"id": app}))?;
    assert_eq!(
        data["application"]["webhooks"][0]["lastDelivery"]["status"],
        "SUCCEEDED"
    );
    Ok(())
}

#[test]
fn failed_deliveries_stay_pending_until_the_last_attempt() -> Result<()> {
    let h = Harness::new();
    let app = app_with_webhooks(&h)?;
    h.add_api(&app, "orders", SHOP_SPEC)?;
    for attempt in 1..=MAX_DELIVERY_ATTEMPTS {
        let notification = pending(&h)?.into_iter().next().context("still pending")?;
        assert_eq!(notification.attempts, attempt - 1);
        let done = notification.is_last_attempt();
        assert_eq!(done, attempt == MAX_DELIVERY_ATTEMPTS);
        record_delivery(
            h.store.as_ref(),
            &h.tenant,
            &notification.id,
            outcome(DeliveryStatus::Failed, "HTTP 503"),
            done,
        )?;
        let data = h.ok(WEBHOOK, json!({"id": app}))?;
        let last = &data["application"]["webhooks"][0]["lastDelivery"];
        assert_eq!(last["status"], "FAILED");
        assert_eq!(last["message"], "HTTP 503");
        assert_eq!(last["attempts"], attempt);
        assert_eq!(last["done"], done);
    }
    assert!(pending(&h)?.is_empty());
    Ok(())
}

#[test]
fn notifications_follow_webhook_updates_and_die_with_the_webhook() -> Result<()> {
    let h = Harness::new();
    let app = app_with_webhooks(&h)?;
    h.add_api(&app, "orders", SHOP_SPEC)?;
    let data = h.ok(
        "query($id: ID!) { application(id: $id) { webhooks { id } } }",
        json!({"id": app}),
    )?;
    let webhook = id_at(&data, "/application/webhooks/0/id")?;
    h.ok(
        "mutation($id: ID!) { updateApplicationWebhook(webhookID: $id,
            in: {type: CONFIGURATION_CHANGED, url: \"https://moved.example.com/hook\"}) { id } }",
        json!({"id": webhook}),
    )?;
    let notifications = pending(&h)?;
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0].url, "https://moved.example.com/hook");
    assert_eq!(notifications[0].auth, None);

    h.ok(
        "mutation($id: ID!) { deleteApplicationWebhook(webhookID: $id) { id } }",
        json!({"id": webhook}),
    )?;
    assert!(pending(&h)?.is_empty());
    assert!(
        !h.keys().iter().any(|key| key.contains("/r/ntf/")),
        "{:?}",
        h.keys()
    );
    Ok(())
}

#[test]
fn an_application_without_webhooks_queues_nothing() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "quiet"}))?;
    h.add_api(&app, "orders", SHOP_SPEC)?;
    assert!(pending(&h)?.is_empty());
    assert!(
        !h.keys().iter().any(|key| key.contains("outbox")),
        "{:?}",
        h.keys()
    );
    Ok(())
}
