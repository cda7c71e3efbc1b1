//! Delivery records in the publisher's terms, through the real application: attempts and dead
//! letters carry the CloudEvents `id`, `source` and `type`, and attempts, dead letters and
//! redelivery take eventplane's id or the publisher's (with `source` to choose between two
//! sources that sent the same id: without it, `409` naming both).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use eventplane_tests::{Reply, TestServer};
use reqwest::Method;
use serde_json::{Value, json as j};

use super::delivery::{ENV, SECRET, call, tick};
use super::{Api, id_of};
use crate::e2e_test;
use crate::gateway::{Client, SHOP_EVENTS_SPEC, Shop, access_token, client_credentials, order};
use crate::registry::api_input;

const SHOP_SOURCE: &str = "/applications/shop";
const ERP_SOURCE: &str = "/applications/erp";
const SHOP_Q: &str = "%2Fapplications%2Fshop";
const ERP_Q: &str = "%2Fapplications%2Ferp";

/// Registers the application `erp` with the shop's event API; a client publishing as it.
async fn erp(shop: &Shop) -> anyhow::Result<Client> {
    let g = shop.r.gql();
    let app_id = g.create_app(j!({ "name": "erp" })).await?;
    g.add_api(&app_id, api_input("orders", SHOP_EVENTS_SPEC))
        .await?;
    let (client_id, secret) = client_credentials(&g, &app_id).await?;
    let token = access_token(&shop.r.app, &client_id, &secret).await?;
    Ok(Client::new(&shop.r.app).token(&token))
}

/// `GET` a listing; its `data` (after checking the status is 200).
async fn list(shop: &Shop, path: &str) -> anyhow::Result<Vec<Value>> {
    let (status, page) = call(shop, Method::GET, path, None).await?;
    anyhow::ensure!(status == 200, "{path}: {status} {page}");
    Ok(page["data"].as_array().cloned().unwrap_or_default())
}

/// The `(cloudEvent.source, cloudEvent.id)` of each record, sorted.
fn named(records: &[Value]) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let text = |name: &str| r["cloudEvent"][name].as_str().unwrap_or("?").to_owned();
            (text("source"), text("id"))
        })
        .collect();
    names.sort();
    names
}

fn pair(source: &str, id: &str) -> (String, String) {
    (source.to_owned(), id.to_owned())
}

e2e_test! {
    async fn records_name_the_publishers_event_and_either_id_finds_them() -> anyhow::Result<()> {
        let accept = Arc::new(AtomicBool::new(false));
        let flag = accept.clone();
        let subscriber = TestServer::start_with(move |_| {
            if flag.load(Ordering::SeqCst) {
                Reply::new(200, "ok")
            } else {
                Reply::new(400, "unknown order")
            }
        })
        .await?;
        let shop = Shop::start_with(ENV).await?;
        let erp = erp(&shop).await?;
        let subs = Api::new(&shop.r.app);
        let sub = id_of(&subs.create(&j!({
            "name": "all orders", "sink": {"url": subscriber.url("/in")},
            "filter": {"types": ["order.created.v1"]}, "signing": {"secret": SECRET},
        })).await?)?;
        // Two sources send the id 4711; only the shop sends 4712.
        shop.client().structured(&order("4711")).await?.expect(202, "shop 4711")?;
        let mut from_erp = order("4711");
        from_erp["source"] = j!(ERP_SOURCE);
        erp.structured(&from_erp).await?.expect(202, "erp 4711")?;
        shop.client().structured(&order("4712")).await?.expect(202, "shop 4712")?;
        assert_eq!(tick(&shop).await?["deadLettered"], 3, "the subscriber refused all three");

        // Every attempt and dead letter names the event both ways.
        let attempts = list(&shop, &format!("/{sub}/attempts")).await?;
        assert_eq!(
            named(&attempts),
            [pair(ERP_SOURCE, "4711"), pair(SHOP_SOURCE, "4711"), pair(SHOP_SOURCE, "4712")]
        );
        for attempt in &attempts {
            assert_eq!(attempt["cloudEvent"]["type"], "order.created.v1", "{attempt}");
            assert!(attempt["eventId"].as_str().is_some_and(|id| id.starts_with("evt_")));
        }
        let letters = list(&shop, &format!("/{sub}/dead-letters")).await?;
        assert_eq!(named(&letters), named(&attempts));
        let shop_4711 = letters
            .iter()
            .find(|l| l["cloudEvent"]["source"] == SHOP_SOURCE && l["cloudEvent"]["id"] == "4711")
            .and_then(|l| l["eventId"].as_str())
            .unwrap_or_default()
            .to_owned();

        // Attempts: by the publisher's id, alone or with its source, and by ours.
        let one = list(&shop, &format!("/{sub}/attempts?eventId=4712")).await?;
        assert_eq!(named(&one), [pair(SHOP_SOURCE, "4712")]);
        let (status, answer) = call(&shop, Method::GET, &format!("/{sub}/attempts?eventId=4711"), None).await?;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["error"]["code"], "CONFLICT");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(SHOP_SOURCE) && message.contains(ERP_SOURCE), "{message}");
        let chosen = list(&shop, &format!("/{sub}/attempts?eventId=4711&source={ERP_Q}")).await?;
        assert_eq!(named(&chosen), [pair(ERP_SOURCE, "4711")]);
        let ours = list(&shop, &format!("/{sub}/attempts?eventId={shop_4711}")).await?;
        assert_eq!(named(&ours), [pair(SHOP_SOURCE, "4711")]);
        let from_shop = list(&shop, &format!("/{sub}/attempts?source={SHOP_Q}")).await?;
        assert_eq!(named(&from_shop), [pair(SHOP_SOURCE, "4711"), pair(SHOP_SOURCE, "4712")]);
        assert!(list(&shop, &format!("/{sub}/attempts?eventId=9999")).await?.is_empty());

        // Dead letters: the same.
        let (status, answer) = call(&shop, Method::GET, &format!("/{sub}/dead-letters?eventId=4711"), None).await?;
        assert_eq!(status, 409, "{answer}");
        let chosen = list(&shop, &format!("/{sub}/dead-letters?eventId=4711&source={SHOP_Q}")).await?;
        assert_eq!(named(&chosen), [pair(SHOP_SOURCE, "4711")]);
        let one = list(&shop, &format!("/{sub}/dead-letters?eventId=4712")).await?;
        assert_eq!(named(&one), [pair(SHOP_SOURCE, "4712")]);
        let from_erp = list(&shop, &format!("/{sub}/dead-letters?source={ERP_Q}")).await?;
        assert_eq!(named(&from_erp), [pair(ERP_SOURCE, "4711")]);
        assert!(list(&shop, &format!("/{sub}/dead-letters?eventId=9999")).await?.is_empty());

        // Redelivery: ambiguous, unknown, then each of the three by a different name.
        let redeliver = |event: &str| format!("/{sub}/dead-letters/{event}/redeliver");
        let (status, answer) = call(&shop, Method::POST, &redeliver("4711"), None).await?;
        assert_eq!(status, 409, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(SHOP_SOURCE) && message.contains(ERP_SOURCE), "{message}");
        let (status, answer) = call(&shop, Method::POST, &redeliver("9999"), None).await?;
        assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("NOT_FOUND")), "{answer}");
        let (status, answer) =
            call(&shop, Method::POST, &format!("{}?source={ERP_Q}", redeliver("4711")), None).await?;
        assert_eq!(status, 202, "{answer}");
        let (status, answer) = call(&shop, Method::POST, &redeliver(&shop_4711), None).await?;
        assert_eq!(status, 202, "{answer}");
        let (status, answer) = call(&shop, Method::POST, &redeliver("4712"), None).await?;
        assert_eq!(status, 202, "{answer}");
        assert!(list(&shop, &format!("/{sub}/dead-letters")).await?.is_empty());

        accept.store(true, Ordering::SeqCst);
        assert_eq!(tick(&shop).await?["succeeded"], 3);
        let received = subscriber.received();
        let mut delivered: Vec<_> = received[3..]
            .iter()
            .map(|r| pair(r.header("ce-source").unwrap_or("?"), r.header("ce-id").unwrap_or("?")))
            .collect();
        delivered.sort();
        assert_eq!(delivered, named(&attempts), "what the subscriber saw is what the records say");
        // Nothing left to redeliver, by either name.
        let (status, _) = call(&shop, Method::POST, &redeliver("4712"), None).await?;
        assert_eq!(status, 404);
        shop.stop().await
    }
}
