//! Real-world-shaped AsyncAPI documents (2.0 to 2.6 and 3.0, JSON and YAML, with `$ref`s)
//! registered over HTTP, their event catalogs, and invalid documents rejected with the path of
//! the problem. The documents are `eventplane-spec`'s fixtures.

use serde_json::{Value, json as j};

use super::{Registry, SHOP_SPEC, api_input, fixture, string_at};
use crate::e2e_test;

/// A fixture, the format it is detected as, and its catalog as `(name, version)`.
struct Document {
    file: &'static str,
    format: &'static str,
    events: &'static [(&'static str, &'static str)],
}

const DOCUMENTS: [Document; 8] = [
    Document {
        file: "greenhouse-2.0.yaml",
        format: "YAML",
        events: &[
            ("greenhouse/{zoneId}/temperature", "0.9.1"),
            ("greenhouse/{zoneId}/irrigation", "0.9.1"),
        ],
    },
    Document {
        file: "crm-unversioned-2.2.yaml",
        format: "YAML",
        events: &[
            ("lead/created", "2024-05-01"),
            ("lead/converted", "2024-05-01"),
            ("contact.deleted", "2024-05-01"),
            ("opportunity.won.version2", "2024-05-01"),
        ],
    },
    Document {
        file: "payments-2.3.json",
        format: "JSON",
        events: &[
            ("payment.authorized.v1", "v1"),
            ("payment.captured.v1", "v1"),
            ("refund.issued.v2", "v2"),
        ],
    },
    Document {
        file: "shop-2.4.yaml",
        format: "YAML",
        events: &[
            ("order.created.v1", "v1"),
            ("order.cancelled.v2", "v2"),
            ("order.shipped.v1", "v1"),
            ("customer.created.v1", "v1"),
            ("customer.updated.v1", "v1"),
            ("cart.abandoned.v1", "v1"),
        ],
    },
    Document {
        file: "logistics-2.6.yaml",
        format: "YAML",
        events: &[
            ("ShipmentDispatched", "2.0.0"),
            ("ShipmentDelivered", "2.0.0"),
            ("depot.scan.v3", "v3"),
            ("shipment.label.v1", "v1"),
        ],
    },
    Document {
        file: "bank-accounts-3.0.yaml",
        format: "YAML",
        events: &[
            ("accounts.opened.v1", "v1"),
            ("accounts.closed.v2", "v2"),
            ("balanceAlert", "5.1.0"),
        ],
    },
    Document {
        file: "chat-3.0.json",
        format: "JSON",
        events: &[
            ("posted", "2025.3"),
            ("edited", "2025.3"),
            ("presence", "2025.3"),
            ("attachments.uploaded.v2", "v2"),
        ],
    },
    Document {
        file: "erp-3.0.1.yaml",
        format: "YAML",
        events: &[
            ("erp.purchaseorder.created.v1", "v1"),
            ("erp.purchaseorder.changed.v1", "v1"),
            ("erp.supplierinvoice.posted.v2", "v2"),
            ("erp.material.changed.v3", "v3"),
        ],
    },
];

const ADD: &str = "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
    addEventAPI(applicationID: $app, in: $in) {
        id spec { format } events { name version summary payloadSchema } } }";

/// `[{name, version}]` of a catalog.
fn catalog(events: &[(&str, &str)]) -> Value {
    events
        .iter()
        .map(|(name, version)| j!({"name": name, "version": version}))
        .collect()
}

/// The payload schema of the event `name` in `events`, parsed.
fn payload(events: &Value, name: &str) -> anyhow::Result<Value> {
    let event = events
        .as_array()
        .into_iter()
        .flatten()
        .find(|event| event["name"] == name)
        .ok_or_else(|| anyhow::anyhow!("no event {name} in {events}"))?;
    let text = event["payloadSchema"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("event {name} has no payload schema: {event}"))?;
    Ok(serde_json::from_str(text)?)
}

e2e_test! {
    async fn real_world_specs_register_with_their_event_catalogs() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "enterprise"})).await?;
        let mut ids = Vec::new();
        for document in &DOCUMENTS {
            let input = api_input(document.file, &fixture(document.file)?);
            let data = g.ok(ADD, j!({"app": app, "in": input})).await?;
            let api = &data["addEventAPI"];
            assert_eq!(api["spec"]["format"], document.format, "{}", document.file);
            let events: Vec<Value> = api["events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| j!({"name": e["name"], "version": e["version"]}))
                .collect();
            assert_eq!(Value::from(events), catalog(document.events), "{}", document.file);
            ids.push(string_at(&data, "/addEventAPI/id")?);
        }

        // The same catalogs are read back, by id and through the application.
        for (document, id) in DOCUMENTS.iter().zip(&ids) {
            let data = g
                .ok("query($id: ID!) { eventAPI(id: $id) { name events { name version } } }",
                    j!({"id": id}))
                .await?;
            assert_eq!(data["eventAPI"]["name"], document.file);
            assert_eq!(data["eventAPI"]["events"], catalog(document.events), "{}", document.file);
        }
        let data = g
            .ok("query($id: ID!) { application(id: $id) { eventAPIs {
                    totalCount data { name events { name version } } } } }",
                j!({"id": app}))
            .await?;
        let page = &data["application"]["eventAPIs"];
        assert_eq!(page["totalCount"], DOCUMENTS.len());
        for document in &DOCUMENTS {
            let listed = page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|api| api["name"] == document.file);
            assert_eq!(
                listed.map(|api| &api["events"]),
                Some(&catalog(document.events)),
                "{}",
                document.file
            );
        }
        r.stop().await
    }
}

e2e_test! {
    async fn local_refs_are_resolved_in_payload_schemas() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "payments"})).await?;
        for file in ["payments-2.3.json", "bank-accounts-3.0.yaml", "chat-3.0.json", "erp-3.0.1.yaml"] {
            let data = g.ok(ADD, j!({"app": app, "in": api_input(file, &fixture(file)?)})).await?;
            let events = &data["addEventAPI"]["events"];
            for event in events.as_array().into_iter().flatten() {
                let schema = event["payloadSchema"].as_str().unwrap_or_default();
                assert!(!schema.contains("$ref"), "{file}: unresolved $ref in {schema}");
            }
            if file == "payments-2.3.json" {
                let money = j!({
                    "type": "object",
                    "required": ["amount", "currency"],
                    "properties": {
                        "amount": {"type": "integer", "description": "In minor units (cents)."},
                        "currency": {"type": "string", "minLength": 3, "maxLength": 3}
                    }
                });
                assert_eq!(
                    payload(events, "payment.captured.v1")?,
                    j!({"type": "object", "properties": {
                        "paymentId": {"type": "string", "pattern": "^pay_[0-9a-z]{16}$"},
                        "captured": money}})
                );
                let authorized = &data["addEventAPI"]["events"][0];
                assert_eq!(authorized["summary"], "A card payment was authorized.");
            }
            if file == "bank-accounts-3.0.yaml" {
                let iban = j!({"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"});
                assert_eq!(
                    payload(events, "balanceAlert")?,
                    j!({"type": "object", "properties": {"iban": iban, "balance": {"type": "number"}}})
                );
            }
        }
        r.stop().await
    }
}

/// Invalid documents and the JSON pointer of their problem.
fn invalid_documents() -> anyhow::Result<Vec<(&'static str, String, &'static str)>> {
    let v2 = |channels: &str| {
        format!("asyncapi: 2.6.0\ninfo: {{title: T, version: '1'}}\nchannels:\n{channels}")
    };
    Ok(vec![
        (
            "no info.title",
            r#"{"asyncapi": "2.6.0", "info": {"version": "1"}, "channels": {}}"#.to_owned(),
            "/info/title",
        ),
        (
            "a Kubernetes manifest",
            fixture("broken/kubernetes-deployment.yaml")?,
            "",
        ),
        (
            "tab-indented YAML",
            fixture("broken/tab-indented.yaml")?,
            "",
        ),
        (
            "a YAML alias bomb",
            fixture("broken/billion-laughs.yaml")?,
            "",
        ),
        (
            "broken JSON",
            "{\n  \"asyncapi\": \"2.6.0\"\n  \"info\": {}\n}".to_owned(),
            "",
        ),
        (
            "an unsupported version",
            "asyncapi: 2.7.0\ninfo: {title: T, version: '1'}\nchannels: {}\n".to_owned(),
            "/asyncapi",
        ),
        (
            "a dangling message $ref",
            v2(concat!(
                "  order.created.v1:\n",
                "    subscribe:\n",
                "      message:\n",
                "        $ref: '#/components/messages/Nope'\n",
                "components:\n",
                "  messages:\n",
                "    OrderCreated: {payload: {type: object}}\n",
            )),
            "/channels/order.created.v1/subscribe/message/$ref",
        ),
        (
            "a remote $ref",
            v2(concat!(
                "  orders.v1:\n",
                "    subscribe:\n",
                "      message:\n",
                "        payload: {$ref: 'https://schemas.example.com/order.json'}\n",
            )),
            "/channels/orders.v1/subscribe/message/payload/$ref",
        ),
        (
            "a duplicate event type (two messages `m` on one address)",
            concat!(
                "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nchannels:\n",
                "  created:\n    address: order.created.v1\n",
                "    messages: {m: {payload: {type: object}}}\n",
                "  createdAgain:\n    address: order.created.v1\n",
                "    messages: {m: {payload: {type: object}}}\n",
            )
            .to_owned(),
            "/channels/createdAgain/messages/m",
        ),
    ])
}

e2e_test! {
    async fn invalid_specs_are_invalid_spec_with_their_path_and_nothing_is_stored()
        -> anyhow::Result<()>
    {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let api = g.add_api(&app, api_input("orders", SHOP_SPEC)).await?;
        let update = "mutation($id: ID!, $in: EventAPIDefinitionInput!) {
            updateEventAPI(id: $id, in: $in) { id } }";
        for (case, text, path) in invalid_documents()? {
            let error = g.error(ADD, j!({"app": app, "in": api_input("broken", &text)})).await?;
            assert_eq!(error["extensions"]["code"], "INVALID_SPEC", "{case}: {error}");
            assert_eq!(error["extensions"]["path"], path, "{case}: {error}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: {error}");
            assert_eq!(g.api_count(&app).await?, 1, "{case}: something was stored");

            let error = g.error(update, j!({"id": api, "in": api_input("broken", &text)})).await?;
            assert_eq!(error["extensions"]["code"], "INVALID_SPEC", "{case}: {error}");
            assert_eq!(error["extensions"]["path"], path, "{case}: {error}");
        }
        // An explicit format that does not match the text is invalid too.
        let mut input = api_input("yaml-as-json", SHOP_SPEC);
        input["spec"]["format"] = j!("JSON");
        let error = g.error(ADD, j!({"app": app, "in": input})).await?;
        assert_eq!(error["extensions"]["code"], "INVALID_SPEC", "{error}");

        // The API kept its spec through the failed updates.
        let data = g
            .ok("query($id: ID!) { eventAPI(id: $id) { name events { name } } }", j!({"id": api}))
            .await?;
        assert_eq!(data["eventAPI"], j!({"name": "orders", "events": [{"name": "order.created.v1"}]}));
        r.stop().await
    }
}

e2e_test! {
    async fn an_application_with_one_invalid_spec_is_not_created() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let error = g
            .error(
                "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }",
                j!({"in": {"name": "erp", "eventAPIs": [
                    api_input("fine", &fixture("erp-3.0.1.yaml")?),
                    api_input("broken", "asyncapi: 3.0.0\ninfo:\n  title: ERP\n  version: 2310.1\n"),
                ]}}),
            )
            .await?;
        assert_eq!(error["extensions"]["code"], "INVALID_SPEC", "{error}");
        assert_eq!(error["extensions"]["path"], "/info/version", "{error}");
        let data = g.ok("{ applications { totalCount } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 0);
        g.create_app(j!({"name": "erp"})).await?;
        r.stop().await
    }
}
