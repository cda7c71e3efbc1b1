//! Catalogs of valid documents: names, versions, summaries and resolved payload schemas.

use eventplane_spec::{SpecFormat, parse};
use serde_json::json;

use super::{event, fixture, payload, rows};

#[test]
fn asyncapi_2_0_channels_with_a_message_are_events_versioned_by_info_version() -> anyhow::Result<()>
{
    let spec = parse(&fixture("greenhouse-2.0.yaml")?, None)?;
    assert_eq!(spec.format, SpecFormat::Yaml);
    assert_eq!(spec.asyncapi_version, "2.0.0");
    assert_eq!(spec.title, "Greenhouse Controller");
    assert_eq!(spec.info_version, "0.9.1");
    assert_eq!(
        rows(&spec),
        [
            (
                "greenhouse/{zoneId}/temperature",
                "0.9.1",
                Some("Air temperature of one zone, every minute.")
            ),
            (
                "greenhouse/{zoneId}/irrigation",
                "0.9.1",
                Some("Irrigation command")
            ),
        ]
    );
    assert_eq!(
        payload(&spec, "greenhouse/{zoneId}/temperature")?,
        &json!({
            "type": "object",
            "required": ["celsius", "measuredAt"],
            "properties": {
                "celsius": {"type": "number", "minimum": -40, "maximum": 80},
                "measuredAt": {"type": "string", "format": "date-time"}
            }
        })
    );
    assert_eq!(
        payload(&spec, "greenhouse/{zoneId}/irrigation")?,
        &json!({"type": "object", "properties": {"litres": {"type": "integer", "minimum": 1}}})
    );
    Ok(())
}

#[test]
fn asyncapi_2_3_json_resolves_component_messages_and_nested_schemas() -> anyhow::Result<()> {
    let spec = parse(&fixture("payments-2.3.json")?, None)?;
    assert_eq!(spec.format, SpecFormat::Json);
    assert_eq!(
        (spec.asyncapi_version.as_str(), spec.info_version.as_str()),
        ("2.3.0", "3.2.0")
    );
    assert_eq!(
        rows(&spec),
        [
            (
                "payment.authorized.v1",
                "v1",
                Some("A card payment was authorized.")
            ),
            (
                "payment.captured.v1",
                "v1",
                Some("Funds were captured for an authorized payment.")
            ),
            ("refund.issued.v2", "v2", Some("Refund issued")),
        ]
    );
    let money = json!({
        "type": "object",
        "required": ["amount", "currency"],
        "properties": {
            "amount": {"type": "integer", "description": "In minor units (cents)."},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3}
        }
    });
    let payment_id = json!({"type": "string", "pattern": "^pay_[0-9a-z]{16}$"});
    assert_eq!(
        payload(&spec, "payment.authorized.v1")?,
        &json!({
            "type": "object",
            "required": ["paymentId", "authorized"],
            "properties": {
                "paymentId": payment_id,
                "authorized": money,
                "expiresAt": {"type": "string", "format": "date-time"}
            }
        })
    );
    assert_eq!(
        payload(&spec, "payment.captured.v1")?,
        &json!({
            "type": "object",
            "properties": {"paymentId": payment_id, "captured": money}
        })
    );
    assert_eq!(
        payload(&spec, "refund.issued.v2")?,
        &json!({
            "type": "object",
            "required": ["refundId", "amount"],
            "properties": {
                "refundId": {"type": "string"},
                "amount": money,
                "reason": {"type": "string", "enum": ["duplicate", "fraud", "requested_by_customer"]}
            }
        })
    );
    Ok(())
}

#[test]
fn asyncapi_2_6_one_of_messages_become_one_event_type_each_named_by_message_name()
-> anyhow::Result<()> {
    let spec = parse(&fixture("logistics-2.6.yaml")?, None)?;
    assert_eq!(
        rows(&spec),
        [
            (
                "ShipmentDispatched",
                "2.0.0",
                Some("The shipment left the sender's depot.")
            ),
            ("ShipmentDelivered", "2.0.0", Some("Shipment delivered")),
            (
                "depot.scan.v3",
                "v3",
                Some("A parcel was scanned at a depot.")
            ),
            (
                "shipment.label.v1",
                "v1",
                Some("A shipping label was printed.")
            ),
        ]
    );
    let tracking_number = json!({"type": "string", "pattern": "^[A-Z]{2}[0-9]{9}[A-Z]{2}$"});
    let address = json!({
        "type": "object",
        "required": ["country"],
        "properties": {
            "street": {"type": "string"},
            "postcode": {"type": "string"},
            "country": {"type": "string", "minLength": 2, "maxLength": 2},
            "location": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
        }
    });
    let channels: Vec<_> = spec
        .events
        .iter()
        .map(|e| (e.channel.as_deref(), e.message.as_deref()))
        .collect();
    assert_eq!(
        channels,
        [
            (Some("shipment.status.v1"), Some("ShipmentDispatched")),
            (Some("shipment.status.v1"), Some("ShipmentDelivered")),
            (Some("depot.scan.v3"), None),
            (Some("shipment.label.v1"), None),
        ]
    );
    assert_eq!(
        payload(&spec, "ShipmentDispatched")?,
        &json!(
            {
                "type": "object",
                "required": ["trackingNumber", "from"],
                "properties": {"trackingNumber": tracking_number, "from": address}
            }
        )
    );
    assert_eq!(
        payload(&spec, "ShipmentDelivered")?,
        &json!(
            {
                "type": "object",
                "required": ["trackingNumber", "to"],
                "properties": {
                    "trackingNumber": tracking_number,
                    "to": address,
                    "signedBy": {"type": "string"}
                },
                "examples": [{
                    "trackingNumber": "CX123456789DE",
                    "to": {"$ref": "not a reference, just an example value"}
                }]
            }
        )
    );
    Ok(())
}

#[test]
fn a_message_used_by_both_operations_of_a_2_x_channel_is_one_message() -> anyhow::Result<()> {
    let spec = parse(&fixture("logistics-2.6.yaml")?, None)?;
    assert_eq!(
        payload(&spec, "depot.scan.v3")?,
        &json!({
            "type": "object",
            "properties": {
                "depot": {"type": "string"},
                "trackingNumber": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{9}[A-Z]{2}$"}
            }
        })
    );
    Ok(())
}

#[test]
fn payloads_in_other_schema_formats_are_kept_with_their_format() -> anyhow::Result<()> {
    let logistics = parse(&fixture("logistics-2.6.yaml")?, None)?;
    assert_eq!(
        payload(&logistics, "shipment.label.v1")?,
        &json!({
            "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
            "schema": {
                "type": "record",
                "name": "Label",
                "fields": [{"name": "trackingNumber", "type": "string"}]
            }
        })
    );
    let chat = parse(&fixture("chat-3.0.json")?, None)?;
    assert_eq!(
        payload(&chat, "attachments.uploaded.v2")?,
        &json!({
            "schemaFormat": "application/vnd.apache.avro+json;version=1.9.0",
            "schema": {
                "type": "record",
                "name": "Attachment",
                "fields": [{"name": "fileName", "type": "string"}, {"name": "bytes", "type": "long"}]
            }
        })
    );
    Ok(())
}

#[test]
fn asyncapi_3_0_names_events_by_address_else_by_channel_id() -> anyhow::Result<()> {
    let spec = parse(&fixture("bank-accounts-3.0.yaml")?, None)?;
    assert_eq!(spec.asyncapi_version, "3.0.0");
    assert_eq!(spec.title, "Core Banking Accounts");
    assert_eq!(
        rows(&spec),
        [
            (
                "accounts.opened.v1",
                "v1",
                Some("A customer opened an account.")
            ),
            ("accounts.closed.v2", "v2", None),
            (
                "balanceAlert",
                "5.1.0",
                Some("Balances below the customer's alert threshold.")
            ),
        ]
    );
    let iban = json!({"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"});
    assert_eq!(
        payload(&spec, "accounts.opened.v1")?,
        &json!({
            "type": "object",
            "required": ["iban", "kind"],
            "properties": {"iban": iban, "kind": {"type": "string", "enum": ["current", "savings"]}}
        })
    );
    assert_eq!(
        payload(&spec, "accounts.closed.v2")?,
        &json!({
            "type": "object",
            "required": ["iban", "closedAt"],
            "properties": {"iban": iban, "closedAt": {"type": "string", "format": "date-time"}}
        })
    );
    assert_eq!(
        payload(&spec, "balanceAlert")?,
        &json!({"type": "object", "properties": {"iban": iban, "balance": {"type": "number"}}})
    );
    Ok(())
}

#[test]
fn asyncapi_3_0_json_channels_with_several_messages_get_one_event_type_per_message()
-> anyhow::Result<()> {
    let spec = parse(&fixture("chat-3.0.json")?, None)?;
    assert_eq!(spec.format, SpecFormat::Json);
    assert_eq!(
        rows(&spec),
        [
            ("posted", "2025.3", Some("A message was posted in a room.")),
            ("edited", "2025.3", Some("A message was edited.")),
            ("presence", "2025.3", Some("A user went online or offline.")),
            ("attachments.uploaded.v2", "v2", Some("Attachment uploaded")),
        ]
    );
    let user_id = json!({"type": "string", "format": "uuid"});
    assert_eq!(
        event(&spec, "posted")?.channel.as_deref(),
        Some("room.activity.v1")
    );
    assert_eq!(event(&spec, "edited")?.message.as_deref(), Some("edited"));
    assert_eq!(
        payload(&spec, "posted")?,
        &json!(
            {
                "type": "object",
                "required": ["roomId", "author", "text"],
                "properties": {
                    "roomId": {"type": "string"},
                    "author": user_id,
                    "text": {"type": "string", "maxLength": 4000}
                }
            }
        )
    );
    assert_eq!(
        payload(&spec, "edited")?,
        &json!(
            {
                "type": "object",
                "required": ["messageId", "text"],
                "properties": {
                    "messageId": {"type": "string"},
                    "text": {"type": "string", "maxLength": 4000}
                }
            }
        )
    );
    // A JSON Schema inside a multi-format schema object is unwrapped.
    assert_eq!(
        payload(&spec, "presence")?,
        &json!({"type": "object", "properties": {"userId": user_id, "online": {"type": "boolean"}}})
    );
    Ok(())
}

#[test]
fn a_shop_catalog_falls_back_from_summary_to_title_to_description() -> anyhow::Result<()> {
    let spec = parse(&fixture("shop-2.4.yaml")?, None)?;
    assert_eq!(
        rows(&spec),
        [
            (
                "order.created.v1",
                "v1",
                Some("A customer placed an order.")
            ),
            (
                "order.cancelled.v2",
                "v2",
                Some("An order was cancelled, by the customer or by customer service.")
            ),
            ("order.shipped.v1", "v1", Some("Order shipped")),
            (
                "customer.created.v1",
                "v1",
                Some("A new customer account exists.")
            ),
            (
                "customer.updated.v1",
                "v1",
                Some("A customer changed their profile.")
            ),
            // A blank summary counts as none.
            (
                "cart.abandoned.v1",
                "v1",
                Some("A cart was left unpaid for 24 hours.")
            ),
        ]
    );
    Ok(())
}

#[test]
fn yaml_anchors_and_merge_keys_are_expanded_in_payloads() -> anyhow::Result<()> {
    let spec = parse(&fixture("shop-2.4.yaml")?, None)?;
    let order_code = json!({"type": "string", "example": "76272727"});
    let money = json!({
        "type": "object",
        "required": ["value", "currencyIso"],
        "properties": {
            "value": {"type": "number", "minimum": 0},
            "currencyIso": {"type": "string", "example": "EUR"}
        }
    });
    assert_eq!(
        payload(&spec, "order.created.v1")?,
        &json!({
            "type": "object",
            "required": ["orderCode", "customerUid", "totalPrice"],
            "properties": {
                "orderCode": order_code,
                "customerUid": {"type": "string"},
                "totalPrice": money
            }
        })
    );
    assert_eq!(
        payload(&spec, "order.cancelled.v2")?,
        &json!({
            "type": "object",
            "required": ["orderCode", "reason"],
            "properties": {
                "orderCode": order_code,
                "reason": {"type": "string", "enum": ["CUSTOMER_REQUEST", "PAYMENT_FAILED", "OUT_OF_STOCK"]},
                "refund": money
            }
        })
    );
    let customer_properties = json!({
        "customerUid": {"type": "string"},
        "email": {"type": "string", "format": "email"}
    });
    assert_eq!(
        payload(&spec, "customer.updated.v1")?,
        &json!({"type": "object", "required": ["customerUid"], "properties": customer_properties})
    );
    Ok(())
}

#[test]
fn an_erp_catalog_on_asyncapi_3_0_1_shares_schemas_between_events() -> anyhow::Result<()> {
    let spec = parse(&fixture("erp-3.0.1.yaml")?, None)?;
    assert_eq!(
        (spec.asyncapi_version.as_str(), spec.info_version.as_str()),
        ("3.0.1", "2310.1")
    );
    assert_eq!(
        rows(&spec),
        [
            (
                "erp.purchaseorder.created.v1",
                "v1",
                Some("A purchase order was created.")
            ),
            (
                "erp.purchaseorder.changed.v1",
                "v1",
                Some("A purchase order was changed.")
            ),
            (
                "erp.supplierinvoice.posted.v2",
                "v2",
                Some("A supplier invoice was posted to accounting.")
            ),
            (
                "erp.material.changed.v3",
                "v3",
                Some("Material master changed")
            ),
        ]
    );
    let purchase_order = json!({
        "type": "object",
        "required": ["purchaseOrder"],
        "properties": {
            "purchaseOrder": {"type": "string", "maxLength": 10},
            "supplier": {"type": "string"}
        }
    });
    assert_eq!(
        payload(&spec, "erp.purchaseorder.created.v1")?,
        &purchase_order
    );
    assert_eq!(
        payload(&spec, "erp.purchaseorder.changed.v1")?,
        &purchase_order
    );
    assert_eq!(
        payload(&spec, "erp.supplierinvoice.posted.v2")?,
        &json!({
            "type": "object",
            "required": ["invoiceId", "fiscalYear", "grossAmount"],
            "properties": {
                "invoiceId": {"type": "string", "maxLength": 10},
                "fiscalYear": {"type": "string", "pattern": "^[0-9]{4}$"},
                "grossAmount": {
                    "type": "object",
                    "properties": {
                        "amount": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,2})?$"},
                        "currency": {"type": "string"}
                    }
                },
                "purchaseOrder": {"type": "string", "maxLength": 10}
            }
        })
    );
    Ok(())
}

#[test]
fn names_without_a_v_number_suffix_take_info_version() -> anyhow::Result<()> {
    let spec = parse(&fixture("crm-unversioned-2.2.yaml")?, None)?;
    assert_eq!(
        rows(&spec),
        [
            (
                "lead/created",
                "2024-05-01",
                Some("A sales lead was captured.")
            ),
            (
                "lead/converted",
                "2024-05-01",
                Some("A lead became a customer.")
            ),
            (
                "contact.deleted",
                "2024-05-01",
                Some("A contact was deleted (GDPR erasure).")
            ),
            (
                "opportunity.won.version2",
                "2024-05-01",
                Some("Opportunity won")
            ),
        ]
    );
    Ok(())
}

#[test]
fn a_message_without_payload_leaves_the_event_unconstrained() -> anyhow::Result<()> {
    let spec = parse(&fixture("crm-unversioned-2.2.yaml")?, None)?;
    assert_eq!(event(&spec, "contact.deleted")?.payload_schema, None);

    // One payload-less message among several: that message's event type is unconstrained.
    let spec = parse(
        r#"
asyncapi: 3.0.0
info: {title: T, version: '1'}
channels:
  jobs:
    messages:
      started: {payload: {type: object}}
      ping: {summary: Keep-alive without a body.}
"#,
        None,
    )?;
    assert_eq!(event(&spec, "ping")?.payload_schema, None);
    assert_eq!(payload(&spec, "started")?, &json!({"type": "object"}));
    Ok(())
}

#[test]
fn messages_of_one_channel_may_share_a_payload_schema() -> anyhow::Result<()> {
    let spec = parse(
        r#"
asyncapi: 3.0.0
info: {title: T, version: '1'}
channels:
  prices:
    messages:
      raised: {payload: {$ref: '#/components/schemas/Price'}}
      lowered: {payload: {$ref: '#/components/schemas/Price'}}
components:
  schemas:
    Price: {type: number}
"#,
        None,
    )?;
    assert_eq!(payload(&spec, "raised")?, &json!({"type": "number"}));
    assert_eq!(payload(&spec, "lowered")?, &json!({"type": "number"}));
    Ok(())
}

#[test]
fn the_catalog_keeps_the_document_order_of_channels() -> anyhow::Result<()> {
    let spec = parse(
        r#"{"asyncapi": "2.6.0", "info": {"title": "T", "version": "1"}, "channels": {
            "zeta.v1": {"publish": {"message": {"payload": {"type": "string"}}}},
            "alpha.v1": {"publish": {"message": {"payload": {"type": "string"}}}},
            "mu.v1": {"publish": {"message": {"payload": {"type": "string"}}}}
        }}"#,
        None,
    )?;
    let names: Vec<_> = spec.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["zeta.v1", "alpha.v1", "mu.v1"]);
    Ok(())
}

#[test]
fn asyncapi_3_1_reads_like_3_0_despite_its_new_bindings_and_extensions() -> anyhow::Result<()> {
    let text = fixture("robot-fleet-3.1.yaml")?;
    let spec = parse(&text, None)?;
    assert_eq!(
        (spec.asyncapi_version.as_str(), spec.info_version.as_str()),
        ("3.1.0", "1.2.0")
    );
    assert_eq!(
        rows(&spec),
        [
            (
                "robot.battery.v1",
                "v1",
                Some("Battery level and whether the robot is charging.")
            ),
            ("robot.estop.v2", "v2", Some("Emergency stop")),
        ]
    );
    assert_eq!(
        payload(&spec, "robot.battery.v1")?,
        &json!({
            "type": "object",
            "required": ["percent"],
            "properties": {
                "percent": {"type": "number", "minimum": 0, "maximum": 100},
                "charging": {"type": "boolean"}
            }
        })
    );
    // The 3.1 default schema format is JSON Schema, so the schema is unwrapped.
    assert_eq!(
        payload(&spec, "robot.estop.v2")?,
        &json!({"type": "boolean"})
    );

    let as_3_0 = parse(&text.replace("asyncapi: 3.1.0", "asyncapi: 3.0.0"), None)?;
    assert_eq!(as_3_0.asyncapi_version, "3.0.0");
    assert_eq!(spec.events, as_3_0.events);
    let as_3_2 = parse(&text.replace("asyncapi: 3.1.0", "asyncapi: 3.2.0"), None)?;
    assert_eq!(spec.events, as_3_2.events);
    Ok(())
}

#[test]
fn channels_may_be_empty_in_2_x_and_absent_in_3_0() -> anyhow::Result<()> {
    let v2 = parse(
        "asyncapi: 2.1.0\ninfo: {title: T, version: '1'}\nchannels: {}\n",
        None,
    )?;
    let v3 = parse("asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\n", None)?;
    assert!(v2.events.is_empty() && v3.events.is_empty());
    Ok(())
}

#[test]
fn the_document_is_kept_as_json() -> anyhow::Result<()> {
    let spec = parse(&fixture("bank-accounts-3.0.yaml")?, None)?;
    assert_eq!(spec.document["info"]["version"], "5.1.0");
    assert_eq!(
        spec.document["channels"]["accountOpened"]["messages"]["opened"],
        json!({"$ref": "#/components/messages/AccountOpened"})
    );
    Ok(())
}

#[test]
fn an_explicit_format_overrides_detection() -> anyhow::Result<()> {
    // JSON is YAML too; what it was read as is reported.
    let spec = parse(&fixture("payments-2.3.json")?, Some(SpecFormat::Yaml))?;
    assert_eq!(spec.format, SpecFormat::Yaml);
    assert_eq!(spec.events.len(), 3);
    Ok(())
}

#[test]
fn a_spec_survives_a_json_round_trip() -> anyhow::Result<()> {
    let spec = parse(&fixture("logistics-2.6.yaml")?, None)?;
    let stored = serde_json::to_string(&spec)?;
    assert_eq!(
        serde_json::from_str::<eventplane_spec::Spec>(&stored)?,
        spec
    );
    Ok(())
}
