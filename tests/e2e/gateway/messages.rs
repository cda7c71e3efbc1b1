//! Issue 21: a channel with several messages is one event type per message, and the gateway
//! holds each event's data to the schema of the message its `type` names.

use serde_json::json as j;

use super::{Client, SHOP, access_token, client_credentials, cloud_event};
use crate::e2e_test;
use crate::registry::{Registry, api_input};

/// One channel with two messages (the first named by its `ce-type` header, the second by its
/// key), and a channel whose address has a parameter.
const ORDERS_3_0: &str = r#"
asyncapi: 3.0.0
info: { title: Orders, version: "1.0.0" }
channels:
  orders:
    address: shop.orders
    messages:
      created:
        headers:
          type: object
          properties:
            ce-type: { const: shop.order.created.v1 }
        payload:
          type: object
          required: [orderId]
          properties:
            orderId: { type: string }
      cancelled:
        contentType: application/json
        payload:
          type: object
          required: [reason]
          properties:
            orderId: { type: integer }
            reason: { type: string }
  stock:
    address: shop.{region}.stock.changed.v1
    messages:
      changed:
        payload: { type: object, required: [sku] }
"#;

e2e_test! {
    async fn each_message_of_a_channel_is_an_event_type_with_its_own_schema() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({ "name": SHOP })).await?;
        let api = g.add_api(&app, api_input("orders", ORDERS_3_0)).await?;
        let data = g
            .ok(
                "query($id: ID!) { eventAPI(id: $id) { events {
                    name version channel message contentType schemaFormat deprecated } } }",
                j!({"id": api}),
            )
            .await?;
        assert_eq!(
            data["eventAPI"]["events"],
            j!([
                {"name": "shop.order.created.v1", "version": "v1", "channel": "orders",
                 "message": "created", "contentType": null, "schemaFormat": null,
                 "deprecated": false},
                {"name": "cancelled", "version": "1.0.0", "channel": "orders",
                 "message": "cancelled", "contentType": "application/json", "schemaFormat": null,
                 "deprecated": false},
                {"name": "shop.{region}.stock.changed.v1", "version": "v1", "channel": "stock",
                 "message": "changed", "contentType": null, "schemaFormat": null,
                 "deprecated": false},
            ])
        );
        let (client_id, secret) = client_credentials(&g, &app).await?;
        let token = access_token(&r.app, &client_id, &secret).await?;
        let c = Client::new(&r.app).token(&token);

        // An event of each message, under the type its entry is named by.
        let created = cloud_event("m-1", "shop.order.created.v1", j!({"orderId": "o-1"}));
        c.structured(&created).await?.expect(202, "created")?;
        let cancelled = cloud_event("m-2", "cancelled", j!({"orderId": 1, "reason": "late"}));
        c.structured(&cancelled).await?.expect(202, "cancelled")?;
        let stock = cloud_event("m-3", "shop.eu.stock.changed.v1", j!({"sku": "A-1"}));
        c.structured(&stock).await?.expect(202, "stock, parameterised address")?;

        // The created message's data under the cancelled type: held to cancelled's schema.
        let answer = c
            .structured(&cloud_event("m-4", "cancelled", j!({"orderId": "o-1"})))
            .await?;
        answer.expect(422, "created's data as cancelled")?;
        assert_eq!(answer.code(), Some("PAYLOAD_SCHEMA_VIOLATION"), "{}", answer.text);
        assert!(answer.names("/data/orderId"), "{}", answer.text);
        // And the channel's address is no event type of its own any more.
        let answer = c.structured(&cloud_event("m-5", "shop.orders", j!({}))).await?;
        answer.expect(422, "the channel's address")?;
        assert_eq!(answer.code(), Some("EVENT_TYPE_NOT_REGISTERED"), "{}", answer.text);
        r.stop().await
    }
}
