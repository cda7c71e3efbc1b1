//! Publishing with our tokens in every mode (binary, structured, batch, Kyma legacy), the
//! subscribed-events listing, idempotency (also under 64 concurrent identical publishes), and
//! durability across a restart, checked in the store itself.

use serde_json::json as j;

use super::{
    Answer, Client, SHOP, SHOP_SOURCE, Shop, TIME, cloud_event, legacy_order, order, stored,
};
use crate::e2e_test;
use crate::registry::Registry;

/// Checks a `202` single-event answer for publisher id `id`; its `eventId`.
fn accepted(answer: &Answer, id: &str, duplicate: bool) -> anyhow::Result<String> {
    answer.expect(202, id)?;
    let body = &answer.body;
    anyhow::ensure!(body["id"] == id, "id: {body}");
    anyhow::ensure!(body["source"] == SHOP_SOURCE, "source: {body}");
    anyhow::ensure!(
        body["duplicate"] == duplicate,
        "duplicate should be {duplicate}: {body}"
    );
    let event_id = body["eventId"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(event_id.starts_with("evt_"), "eventId: {body}");
    Ok(event_id)
}

e2e_test! {
    async fn binary_structured_and_batch_events_are_accepted_and_stored() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let shop = Shop::start_in(state.path(), &[]).await?;
        let c = shop.client();

        // Binary mode: attributes in ce-* headers (an extension too), the body is the data.
        let answer = c
            .binary("bin-1", "order.created.v1", &[("ce-traceparent", "00-abc-def-01")], &j!({"orderId": "bin-1"}))
            .await?;
        let binary_id = accepted(&answer, "bin-1", false)?;

        // Structured mode.
        let answer = c.structured(&order("str-1")).await?;
        let structured_id = accepted(&answer, "str-1", false)?;
        assert_ne!(binary_id, structured_id);

        // Batch mode: three events, answered in order.
        let batch = [
            order("batch-1"),
            cloud_event("batch-2", "order.cancelled.v1", j!({"orderId": "batch-1"})),
            order("batch-3"),
        ];
        let answer = c.batch(&batch).await?;
        answer.expect(202, "batch")?;
        let events = answer.body["events"].as_array().cloned().unwrap_or_default();
        assert_eq!(events.len(), 3, "{}", answer.body);
        for (event, id) in events.iter().zip(["batch-1", "batch-2", "batch-3"]) {
            assert_eq!(event["id"], id, "{}", answer.body);
            assert_eq!(event["source"], SHOP_SOURCE);
            assert_eq!(event["duplicate"], false, "{}", answer.body);
            assert!(event["eventId"].as_str().is_some_and(|e| e.starts_with("evt_")), "{event}");
        }
        shop.stop().await?;

        let store = stored(state.path(), "default")?;
        assert_eq!(
            store.publisher_ids(),
            ["batch-1", "batch-2", "batch-3", "bin-1", "str-1"],
            "{:#?}",
            store.events
        );
        store.check_pending_once()?;
        let binary = store
            .events
            .iter()
            .find(|e| e["eventId"] == "bin-1")
            .cloned()
            .unwrap_or_default();
        assert_eq!(binary["id"], binary_id.as_str());
        assert_eq!(binary["source"], SHOP_SOURCE);
        assert_eq!(binary["application"], SHOP);
        assert_eq!(binary["tenant"], "default");
        assert_eq!(binary["time"], TIME, "the time is kept as sent");
        Ok(())
    }
}

e2e_test! {
    async fn the_same_source_and_id_is_stored_once() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let shop = Shop::start_in(state.path(), &[]).await?;
        let c = shop.client();

        let first = accepted(&c.structured(&order("dup-1")).await?, "dup-1", false)?;
        let again = accepted(&c.structured(&order("dup-1")).await?, "dup-1", true)?;
        assert_eq!(first, again);
        // The same source and id in another mode is the same event.
        let binary = c.binary("dup-1", "order.created.v1", &[], &j!({"orderId": "dup-1"})).await?;
        assert_eq!(accepted(&binary, "dup-1", true)?, first);
        // In a batch, each entry says whether it was a repeat.
        let answer = c.batch(&[order("dup-1"), order("dup-2")]).await?;
        answer.expect(202, "batch")?;
        assert_eq!(answer.body["events"][0]["duplicate"], true, "{}", answer.body);
        assert_eq!(answer.body["events"][0]["eventId"], first.as_str());
        assert_eq!(answer.body["events"][1]["duplicate"], false, "{}", answer.body);
        shop.stop().await?;

        let store = stored(state.path(), "default")?;
        assert_eq!(store.publisher_ids(), ["dup-1", "dup-2"], "{:#?}", store.events);
        store.check_pending_once()
    }
}

e2e_test! {
    async fn legacy_events_are_answered_in_kymas_shape() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let shop = Shop::start_in(state.path(), &[]).await?;
        let c = shop.client();

        let id = uuid::Uuid::new_v4().to_string();
        let answer = c.legacy(SHOP, &legacy_order(&id)).await?;
        answer.expect(200, "legacy publish")?;
        assert_eq!(answer.body, j!({"event-id": id, "status": 200, "reason": "Event published"}));

        // A repeat of the same event-id is accepted, not stored again.
        let answer = c.legacy(SHOP, &legacy_order(&id)).await?;
        answer.expect(200, "legacy repeat")?;
        assert_eq!(answer.body, j!({"event-id": id, "status": 200, "reason": "Event already published"}));

        // Without an event-id, the gateway makes one (a UUID) and answers it.
        let mut body = legacy_order("unused");
        body.as_object_mut().map(|b| b.remove("event-id"));
        let answer = c.legacy(SHOP, &body).await?;
        answer.expect(200, "legacy without event-id")?;
        let generated = answer.body["event-id"].as_str().unwrap_or_default().to_owned();
        assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{}", answer.body);
        assert_eq!(answer.body["reason"], "Event published");
        shop.stop().await?;

        let store = stored(state.path(), "default")?;
        let mut expected = vec![id, generated];
        expected.sort();
        assert_eq!(store.publisher_ids(), expected, "{:#?}", store.events);
        assert!(store.events.iter().all(|e| e["source"] == SHOP_SOURCE), "{:#?}", store.events);
        store.check_pending_once()
    }
}

e2e_test! {
    async fn subscribed_lists_no_event_types_before_any_subscription() -> anyhow::Result<()> {
        let shop = Shop::start().await?;
        let answer = shop.client().subscribed(SHOP).await?;
        answer.expect(200, "subscribed")?;
        assert_eq!(answer.body, j!({"eventsInfo": []}));
        // It needs a token too.
        let answer = shop.client().anonymous().subscribed(SHOP).await?;
        answer.expect(401, "subscribed without a token")?;
        assert_eq!(answer.challenge(), Some("Bearer realm=\"eventplane\""));
        shop.stop().await
    }
}

e2e_test! {
    async fn subscribed_lists_the_event_types_active_subscriptions_receive() -> anyhow::Result<()> {
        use crate::subscriptions::{Api, id_of};
        let shop = Shop::start().await?;
        let subs = Api::new(&shop.r.app);
        let subscribed = |answer: super::Answer| answer.body["eventsInfo"].clone();
        // A subscription to another application's events, and one to a type the shop does not
        // publish, change nothing.
        for filter in [j!({"application": "erp"}), j!({"types": ["invoice.paid.v1"]})] {
            subs.create(&j!({"name": "elsewhere", "sink": {"url": "https://a.example/h"},
                             "filter": filter}))
                .await?;
        }
        let answer = shop.client().subscribed(SHOP).await?;
        answer.expect(200, "subscribed")?;
        assert_eq!(subscribed(answer), j!([]));
        // A prefix with an attribute criterion: the attribute depends on each event, so the
        // type counts as subscribed.
        let cancelled = subs
            .create(&j!({"name": "cancellations", "sink": {"url": "https://a.example/h"},
                         "filter": {"application": SHOP, "typePrefix": "order.cancelled",
                                    "attributes": {"region": "eu"}}}))
            .await?;
        let answer = shop.client().subscribed(SHOP).await?;
        assert_eq!(
            subscribed(answer),
            j!([{"name": "order.cancelled.v1", "version": "v1"}])
        );
        // Every event of the shop's source: both types, in catalog order.
        subs.create(&j!({"name": "all", "sink": {"url": "https://a.example/h"},
                         "filter": {"source": SHOP_SOURCE}}))
            .await?;
        let answer = shop.client().subscribed(SHOP).await?;
        assert_eq!(
            subscribed(answer),
            j!([{"name": "order.created.v1", "version": "v1"},
                {"name": "order.cancelled.v1", "version": "v1"}])
        );
        // Paused subscriptions do not count.
        let all = subs.list("").await?;
        for view in all["data"].as_array().into_iter().flatten() {
            if view["name"] == "all" {
                let path = format!("/{}/pause", id_of(view)?);
                subs.call(reqwest::Method::POST, &path, None).await?;
            }
        }
        let answer = shop.client().subscribed(SHOP).await?;
        assert_eq!(
            subscribed(answer),
            j!([{"name": "order.cancelled.v1", "version": "v1"}]),
            "{}",
            id_of(&cancelled)?
        );
        shop.stop().await
    }
}

e2e_test! {
    async fn sixty_four_concurrent_identical_publishes_store_one_event() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let shop = Shop::start_in(state.path(), &[]).await?;
        let c = shop.client();
        // Warm up (a first request may compile or fetch what later ones reuse).
        c.structured(&order("warm-up")).await?.expect(202, "warm-up")?;

        let event = order("race-1");
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (c, event) = (c.clone(), event.clone());
                tokio::spawn(async move { c.structured(&event).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await??);
        }
        for answer in &answers {
            answer.expect(202, "concurrent publish")?;
        }
        let firsts = answers.iter().filter(|a| a.body["duplicate"] == false).count();
        assert_eq!(firsts, 1, "exactly one publish is not a duplicate");
        let ids: std::collections::BTreeSet<&str> =
            answers.iter().filter_map(|a| a.body["eventId"].as_str()).collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
        shop.stop().await?;

        let store = stored(state.path(), "default")?;
        assert_eq!(store.publisher_ids(), ["race-1", "warm-up"], "{:#?}", store.events);
        store.check_pending_once()
    }
}

e2e_test! {
    async fn accepted_events_survive_a_restart() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let shop = Shop::start_in(state.path(), &[]).await?;
        let token = shop.token.clone();
        let first = accepted(&shop.client().structured(&order("keep-1")).await?, "keep-1", false)?;
        let legacy_id = uuid::Uuid::new_v4().to_string();
        shop.client().legacy(SHOP, &legacy_order(&legacy_id)).await?.expect(200, "legacy")?;
        shop.stop().await?;

        // Same state directory: the store (events and the generated signing key) is kept, so the
        // token still verifies and the events are known.
        let r = Registry::start_in(state.path(), &[]).await?;
        let c = Client::new(&r.app).token(&token);
        let again = accepted(&c.structured(&order("keep-1")).await?, "keep-1", true)?;
        assert_eq!(first, again);
        let answer = c.legacy(SHOP, &legacy_order(&legacy_id)).await?;
        answer.expect(200, "legacy after restart")?;
        assert_eq!(answer.body["reason"], "Event already published", "{}", answer.body);
        r.stop().await?;

        let store = stored(state.path(), "default")?;
        let mut expected = vec!["keep-1".to_owned(), legacy_id];
        expected.sort();
        assert_eq!(store.publisher_ids(), expected);
        store.check_pending_once()
    }
}
