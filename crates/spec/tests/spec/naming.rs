//! How catalog entries are named: by the channel when it carries one message, by each message
//! when a channel carries several or shares its address (issue 21).

use eventplane_spec::{EventType, parse};
use serde_json::json;

use super::fixture;

/// `(name, version)` of every entry.
fn names(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(parse(text, None)?
        .events
        .into_iter()
        .map(|e| (e.name, e.version))
        .collect())
}

/// The error's `(path, message)` for a document that must be refused.
fn refused(text: &str) -> anyhow::Result<(String, String)> {
    match parse(text, None) {
        Ok(spec) => anyhow::bail!("accepted: {:?}", spec.events),
        Err(err) => Ok((err.path, err.message)),
    }
}

#[test]
fn single_message_channels_keep_their_channel_names_in_every_fixture() -> anyhow::Result<()> {
    let pinned: [(&str, &[&str]); 9] = [
        (
            "payments-2.3.json",
            &[
                "payment.authorized.v1",
                "payment.captured.v1",
                "refund.issued.v2",
            ],
        ),
        (
            "crm-unversioned-2.2.yaml",
            &[
                "lead/created",
                "lead/converted",
                "contact.deleted",
                "opportunity.won.version2",
            ],
        ),
        (
            "erp-3.0.1.yaml",
            &[
                "erp.purchaseorder.created.v1",
                "erp.purchaseorder.changed.v1",
                "erp.supplierinvoice.posted.v2",
                "erp.material.changed.v3",
            ],
        ),
        (
            "shop-2.4.yaml",
            &[
                "order.created.v1",
                "order.cancelled.v2",
                "order.shipped.v1",
                "customer.created.v1",
                "customer.updated.v1",
                "cart.abandoned.v1",
            ],
        ),
        (
            "greenhouse-2.0.yaml",
            &[
                "greenhouse/{zoneId}/temperature",
                "greenhouse/{zoneId}/irrigation",
            ],
        ),
        (
            "bank-accounts-3.0.yaml",
            &["accounts.opened.v1", "accounts.closed.v2", "balanceAlert"],
        ),
        (
            "robot-fleet-3.1.yaml",
            &["robot.battery.v1", "robot.estop.v2"],
        ),
        // The other channels of these carry several messages (see the tests below).
        (
            "logistics-2.6.yaml",
            &["depot.scan.v3", "shipment.label.v1"],
        ),
        ("chat-3.0.json", &["presence", "attachments.uploaded.v2"]),
    ];
    for (file, expected) in pinned {
        let spec = parse(&fixture(file)?, None)?;
        let single: Vec<&str> = spec
            .events
            .iter()
            .filter(|e| {
                spec.events
                    .iter()
                    .filter(|o| o.channel == e.channel)
                    .count()
                    == 1
            })
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(single, expected, "{file}");
    }
    Ok(())
}

#[test]
fn a_2_x_channel_with_several_messages_gives_one_entry_per_message() -> anyhow::Result<()> {
    let spec = parse(
        r#"
asyncapi: 2.6.0
info: {title: Orders, version: '1.0.0'}
defaultContentType: application/json
channels:
  orders:
    description: Everything that happens to an order.
    subscribe:
      message:
        oneOf:
          - messageId: order.created.v1
            name: OrderCreated
            summary: An order was placed.
            payload: {type: object, required: [orderId]}
          - name: OrderCancelled
            contentType: application/cloudevents+json
            deprecated: true
            schemaFormat: application/schema+json;version=draft-07
            payload: {type: object, required: [reason]}
"#,
        None,
    )?;
    assert_eq!(
        spec.events,
        [
            EventType {
                name: "order.created.v1".into(),
                version: "v1".into(),
                channel: Some("orders".into()),
                message: Some("order.created.v1".into()),
                content_type: Some("application/json".into()),
                schema_format: None,
                summary: Some("An order was placed.".into()),
                deprecated: false,
                payload_schema: Some(json!({"type": "object", "required": ["orderId"]})),
            },
            EventType {
                name: "OrderCancelled".into(),
                version: "1.0.0".into(),
                channel: Some("orders".into()),
                message: Some("OrderCancelled".into()),
                content_type: Some("application/cloudevents+json".into()),
                schema_format: Some("application/schema+json;version=draft-07".into()),
                summary: Some("Everything that happens to an order.".into()),
                deprecated: true,
                payload_schema: Some(json!({"type": "object", "required": ["reason"]})),
            },
        ]
    );
    Ok(())
}

#[test]
fn a_3_x_channel_with_several_messages_gives_one_entry_per_message_key() -> anyhow::Result<()> {
    let spec = parse(
        r#"
asyncapi: 3.0.0
info: {title: Orders, version: '2.1.0'}
channels:
  orders:
    address: shop.orders
    messages:
      created:
        title: Order created
        payload: {type: object, required: [orderId]}
      shipped:
        $ref: '#/components/messages/Shipped'
components:
  messages:
    Shipped:
      deprecated: true
      payload:
        schemaFormat: application/vnd.apache.avro;version=1.9.0
        schema: {type: record, name: Shipped, fields: []}
"#,
        None,
    )?;
    assert_eq!(
        spec.events,
        [
            EventType {
                name: "created".into(),
                version: "2.1.0".into(),
                channel: Some("orders".into()),
                message: Some("created".into()),
                content_type: None,
                schema_format: None,
                summary: Some("Order created".into()),
                deprecated: false,
                payload_schema: Some(json!({"type": "object", "required": ["orderId"]})),
            },
            EventType {
                name: "shipped".into(),
                version: "2.1.0".into(),
                channel: Some("orders".into()),
                message: Some("shipped".into()),
                content_type: None,
                schema_format: Some("application/vnd.apache.avro;version=1.9.0".into()),
                summary: None,
                deprecated: true,
                payload_schema: Some(json!({
                    "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
                    "schema": {"type": "record", "name": "Shipped", "fields": []}
                })),
            },
        ]
    );
    Ok(())
}

#[test]
fn a_ce_type_header_names_the_entry() -> anyhow::Result<()> {
    let text = r#"
asyncapi: 3.0.0
info: {title: Orders, version: '1'}
channels:
  orders:
    messages:
      created:
        headers:
          type: object
          properties:
            ce-type: {const: sap.shop.order.created.v1}
        payload: {type: object}
      cancelled:
        headers: {$ref: '#/components/schemas/CancelledHeaders'}
        payload: {type: object}
      shipped:
        headers:
          type: object
          properties:
            ce_type: {type: string, enum: [sap.shop.order.shipped.v2]}
      noted:
        headers:
          type: object
          properties:
            ce-type: {type: string, enum: [a.v1, b.v1]}
components:
  schemas:
    CancelledHeaders:
      type: object
      properties:
        ce_type: {$ref: '#/components/schemas/CancelledType'}
    CancelledType: {type: string, const: sap.shop.order.cancelled.v1}
"#;
    assert_eq!(
        names(text)?,
        [
            ("sap.shop.order.created.v1".into(), "v1".into()),
            ("sap.shop.order.cancelled.v1".into(), "v1".into()),
            ("sap.shop.order.shipped.v2".into(), "v2".into()),
            // Several values state no one type: the message's name it is.
            ("noted".into(), "1".into()),
        ]
    );
    // A channel with one message keeps the channel's name whatever its headers say.
    let single = r#"
asyncapi: 2.6.0
info: {title: Orders, version: '1'}
channels:
  order.created.v1:
    publish:
      message:
        headers: {type: object, properties: {ce-type: {const: other.v1}}}
        payload: {type: object}
"#;
    assert_eq!(names(single)?, [("order.created.v1".into(), "v1".into())]);
    Ok(())
}

const SHARED_ADDRESS: &str = r#"
asyncapi: 3.0.0
info: {title: Pricing, version: '1'}
channels:
  quoteRequests:
    address: /ws/quotes
    messages:
      quote.requested.v1: {payload: {type: object, required: [sku]}}
  quoteReplies:
    address: /ws/quotes
    messages:
      quote.given.v1: {payload: {type: object, required: [price]}}
      quote.refused.v1: {payload: {type: object, required: [reason]}}
operations:
  askQuote:
    action: send
    channel: {$ref: '#/channels/quoteRequests'}
    reply:
      channel: {$ref: '#/channels/quoteReplies'}
"#;

#[test]
fn channels_sharing_an_address_are_named_by_their_messages() -> anyhow::Result<()> {
    let spec = parse(SHARED_ADDRESS, None)?;
    let rows: Vec<_> = spec
        .events
        .iter()
        .map(|e| (e.name.as_str(), e.channel.as_deref(), e.version.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("quote.requested.v1", Some("quoteRequests"), "v1"),
            ("quote.given.v1", Some("quoteReplies"), "v1"),
            ("quote.refused.v1", Some("quoteReplies"), "v1"),
        ]
    );
    Ok(())
}

#[test]
fn a_true_name_clash_is_refused_at_the_second_message() -> anyhow::Result<()> {
    let clash = SHARED_ADDRESS.replace("quote.refused.v1", "quote.requested.v1");
    assert_eq!(
        refused(&clash)?,
        (
            "/channels/quoteReplies/messages/quote.requested.v1".into(),
            "duplicate event type `quote.requested.v1`: messages \
             /channels/quoteRequests/messages/quote.requested.v1 and \
             /channels/quoteReplies/messages/quote.requested.v1 both define it; event types \
             must have distinct names"
                .into()
        )
    );
    // A message named like another channel is a clash too.
    let text = r#"
asyncapi: 2.6.0
info: {title: T, version: '1'}
channels:
  order.created.v1:
    publish: {message: {payload: {type: object}}}
  orders:
    publish:
      message:
        oneOf:
          - {messageId: order.created.v1, payload: {type: object}}
          - {messageId: order.cancelled.v1, payload: {type: object}}
"#;
    assert_eq!(
        refused(text)?,
        (
            "/channels/orders/publish/message/oneOf/0".into(),
            "duplicate event type `order.created.v1`: messages /channels/order.created.v1 and \
             /channels/orders/publish/message/oneOf/0 both define it; event types must have \
             distinct names"
                .into()
        )
    );
    Ok(())
}

#[test]
fn a_message_without_a_name_on_a_channel_with_several_is_refused() -> anyhow::Result<()> {
    let text = r#"
asyncapi: 2.6.0
info: {title: T, version: '1'}
channels:
  orders:
    publish:
      message:
        oneOf:
          - {messageId: created, payload: {type: object}}
          - {payload: {type: object}}
"#;
    assert_eq!(
        refused(text)?,
        (
            "/channels/orders/publish/message/oneOf/1".into(),
            "this message needs a name: channel `orders` carries several messages, so each of \
             its messages is an event type of its own, named by its `ce-type` header's `const`, \
             else its `messageId`, else its `name`"
                .into()
        )
    );
    Ok(())
}

#[test]
fn a_parameterised_address_is_the_name_as_written() -> anyhow::Result<()> {
    let text = r#"
asyncapi: 3.0.0
info: {title: T, version: '1'}
channels:
  orderCreated:
    address: shop.{region}.order.created.v1
    parameters:
      region: {enum: [eu, us]}
    messages:
      created: {payload: {type: object}}
"#;
    assert_eq!(
        names(text)?,
        [("shop.{region}.order.created.v1".into(), "v1".into())]
    );
    Ok(())
}
