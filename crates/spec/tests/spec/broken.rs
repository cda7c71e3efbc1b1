//! Broken documents: each error names the exact JSON Pointer of the problem and says what to do.

use std::time::{Duration, Instant};

use anyhow::Context;
use eventplane_spec::{SpecError, SpecFormat, parse};

use super::fixture;

/// The error `parse` returns for `text` (detecting the format).
fn error(text: &str) -> anyhow::Result<SpecError> {
    parse(text, None).err().context("the document was accepted")
}

/// `(path, message)` of the error for `text`.
fn problem(text: &str) -> anyhow::Result<(String, String)> {
    let SpecError { path, message } = error(text)?;
    Ok((path, message))
}

fn at(path: &str, message: &str) -> (String, String) {
    (path.to_owned(), message.to_owned())
}

/// A 2.6 document with `channels` as given (YAML, indented by two).
fn v2_with_channels(channels: &str) -> String {
    format!("asyncapi: 2.6.0\ninfo: {{title: T, version: '1'}}\nchannels:\n{channels}")
}

#[test]
fn a_document_without_asyncapi_is_not_an_asyncapi_document() -> anyhow::Result<()> {
    assert_eq!(
        problem("info: {title: T, version: '1'}\nchannels: {}\n")?,
        at(
            "",
            "not an AsyncAPI document: the `asyncapi` field is missing"
        )
    );
    Ok(())
}

#[test]
fn a_kubernetes_manifest_is_not_an_asyncapi_document() -> anyhow::Result<()> {
    let err = error(&fixture("broken/kubernetes-deployment.yaml")?)?;
    assert_eq!(err.path, "");
    assert_eq!(
        err.to_string(),
        "not an AsyncAPI document: the `asyncapi` field is missing \
         (this looks like a Kubernetes manifest)"
    );
    Ok(())
}

#[test]
fn an_openapi_document_is_named_as_such() -> anyhow::Result<()> {
    assert_eq!(
        problem(r#"{"openapi": "3.1.0", "info": {"title": "T", "version": "1"}, "paths": {}}"#)?,
        at(
            "",
            "not an AsyncAPI document: the `asyncapi` field is missing \
             (this looks like an OpenAPI document)"
        )
    );
    Ok(())
}

#[test]
fn a_top_level_list_or_scalar_is_not_an_asyncapi_document() -> anyhow::Result<()> {
    assert_eq!(
        problem("- asyncapi: 2.6.0\n")?,
        at(
            "",
            "not an AsyncAPI document: expected an object at the top level, found an array"
        )
    );
    assert_eq!(
        problem("just some words")?,
        at(
            "",
            "not an AsyncAPI document: expected an object at the top level, found a string"
        )
    );
    Ok(())
}

#[test]
fn unsupported_versions_list_the_supported_ones() -> anyhow::Result<()> {
    for version in ["1.2.0", "2.7.0", "4.0.0"] {
        assert_eq!(
            problem(&format!(
                "asyncapi: {version}\ninfo: {{title: T, version: '1'}}\nchannels: {{}}\n"
            ))?,
            at(
                "/asyncapi",
                &format!(
                    "unsupported AsyncAPI version {version}: supported are 2.0.0–2.6.0 and 3.x"
                )
            )
        );
    }
    Ok(())
}

#[test]
fn asyncapi_must_be_a_string() -> anyhow::Result<()> {
    assert_eq!(
        problem(r#"{"asyncapi": 3, "info": {"title": "T", "version": "1"}}"#)?,
        at(
            "/asyncapi",
            "`asyncapi` must be a version string such as \"2.6.0\" or \"3.0.0\", found a number"
        )
    );
    Ok(())
}

#[test]
fn info_title_and_version_are_required() -> anyhow::Result<()> {
    assert_eq!(
        problem("asyncapi: 2.6.0\ninfo:\n  version: 1.0.0\nchannels: {}\n")?,
        at("/info/title", "`info.title` is required")
    );
    assert_eq!(
        problem("asyncapi: 3.0.0\ninfo:\n  title: '  '\n  version: 1.0.0\n")?,
        at("/info/title", "`info.title` must not be empty")
    );
    assert_eq!(
        problem("asyncapi: 3.0.0\ninfo:\n  title: T\n")?,
        at("/info/version", "`info.version` is required")
    );
    assert_eq!(
        problem("asyncapi: 3.0.0\n")?,
        at("/info", "`info` is required")
    );
    Ok(())
}

#[test]
fn an_unquoted_numeric_info_version_asks_for_quotes() -> anyhow::Result<()> {
    assert_eq!(
        problem("asyncapi: 3.0.0\ninfo:\n  title: ERP\n  version: 2310.1\n")?,
        at(
            "/info/version",
            "`info.version` must be a string: write it in quotes (\"2310.1\")"
        )
    );
    Ok(())
}

#[test]
fn channels_are_required_in_2_x() -> anyhow::Result<()> {
    assert_eq!(
        problem("asyncapi: 2.6.0\ninfo: {title: T, version: '1'}\n")?,
        at(
            "/channels",
            "`channels` is required in AsyncAPI 2.x (write `channels: {}` when there are none)"
        )
    );
    assert_eq!(
        problem("asyncapi: 2.6.0\ninfo: {title: T, version: '1'}\nchannels: [orders]\n")?,
        at(
            "/channels",
            "`channels` must be an object mapping channel names to channels, found an array"
        )
    );
    Ok(())
}

#[test]
fn a_channel_that_is_not_an_object_is_named_by_its_escaped_path() -> anyhow::Result<()> {
    assert_eq!(
        problem(&v2_with_channels("  order.created.v1: OrderCreated\n"))?,
        at(
            "/channels/order.created.v1",
            "channel `order.created.v1` must be an object, found a string"
        )
    );
    assert_eq!(
        problem(&v2_with_channels("  shop/orders~eu:\n"))?,
        at(
            "/channels/shop~1orders~0eu",
            "channel `shop/orders~eu` must be an object, found null"
        )
    );
    let v3 = "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nchannels:\n  orders: [created]\n";
    assert_eq!(
        problem(v3)?,
        at(
            "/channels/orders",
            "channel `orders` must be an object, found an array"
        )
    );
    Ok(())
}

#[test]
fn an_operation_or_message_of_the_wrong_type_is_rejected() -> anyhow::Result<()> {
    assert_eq!(
        problem(&v2_with_channels("  orders.v1:\n    subscribe: true\n"))?,
        at(
            "/channels/orders.v1/subscribe",
            "`subscribe` must be an operation object, found a boolean"
        )
    );
    assert_eq!(
        problem(&v2_with_channels(
            "  orders.v1:\n    subscribe:\n      message: OrderCreated\n"
        ))?,
        at(
            "/channels/orders.v1/subscribe/message",
            "a message must be an object or a `$ref` to one, found a string"
        )
    );
    assert_eq!(
        problem(&v2_with_channels(
            "  orders.v1:\n    publish:\n      message:\n        oneOf: []\n"
        ))?,
        at(
            "/channels/orders.v1/publish/message/oneOf",
            "`oneOf` must list at least one message"
        )
    );
    Ok(())
}

#[test]
fn a_malformed_2_x_one_of_is_rejected() -> anyhow::Result<()> {
    let with_one_of = |one_of: &str| {
        v2_with_channels(&format!(
            "  orders.v1:\n    subscribe:\n      message:\n        oneOf: {one_of}\n"
        ))
    };
    let list = "/channels/orders.v1/subscribe/message/oneOf";
    assert_eq!(
        problem(&with_one_of("{}"))?,
        at(list, "`oneOf` must be a list of messages, found an object")
    );
    assert_eq!(
        problem(&with_one_of("x"))?,
        at(list, "`oneOf` must be a list of messages, found a string")
    );
    assert_eq!(
        problem(&with_one_of("[{payload: {type: object}}, OrderCancelled]"))?,
        at(
            "/channels/orders.v1/subscribe/message/oneOf/1",
            "a message must be an object or a `$ref` to one, found a string"
        )
    );
    assert_eq!(
        problem(&with_one_of("[null]"))?,
        at(
            "/channels/orders.v1/subscribe/message/oneOf/0",
            "a message must be an object or a `$ref` to one, found null"
        )
    );
    // A `$ref` to a message that is itself `oneOf` is reported where the list really is.
    let shared = v2_with_channels(concat!(
        "  orders.v1:\n",
        "    publish:\n",
        "      message: {$ref: '#/components/messages/OrderEvents'}\n",
        "components:\n",
        "  messages:\n",
        "    OrderEvents: {oneOf: {created: {payload: {type: object}}}}\n",
    ));
    assert_eq!(
        problem(&shared)?,
        at(
            "/components/messages/OrderEvents/oneOf",
            "`oneOf` must be a list of messages, found an object"
        )
    );
    Ok(())
}

#[test]
fn a_payload_that_is_not_a_schema_is_rejected() -> anyhow::Result<()> {
    assert_eq!(
        problem(&v2_with_channels(
            "  orders.v1:\n    subscribe:\n      message:\n        payload: OrderCreated\n"
        ))?,
        at(
            "/channels/orders.v1/subscribe/message/payload",
            "`payload` must be a schema (an object or a `$ref`), found a string"
        )
    );
    Ok(())
}

#[test]
fn asyncapi_3_channel_members_are_type_checked() -> anyhow::Result<()> {
    let doc = |channel: &str| {
        format!(
            "asyncapi: 3.0.0\ninfo: {{title: T, version: '1'}}\nchannels:\n  orders:\n{channel}"
        )
    };
    assert_eq!(
        problem(&doc("    address: 42\n"))?,
        at(
            "/channels/orders/address",
            "`address` must be a string or null, found a number"
        )
    );
    assert_eq!(
        problem(&doc("    messages: [created]\n"))?,
        at(
            "/channels/orders/messages",
            "`messages` must be an object mapping message ids to messages, found an array"
        )
    );
    Ok(())
}

#[test]
fn a_dangling_message_ref_names_the_missing_step() -> anyhow::Result<()> {
    let text = v2_with_channels(concat!(
        "  order.created.v1:\n",
        "    subscribe:\n",
        "      message:\n",
        "        $ref: '#/components/messages/Nope'\n",
        "components:\n",
        "  messages:\n",
        "    OrderCreated: {payload: {type: object}}\n",
    ));
    assert_eq!(
        problem(&text)?,
        at(
            "/channels/order.created.v1/subscribe/message/$ref",
            "$ref `#/components/messages/Nope` does not resolve: \
             /components/messages has no `Nope`"
        )
    );
    Ok(())
}

#[test]
fn a_dangling_ref_deep_in_a_schema_is_reported_where_it_is_written() -> anyhow::Result<()> {
    let text = r#"
asyncapi: 3.0.0
info: {title: T, version: '1'}
channels:
  orders:
    messages:
      created: {$ref: '#/components/messages/OrderCreated'}
components:
  messages:
    OrderCreated:
      payload: {$ref: '#/components/schemas/Order'}
  schemas:
    Order:
      type: object
      properties:
        lines:
          type: array
          items: {$ref: '#/components/schemas/OrderLine'}
"#;
    assert_eq!(
        problem(text)?,
        at(
            "/components/schemas/Order/properties/lines/items/$ref",
            "$ref `#/components/schemas/OrderLine` does not resolve: \
             /components/schemas has no `OrderLine`"
        )
    );
    Ok(())
}

#[test]
fn a_dangling_operation_channel_ref_is_rejected() -> anyhow::Result<()> {
    let text = r#"
asyncapi: 3.0.0
info: {title: T, version: '1'}
channels:
  orders: {messages: {created: {payload: {type: object}}}}
operations:
  sendOrders:
    action: send
    channel: {$ref: '#/channels/order'}
"#;
    assert_eq!(
        problem(text)?,
        at(
            "/operations/sendOrders/channel/$ref",
            "$ref `#/channels/order` does not resolve: /channels has no `order`"
        )
    );
    let no_action = text.replace("    action: send\n", "");
    assert_eq!(
        problem(&no_action)?,
        at(
            "/operations/sendOrders/action",
            "`action` must be `send` or `receive`"
        )
    );
    Ok(())
}

#[test]
fn a_3_x_operation_may_only_name_messages_of_its_channel() -> anyhow::Result<()> {
    let text = r#"
asyncapi: 3.0.0
info: {title: T, version: '1'}
channels:
  orders:
    messages:
      created: {$ref: '#/components/messages/OrderCreated'}
  payments:
    messages:
      captured: {payload: {type: object}}
operations:
  sendOrders:
    action: send
    channel: {$ref: '#/channels/orders'}
    messages:
      - $ref: '#/channels/orders/messages/created'
      - $ref: '#/channels/payments/messages/captured'
components:
  messages:
    OrderCreated: {payload: {type: object}}
"#;
    assert_eq!(
        problem(text)?,
        at(
            "/operations/sendOrders/messages/1",
            "`#/channels/payments/messages/captured` is not a message of the operation's \
             channel `#/channels/orders`: an operation's `messages` must be a subset of its \
             channel's `messages`"
        )
    );
    let from_components = text.replace(
        "      - $ref: '#/channels/payments/messages/captured'\n",
        "      - $ref: '#/components/messages/OrderCreated'\n",
    );
    assert_eq!(
        problem(&from_components)?,
        at(
            "/operations/sendOrders/messages/1",
            "`#/components/messages/OrderCreated` is not a message of the operation's channel \
             `#/channels/orders`: an operation's `messages` must be a subset of its channel's \
             `messages` (write `$ref: '#/channels/orders/messages/created'`)"
        )
    );
    let inline = text.replace(
        "      - $ref: '#/channels/payments/messages/captured'\n",
        "      - {payload: {type: object}}\n",
    );
    assert_eq!(
        problem(&inline)?,
        at(
            "/operations/sendOrders/messages/1",
            "an operation's `messages` must be `$ref`s to messages of its channel, e.g. \
             `$ref: '#/channels/orders/messages/<id>'`, found a message object"
        )
    );
    let dangling = text.replace("payments/messages/captured", "orders/messages/cancelled");
    assert_eq!(
        problem(&dangling)?,
        at(
            "/operations/sendOrders/messages/1/$ref",
            "$ref `#/channels/orders/messages/cancelled` does not resolve: \
             /channels/orders/messages has no `cancelled`"
        )
    );
    // Through a channel that is itself a `$ref`, and with no messages at all, it is fine.
    let shared_channel = text
        .replace(
            "  orders:\n    messages:\n      created: {$ref: '#/components/messages/OrderCreated'}\n",
            "  orders: {$ref: '#/components/channels/orders'}\n",
        )
        .replace("      - $ref: '#/channels/payments/messages/captured'\n", "")
        .replace(
            "components:\n",
            "components:\n  channels:\n    orders:\n      address: orders.v1\n      \
             messages:\n        created: {$ref: '#/components/messages/OrderCreated'}\n",
        );
    let spec = eventplane_spec::parse(&shared_channel, None)?;
    let names: Vec<&str> = spec.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["orders.v1", "payments"]);
    let none = text.replace(
        "    messages:\n      - $ref: '#/channels/orders/messages/created'\n      - $ref: '#/channels/payments/messages/captured'\n",
        "    messages: []\n",
    );
    assert!(none.contains("    messages: []\n"), "{none}");
    eventplane_spec::parse(&none, None)?;
    Ok(())
}

#[test]
fn an_undefined_security_scheme_of_a_3_x_server_or_operation_is_rejected() -> anyhow::Result<()> {
    let text = r#"
asyncapi: 3.1.0
info: {title: T, version: '1'}
servers:
  production:
    host: broker.example:9093
    protocol: kafka-secure
    security:
      - $ref: '#/components/securitySchemes/mtls'
      - $ref: '#/components/securitySchemes/saslScram'
channels:
  orders: {messages: {created: {payload: {type: object}}}}
operations:
  sendOrders:
    action: send
    channel: {$ref: '#/channels/orders'}
    security:
      - $ref: '#/components/securitySchemes/mtls'
components:
  securitySchemes:
    mtls: {type: X509}
    oauth: {type: oauth2, flows: {}}
"#;
    assert_eq!(
        problem(text)?,
        at(
            "/servers/production/security/1",
            "server `production` requires the security scheme `saslScram`, which \
             `components.securitySchemes` does not define (it defines `mtls`, `oauth`)"
        )
    );
    let operation = text.replace("saslScram'", "oauth'").replace(
        "    security:\n      - $ref: '#/components/securitySchemes/mtls'\ncomponents",
        "    security:\n      - $ref: '#/components/securitySchemes/apiKey'\ncomponents",
    );
    assert_eq!(
        problem(&operation)?,
        at(
            "/operations/sendOrders/security/0",
            "operation `sendOrders` requires the security scheme `apiKey`, which \
             `components.securitySchemes` does not define (it defines `mtls`, `oauth`)"
        )
    );
    let without_components = text.split("components:").next().unwrap_or_default();
    assert_eq!(
        problem(without_components)?,
        at(
            "/servers/production/security/0",
            "server `production` requires the security scheme `mtls`, which \
             `components.securitySchemes` does not define (it defines none)"
        )
    );
    let inline_without_type = text.replace(
        "      - $ref: '#/components/securitySchemes/saslScram'",
        "      - {description: SASL}",
    );
    assert_eq!(
        problem(&inline_without_type)?,
        at(
            "/servers/production/security/1",
            "a security scheme must be an object with a `type` (or a `$ref` to one under \
             `#/components/securitySchemes`), found an object without a string `type`"
        )
    );
    Ok(())
}

#[test]
fn an_undefined_security_scheme_of_a_2_x_server_or_operation_is_rejected() -> anyhow::Result<()> {
    let text = r#"
asyncapi: 2.6.0
info: {title: T, version: '1'}
servers:
  production:
    url: broker.example:5672
    protocol: amqp
    security:
      - userPassword: []
      - petstoreAuth: ['write:pets']
channels:
  orders.v1:
    subscribe:
      security:
        - userPassword: []
      message: {payload: {type: object}}
components:
  securitySchemes:
    userPassword: {type: userPassword}
"#;
    assert_eq!(
        problem(text)?,
        at(
            "/servers/production/security/1",
            "server `production` requires the security scheme `petstoreAuth`, which \
             `components.securitySchemes` does not define (it defines `userPassword`)"
        )
    );
    let operation = text
        .replace("      - petstoreAuth: ['write:pets']\n", "")
        .replace(
            "        - userPassword: []",
            "        - {}\n        - apiKey: []",
        );
    assert_eq!(
        problem(&operation)?,
        at(
            "/channels/orders.v1/subscribe/security/1",
            "the `subscribe` operation of channel `orders.v1` requires the security scheme \
             `apiKey`, which `components.securitySchemes` does not define (it defines \
             `userPassword`)"
        )
    );
    let bad_scopes = text.replace("petstoreAuth: ['write:pets']", "userPassword: write");
    assert_eq!(
        problem(&bad_scopes)?,
        at(
            "/servers/production/security/1/userPassword",
            "the scopes of `userPassword` must be a list of strings (`[]` for none), found a string"
        )
    );
    let scheme_not_requirement = text.replace(
        "      - petstoreAuth: ['write:pets']",
        "      - petstoreAuth",
    );
    assert_eq!(
        problem(&scheme_not_requirement)?,
        at(
            "/servers/production/security/1",
            "a security requirement must be an object mapping scheme names to scopes, found a string"
        )
    );
    Ok(())
}

#[test]
fn a_ref_cycle_between_schemas_is_named_step_by_step() -> anyhow::Result<()> {
    let text = v2_with_channels(concat!(
        "  people.v1:\n",
        "    subscribe:\n",
        "      message:\n",
        "        payload: {$ref: '#/components/schemas/Person'}\n",
        "components:\n",
        "  schemas:\n",
        "    Person:\n",
        "      properties:\n",
        "        employer: {$ref: '#/components/schemas/Company'}\n",
        "    Company:\n",
        "      properties:\n",
        "        ceo: {$ref: '#/components/schemas/Person'}\n",
    ));
    assert_eq!(
        problem(&text)?,
        at(
            "/components/schemas/Company/properties/ceo/$ref",
            "$ref cycle through #/components/schemas/Person → #/components/schemas/Company \
             → #/components/schemas/Person"
        )
    );
    Ok(())
}

#[test]
fn a_ref_cycle_between_messages_is_rejected() -> anyhow::Result<()> {
    let text = v2_with_channels(concat!(
        "  loop.v1:\n",
        "    subscribe:\n",
        "      message: {$ref: '#/components/messages/A'}\n",
        "components:\n",
        "  messages:\n",
        "    A: {$ref: '#/components/messages/B'}\n",
        "    B: {$ref: '#/components/messages/A'}\n",
    ));
    assert_eq!(
        problem(&text)?,
        at(
            "/components/messages/B/$ref",
            "$ref cycle through #/components/messages/A → #/components/messages/B \
             → #/components/messages/A"
        )
    );
    Ok(())
}

#[test]
fn refs_to_other_files_in_an_inline_document_say_to_register_it_by_url() -> anyhow::Result<()> {
    let text = v2_with_channels(concat!(
        "  orders.v1:\n",
        "    subscribe:\n",
        "      message:\n",
        "        payload: {$ref: 'https://schemas.example.com/order.json'}\n",
    ));
    assert_eq!(
        problem(&text)?,
        at(
            "/channels/orders.v1/subscribe/message/payload/$ref",
            "$ref `https://schemas.example.com/order.json` refers to another file, which a \
             document given inline cannot: register the document by URL (spec.fetchRequest) so \
             that its relative references are resolved against it, or refer to \
             `#/components/...` in this document"
        )
    );
    Ok(())
}

#[test]
fn channels_on_one_address_whose_messages_share_a_name_clash_at_the_second_message()
-> anyhow::Result<()> {
    let text = r#"
asyncapi: 3.0.0
info: {title: T, version: '1'}
channels:
  created:
    address: order.created.v1
    messages: {m: {payload: {type: object}}}
  createdAgain:
    address: order.created.v1
    messages: {m: {payload: {type: object}}}
"#;
    assert_eq!(
        problem(text)?,
        at(
            "/channels/createdAgain/messages/m",
            "duplicate event type `m`: messages /channels/created/messages/m and \
             /channels/createdAgain/messages/m both define it; event types must have distinct \
             names"
        )
    );
    Ok(())
}

#[test]
fn duplicate_yaml_keys_are_rejected_with_their_position() -> anyhow::Result<()> {
    let text = v2_with_channels("  a.v1: {}\n  a.v1: {}\n");
    assert_eq!(
        problem(&text)?,
        at(
            "",
            "invalid YAML at line 4 column 3: channels: duplicate key `a.v1`"
        )
    );
    Ok(())
}

#[test]
fn invalid_yaml_reports_line_and_column() -> anyhow::Result<()> {
    assert_eq!(
        problem(&fixture("broken/tab-indented.yaml")?)?,
        at(
            "",
            "invalid YAML at line 4 column 1: found a tab character that violates indentation, \
             while scanning a plain scalar at line 3 column 10"
        )
    );
    Ok(())
}

#[test]
fn invalid_json_reports_line_and_column() -> anyhow::Result<()> {
    // Text that opens like a JSON object gets the JSON parser's complaint.
    let text = "{\n  \"asyncapi\": \"2.6.0\"\n  \"info\": {}\n}";
    assert_eq!(
        problem(text)?,
        at("", "invalid JSON at line 3 column 3: expected `,` or `}`")
    );
    let err = parse("asyncapi: 2.6.0", Some(SpecFormat::Json))
        .err()
        .context("accepted YAML as JSON")?;
    assert_eq!(
        err.message,
        "invalid JSON at line 1 column 1: expected value"
    );
    Ok(())
}

#[test]
fn empty_input_is_rejected() -> anyhow::Result<()> {
    for text in ["", "   \n\n", "\u{feff}"] {
        assert_eq!(problem(text)?, at("", "the document is empty"));
    }
    assert_eq!(
        problem("# only a comment\n")?,
        at(
            "",
            "the document is empty (it holds only comments or `null`)"
        )
    );
    Ok(())
}

#[test]
fn a_yaml_alias_bomb_is_stopped_quickly() -> anyhow::Result<()> {
    let started = Instant::now();
    let err = error(&fixture("broken/billion-laughs.yaml")?)?;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.path, "");
    assert!(
        err.message.starts_with("invalid YAML") && err.message.contains("aliases"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_ref_bomb_is_stopped_quickly() -> anyhow::Result<()> {
    // Each schema refers to the previous one twice: 2^40 copies once expanded.
    let mut text = v2_with_channels(concat!(
        "  bomb.v1:\n",
        "    subscribe:\n",
        "      message: {payload: {$ref: '#/components/schemas/L40'}}\n",
        "components:\n",
        "  schemas:\n",
        "    L0: {type: string}\n",
    ));
    for level in 1..=40 {
        let previous = level - 1;
        text.push_str(&format!(
            "    L{level}: {{allOf: [{{$ref: '#/components/schemas/L{previous}'}}, \
             {{$ref: '#/components/schemas/L{previous}'}}]}}\n"
        ));
    }
    let started = Instant::now();
    let err = error(&text)?;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.message.contains("grow too large"), "{err}");
    Ok(())
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() -> anyhow::Result<()> {
    for text in [
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!(
            "{{\"a\":{}0{}}}",
            "{\"a\":".repeat(5_000),
            "}".repeat(5_000)
        ),
        "- ".repeat(10_000),
    ] {
        let err = error(&text)?;
        assert_eq!(err.path, "");
        assert!(
            err.message.contains("nested deeper than 100 levels"),
            "{err}"
        );
    }
    Ok(())
}
