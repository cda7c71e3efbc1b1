//! Specs fetched from a `fetchRequest` (issue 4) through the real application: the registry
//! calls the private fetcher component by service chaining, which fetches from a real local
//! HTTP server started by the test, with the fetch request's credentials.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eventplane_tests::{Received, Reply, TestServer};
use serde_json::{Value, json as j};

use super::{Gql, Registry, SHOP_SPEC, fixture, string_at, strings};
use crate::e2e_test;

/// The fetcher may reach the test servers on loopback.
const ALLOW_LOOPBACK: (&str, &str) = ("SPIN_VARIABLE_FETCH_ALLOWED_HOSTS", "http://127.0.0.1:*");

const API_FIELDS: &str = "id events { name version } spec { data format
    fetchRequest { url mode status { condition message timestamp } } }";

/// A second version of the shop spec: one more event type.
const SHOP_SPEC_V2: &str = r#"
asyncapi: 2.6.0
info: { title: Shop, version: "1.5.0" }
channels:
  order.created.v1:
    subscribe:
      message: { payload: { type: object } }
  order.cancelled.v1:
    subscribe:
      message: { payload: { type: object } }
"#;

async fn start() -> anyhow::Result<Registry> {
    Registry::start_with(&[ALLOW_LOOPBACK]).await
}

/// An event API input fetched from `url` with `auth` (an `AuthInput`, or null).
fn remote(url: &str, auth: Value) -> Value {
    let mut fetch = j!({"url": url});
    if !auth.is_null() {
        fetch["auth"] = auth;
    }
    j!({"name": "remote", "spec": {"eventSpecType": "ASYNC_API", "fetchRequest": fetch}})
}

/// Adds `input` to a fresh application; the API as returned by the mutation.
async fn add(g: &Gql, input: Value) -> anyhow::Result<Value> {
    let app = g.create_app(j!({"name": "shop"})).await?;
    add_to(g, &app, input).await
}

async fn add_to(g: &Gql, app: &str, input: Value) -> anyhow::Result<Value> {
    let data = g
        .ok(
            &format!(
                "mutation($app: ID!, $in: EventAPIDefinitionInput!) {{
                    addEventAPI(applicationID: $app, in: $in) {{ {API_FIELDS} }} }}"
            ),
            j!({"app": app, "in": input}),
        )
        .await?;
    Ok(data["addEventAPI"].clone())
}

async fn refetch(g: &Gql, api: &str) -> anyhow::Result<Value> {
    let data = g
        .ok(
            "mutation($id: ID!) { refetchEventAPISpec(eventID: $id) {
                data format fetchRequest { status { condition message timestamp } } } }",
            j!({"id": api}),
        )
        .await?;
    Ok(data["refetchEventAPISpec"].clone())
}

async fn event_names(g: &Gql, api: &str) -> anyhow::Result<Vec<String>> {
    let data = g
        .ok(
            "query($id: ID!) { eventAPI(id: $id) { events { name } } }",
            j!({"id": api}),
        )
        .await?;
    Ok(strings(&data["eventAPI"]["events"], "name"))
}

fn status(api: &Value) -> (String, String) {
    let status = &api["spec"]["fetchRequest"]["status"];
    (
        status["condition"].as_str().unwrap_or_default().to_owned(),
        status["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Asserts the API was stored with a FAILED fetch whose message contains `expected`.
fn assert_failed(api: &Value, expected: &str) {
    let (condition, message) = status(api);
    assert_eq!(condition, "FAILED", "{api:#}");
    assert!(
        message.contains(expected),
        "message {message:?} lacks {expected:?}"
    );
    assert_eq!(api["spec"]["data"], Value::Null, "{api:#}");
    assert_eq!(api["events"], j!([]), "{api:#}");
    assert!(api["id"].is_string(), "stored anyway: {api:#}");
}

/// Asserts a SUCCEEDED fetch of the shop spec.
fn assert_shop(api: &Value) {
    assert_eq!(
        status(api),
        ("SUCCEEDED".to_owned(), String::new()),
        "{api:#}"
    );
    assert!(
        api["spec"]["fetchRequest"]["status"]["timestamp"].is_string(),
        "{api:#}"
    );
    assert_eq!(api["spec"]["data"], SHOP_SPEC);
    assert_eq!(api["spec"]["format"], "YAML");
    assert_eq!(
        api["events"],
        j!([{"name": "order.created.v1", "version": "v1"}])
    );
}

fn spec_reply() -> Reply {
    Reply::new(200, SHOP_SPEC).header("content-type", "application/yaml")
}

e2e_test! {
    async fn a_spec_behind_basic_auth_is_fetched_with_the_credential() -> anyhow::Result<()> {
        let server = TestServer::start_with(|r| {
            // base64("reader:s3cret")
            if r.header("authorization") == Some("Basic cmVhZGVyOnMzY3JldA==") {
                spec_reply()
            } else {
                Reply::new(401, "who are you?").header("www-authenticate", "Basic")
            }
        })
        .await?;
        let r = start().await?;
        let api = add(
            &r.gql(),
            remote(
                &server.url("/specs/shop.yaml"),
                j!({"credential": {"basic": {"username": "reader", "password": "s3cret"}}}),
            ),
        )
        .await?;
        assert_shop(&api);
        assert_eq!(server.received().len(), 1);

        // Without the credential the server's 401 is the message.
        let api = add_to(
            &r.gql(),
            &r.gql().create_app(j!({"name": "erp"})).await?,
            remote(&server.url("/specs/shop.yaml"), Value::Null),
        )
        .await?;
        assert_failed(&api, &format!("HTTP 401 from {}", server.url("/specs/shop.yaml")));
        r.stop().await
    }
}

e2e_test! {
    async fn a_spec_behind_an_oauth2_token_endpoint_is_fetched_and_the_token_reused()
        -> anyhow::Result<()>
    {
        let tokens = Arc::new(AtomicUsize::new(0));
        let issued = tokens.clone();
        let server = TestServer::start_with(move |r| match r.path_only() {
            "/oauth/token" => {
                // RFC 6749 §4.4 with client authentication per §2.3.1:
                // base64("spec%20reader:p%40ss") — both parts form-encoded first.
                let good = r.method == "POST"
                    && r.header("content-type") == Some("application/x-www-form-urlencoded")
                    && r.body == b"grant_type=client_credentials"
                    && r.header("authorization") == Some("Basic c3BlYyUyMHJlYWRlcjpwJTQwc3M=");
                if good {
                    issued.fetch_add(1, Ordering::SeqCst);
                    Reply::new(
                        200,
                        r#"{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}"#,
                    )
                    .header("content-type", "application/json")
                } else {
                    Reply::new(401, r#"{"error":"invalid_client"}"#)
                }
            }
            "/specs/shop.yaml" if r.header("authorization") == Some("Bearer tok-1") => {
                spec_reply()
            }
            _ => Reply::new(401, "no"),
        })
        .await?;
        let r = start().await?;
        let g = r.gql();
        let auth = j!({"credential": {"oauth": {
            "clientId": "spec reader", "clientSecret": "p@ss", "url": server.url("/oauth/token"),
        }}});
        let api = add(&g, remote(&server.url("/specs/shop.yaml"), auth)).await?;
        assert_shop(&api);
        assert_eq!(tokens.load(Ordering::SeqCst), 1);

        // The token is cached and reused by the next fetch.
        let spec = refetch(&g, &string_at(&api, "/id")?).await?;
        assert_eq!(spec["fetchRequest"]["status"]["condition"], "SUCCEEDED");
        assert_eq!(tokens.load(Ordering::SeqCst), 1, "{:#?}", server.received());

        // A token endpoint refusing the client fails the fetch with its answer.
        let bad = j!({"credential": {"oauth": {
            "clientId": "spec reader", "clientSecret": "wrong", "url": server.url("/oauth/token"),
        }}});
        let api = add_to(
            &g,
            &g.create_app(j!({"name": "erp"})).await?,
            remote(&server.url("/specs/shop.yaml"), bad),
        )
        .await?;
        assert_failed(&api, "answered HTTP 401 (invalid_client)");
        r.stop().await
    }
}

/// A server behind the CSRF flow: `/csrf` hands out a token and session cookies to a request
/// with `X-CSRF-Token: Fetch` and its own credential (base64("csrf:c-pass")); the spec is served
/// only with that token, those cookies and `spec_authorization` (`None`: no `Authorization`).
async fn csrf_flow_server(spec_authorization: Option<&'static str>) -> anyhow::Result<TestServer> {
    TestServer::start_with(move |r| match r.path_only() {
        "/csrf"
            if r.header("x-csrf-token") == Some("Fetch")
                && r.header("authorization") == Some("Basic Y3NyZjpjLXBhc3M=") =>
        {
            Reply::new(200, "")
                .header("x-csrf-token", "csrf-42")
                .header("set-cookie", "SESSION=abc; Path=/; HttpOnly")
                .header("set-cookie", "route=r7; Path=/")
        }
        "/specs/shop.yaml"
            if r.header("x-csrf-token") == Some("csrf-42")
                && r.header("cookie") == Some("SESSION=abc; route=r7")
                && r.header("authorization") == spec_authorization =>
        {
            spec_reply()
        }
        _ => Reply::new(403, "CSRF token validation failed").header("x-csrf-token", "Required"),
    })
    .await
}

/// Fetches the shop's spec from `server` with `auth`: the token first, then the spec.
async fn fetch_through_csrf(server: &TestServer, auth: Value) -> anyhow::Result<()> {
    let r = start().await?;
    let api = add(&r.gql(), remote(&server.url("/specs/shop.yaml"), auth)).await?;
    assert_shop(&api);
    let paths: Vec<String> = server.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/csrf", "/specs/shop.yaml"]);
    r.stop().await
}

e2e_test! {
    async fn a_spec_behind_the_csrf_flow_is_fetched_with_token_and_cookies() -> anyhow::Result<()> {
        // base64("reader:s3cret")
        let server = csrf_flow_server(Some("Basic cmVhZGVyOnMzY3JldA==")).await?;
        let auth = j!({
            "credential": {"basic": {"username": "reader", "password": "s3cret"}},
            "requestAuth": {"csrf": {
                "tokenEndpointURL": server.url("/csrf"),
                "credential": {"basic": {"username": "csrf", "password": "c-pass"}},
            }},
        });
        fetch_through_csrf(&server, auth).await
    }
}

e2e_test! {
    async fn a_csrf_request_alone_is_a_whole_auth_for_fetching() -> anyhow::Result<()> {
        // SAP-style: only the token endpoint takes a credential; the spec request carries the
        // token and the session cookies, and no Authorization of its own.
        let server = csrf_flow_server(None).await?;
        let auth = j!({"requestAuth": {"csrf": {
            "tokenEndpointURL": server.url("/csrf"),
            "credential": {"basic": {"username": "csrf", "password": "c-pass"}},
        }}});
        fetch_through_csrf(&server, auth).await
    }
}

e2e_test! {
    async fn extra_headers_and_query_params_are_sent() -> anyhow::Result<()> {
        let server = TestServer::start_with(|r| {
            if r.header("x-api-key") == Some("k-1, k-2")
                && r.path == "/specs/shop.yaml?tenant=acme&v=2"
            {
                spec_reply()
            } else {
                Reply::new(400, "missing key or query")
            }
        })
        .await?;
        let r = start().await?;
        let auth = j!({
            "credential": {"basic": {"username": "u", "password": "p"}},
            "additionalHeaders": {"X-Api-Key": ["k-1", "k-2"]},
            "additionalQueryParams": {"tenant": ["acme"], "v": ["2"]},
        });
        let api = add(&r.gql(), remote(&server.url("/specs/shop.yaml"), auth)).await?;
        assert_shop(&api);
        r.stop().await
    }
}

e2e_test! {
    async fn each_way_a_fetch_fails_has_its_own_message() -> anyhow::Result<()> {
        let big = vec![b'#'; 5 * 1024 * 1024];
        let server = TestServer::start_with(move |r| match r.path_only() {
            "/missing" => Reply::new(404, "not here"),
            "/slow" => spec_reply().after(Duration::from_secs(4)),
            "/huge" => Reply::new(200, big.clone()).header("content-type", "application/yaml"),
            "/loop" => Reply::new(302, "").header("location", "/loop"),
            "/html" => Reply::new(200, "<html><body>login</body></html>")
                .header("content-type", "text/html; charset=utf-8"),
            "/bad-yaml" => Reply::new(200, "asyncapi: 2.6.0\ninfo: [unclosed\n")
                .header("content-type", "application/yaml"),
            "/kubernetes" => Reply::new(
                200,
                fixture("broken/kubernetes-deployment.yaml").unwrap_or_default(),
            ),
            "/latin1" => Reply::new(200, b"asyncapi: 2.6.0\ninfo: {title: Caf\xe9}\n".to_vec()),
            "/elsewhere" => Reply::new(301, "").header("location", "https://specs.example.com/s.yaml"),
            _ => spec_reply(),
        })
        .await?;
        let r = Registry::start_with(&[ALLOW_LOOPBACK, ("SPIN_VARIABLE_FETCH_TIMEOUT_MS", "1500")])
            .await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let cases = [
            ("/missing", format!("HTTP 404 from {}", server.url("/missing"))),
            ("/slow", "timed out after 1.5 s".to_owned()),
            ("/huge", "response larger than 2 MiB".to_owned()),
            ("/loop", "more than 3 redirects".to_owned()),
            ("/html", "wrong content".to_owned()),
            ("/bad-yaml", "invalid YAML at line".to_owned()),
            ("/kubernetes", "not an AsyncAPI document".to_owned()),
            ("/latin1", "not valid UTF-8".to_owned()),
            ("/elsewhere", "which the fetcher may not reach".to_owned()),
        ];
        for (path, expected) in &cases {
            let started = std::time::Instant::now();
            let api = add_to(&g, &app, remote(&server.url(path), Value::Null)).await?;
            assert_failed(&api, expected);
            if *path == "/slow" {
                assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
            }
        }
        // The redirect loop stopped after 3 redirects: 4 requests.
        let loops = server.received().iter().filter(|r| r.path == "/loop").count();
        assert_eq!(loops, 4);

        // PACKAGE and INDEX modes fail saying so, without a request.
        let before = server.received().len();
        for mode in ["PACKAGE", "INDEX"] {
            let mut input = remote(&server.url("/spec"), Value::Null);
            input["spec"]["fetchRequest"]["mode"] = j!(mode);
            let api = add_to(&g, &app, input).await?;
            assert_failed(&api, &format!("fetch mode {mode} is not supported"));
        }
        assert_eq!(server.received().len(), before);
        r.stop().await
    }
}

e2e_test! {
    async fn a_redirect_is_followed_but_credentials_stay_with_their_origin() -> anyhow::Result<()> {
        let other = TestServer::start_with(|_| spec_reply()).await?;
        let target = other.url("/specs/shop.yaml");
        let server = TestServer::start_with(move |r| match r.path_only() {
            "/old" => Reply::new(301, "").header("location", "/new"),
            "/new" => Reply::new(307, "").header("location", &target),
            _ => Reply::new(404, ""),
        })
        .await?;
        let r = start().await?;
        let auth = j!({"credential": {"basic": {"username": "u", "password": "p"}}});
        let api = add(&r.gql(), remote(&server.url("/old"), auth)).await?;
        assert_shop(&api);
        let here: Vec<Received> = server.received();
        assert!(here.iter().all(|r| r.header("authorization").is_some()), "{here:#?}");
        let there = other.received();
        assert_eq!(there.len(), 1);
        assert_eq!(there[0].header("authorization"), None, "credentials leaked: {there:#?}");
        r.stop().await
    }
}

e2e_test! {
    async fn by_default_the_fetcher_may_not_reach_plain_http() -> anyhow::Result<()> {
        let server = TestServer::start_with(|_| spec_reply()).await?;
        let r = Registry::start().await?;
        let api = add(&r.gql(), remote(&server.url("/specs/shop.yaml"), Value::Null)).await?;
        assert_failed(&api, "the fetcher may not reach");
        assert!(server.received().is_empty());
        r.stop().await
    }
}

e2e_test! {
    async fn refetch_follows_the_document_and_a_failed_refetch_keeps_the_old_spec()
        -> anyhow::Result<()>
    {
        let document = Arc::new(Mutex::new(Reply::new(200, SHOP_SPEC)));
        let current = document.clone();
        let server = TestServer::start_with(move |_| {
            current.lock().map(|reply| reply.clone()).unwrap_or_else(|_| Reply::new(500, ""))
        })
        .await?;
        let r = start().await?;
        let g = r.gql();
        let api = add(&g, remote(&server.url("/specs/shop.yaml"), Value::Null)).await?;
        assert_shop(&api);
        let id = string_at(&api, "/id")?;

        *document.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Reply::new(200, SHOP_SPEC_V2);
        let spec = refetch(&g, &id).await?;
        assert_eq!(spec["data"], SHOP_SPEC_V2);
        assert_eq!(spec["fetchRequest"]["status"]["condition"], "SUCCEEDED");
        assert_eq!(event_names(&g, &id).await?, ["order.created.v1", "order.cancelled.v1"]);

        *document.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Reply::new(503, "down");
        let spec = refetch(&g, &id).await?;
        assert_eq!(spec["data"], SHOP_SPEC_V2, "the last good document is kept");
        assert_eq!(spec["fetchRequest"]["status"]["condition"], "FAILED");
        assert_eq!(
            spec["fetchRequest"]["status"]["message"],
            format!("HTTP 503 from {}", server.url("/specs/shop.yaml"))
        );
        assert_eq!(event_names(&g, &id).await?, ["order.created.v1", "order.cancelled.v1"]);
        r.stop().await
    }
}

e2e_test! {
    async fn asyncapi_2_and_3_documents_are_fetched_and_broken_ones_fail() -> anyhow::Result<()> {
        let valid = [
            ("greenhouse-2.0.yaml", 2),
            ("crm-unversioned-2.2.yaml", 1),
            ("payments-2.3.json", 1),
            ("shop-2.4.yaml", 1),
            ("logistics-2.6.yaml", 1),
            ("bank-accounts-3.0.yaml", 1),
            ("erp-3.0.1.yaml", 1),
            ("chat-3.0.json", 1),
        ];
        let server = TestServer::start_with(|r| {
            let name = r.path_only().trim_start_matches('/');
            match fixture(name) {
                Ok(text) => Reply::new(200, text),
                Err(_) => Reply::new(404, ""),
            }
        })
        .await?;
        let r = start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        for (name, at_least) in valid {
            let api = add_to(&g, &app, remote(&server.url(&format!("/{name}")), Value::Null)).await?;
            assert_eq!(status(&api).0, "SUCCEEDED", "{name}: {api:#}");
            let events = api["events"].as_array().map_or(0, Vec::len);
            assert!(events >= at_least, "{name}: {events} events");
            let expected_format = if name.ends_with(".json") { "JSON" } else { "YAML" };
            assert_eq!(api["spec"]["format"], expected_format, "{name}");
        }
        for broken in ["broken/billion-laughs.yaml", "broken/tab-indented.yaml", "broken/kubernetes-deployment.yaml"] {
            let api = add_to(&g, &app, remote(&server.url(&format!("/{broken}")), Value::Null)).await?;
            assert_eq!(status(&api).0, "FAILED", "{broken}: {api:#}");
        }
        r.stop().await
    }
}

/// A document split across files (issue 21): the root in `/apis/shop/`, its messages in
/// `/common/` (reached with `../../`), the schemas next to the messages; plus variants that
/// fail. Every file is served behind the same Basic credential.
fn split_files(path: &str) -> Option<String> {
    let text = match path {
        "/apis/shop/asyncapi.yaml" => concat!(
            "asyncapi: 2.6.0\n",
            "info: {title: Shop, version: '1.0.0'}\n",
            "channels:\n",
            "  order.created.v1:\n",
            "    subscribe:\n",
            "      message: {$ref: '../../common/messages.yaml#/components/messages/OrderCreated'}\n",
            "  order.paid.v1:\n",
            "    subscribe:\n",
            "      message: {payload: {$ref: 'money.json#/Money'}}\n",
            "components:\n",
            "  schemas:\n",
            "    OrderId: {type: string}\n",
        ),
        // Refers back to the root's component: a cycle of files that resolves.
        "/common/messages.yaml" => concat!(
            "components:\n",
            "  messages:\n",
            "    OrderCreated:\n",
            "      summary: An order was placed.\n",
            "      payload:\n",
            "        type: object\n",
            "        properties:\n",
            "          id: {$ref: '../apis/shop/asyncapi.yaml#/components/schemas/OrderId'}\n",
            "          total: {$ref: 'schemas/money.yaml#/Money'}\n",
        ),
        "/common/schemas/money.yaml" => "Money: {type: number, minimum: 0}\n",
        "/apis/shop/money.json" => {
            r#"{"Money": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"}}"#
        }
        "/broken/missing.yaml" => concat!(
            "asyncapi: 2.6.0\ninfo: {title: Shop, version: '1'}\nchannels:\n",
            "  order.created.v1:\n    subscribe:\n      message: {$ref: 'gone.yaml#/M'}\n",
        ),
        "/broken/loop.yaml" => concat!(
            "asyncapi: 2.6.0\ninfo: {title: Shop, version: '1'}\nchannels:\n",
            "  order.created.v1:\n    subscribe:\n      message: {payload: {$ref: 'loop-b.yaml#/A'}}\n",
        ),
        "/broken/loop-b.yaml" => {
            "A: {$ref: '#/B'}\nB: {$ref: 'loop.yaml#/channels/order.created.v1/subscribe/message/payload'}\n"
        }
        "/broken/big.yaml" => concat!(
            "asyncapi: 2.6.0\ninfo: {title: Shop, version: '1'}\nchannels:\n",
            "  order.created.v1:\n    subscribe:\n      message: {payload: {$ref: 'big-schema.yaml#/S'}}\n",
        ),
        "/broken/big-schema.yaml" => {
            return Some(format!(
                "S: {{type: string, description: '{}'}}\n",
                "x".repeat(6000)
            ));
        }
        "/broken/page.yaml" => concat!(
            "asyncapi: 2.6.0\ninfo: {title: Shop, version: '1'}\nchannels:\n",
            "  order.created.v1:\n    subscribe:\n      message: {payload: {$ref: 'login.html'}}\n",
        ),
        "/broken/elsewhere.yaml" => concat!(
            "asyncapi: 2.6.0\ninfo: {title: Shop, version: '1'}\nchannels:\n",
            "  order.created.v1:\n    subscribe:\n      message: {payload: {$ref: 'https://specs.example.com/s.yaml'}}\n",
        ),
        _ => return None,
    };
    Some(text.to_owned())
}

e2e_test! {
    async fn a_spec_split_across_files_is_fetched_and_stored_as_one_document()
        -> anyhow::Result<()>
    {
        let server = TestServer::start_with(|r| {
            if r.header("authorization") != Some("Basic cmVhZGVyOnMzY3JldA==") {
                return Reply::new(401, "who are you?");
            }
            match (r.path_only(), split_files(r.path_only())) {
                ("/broken/login.html", _) => Reply::new(200, "<html>login</html>")
                    .header("content-type", "text/html"),
                (_, Some(text)) => Reply::new(200, text).header("content-type", "application/yaml"),
                (_, None) => Reply::new(404, "not here"),
            }
        })
        .await?;
        let r = Registry::start_with(&[ALLOW_LOOPBACK, ("SPIN_VARIABLE_SPEC_MAX_BYTES", "4096")])
            .await?;
        let g = r.gql();
        let basic = j!({"credential": {"basic": {"username": "reader", "password": "s3cret"}}});
        let app = g.create_app(j!({"name": "shop"})).await?;
        let api = add_to(&g, &app, remote(&server.url("/apis/shop/asyncapi.yaml"), basic.clone()))
            .await?;
        assert_eq!(status(&api), ("SUCCEEDED".to_owned(), String::new()), "{api:#}");
        assert_eq!(
            api["events"],
            j!([{"name": "order.created.v1", "version": "v1"}, {"name": "order.paid.v1", "version": "v1"}])
        );
        let id = string_at(&api, "/id")?;
        let data = g
            .ok(
                "query($id: ID!) { eventAPI(id: $id) { spec { data } events { name payloadSchema } } }",
                j!({"id": id}),
            )
            .await?;
        let schema: Value = serde_json::from_str(
            data["eventAPI"]["events"][0]["payloadSchema"].as_str().unwrap_or_default(),
        )?;
        assert_eq!(
            schema,
            j!({"type": "object", "properties": {
                "id": {"type": "string"}, "total": {"type": "number", "minimum": 0}}})
        );
        // Stored as one self-contained document: the other files embedded, local $refs only.
        let stored = data["eventAPI"]["spec"]["data"].as_str().unwrap_or_default();
        assert!(stored.contains("\nx-eventplane-files:\n"), "{stored}");
        for file in ["/common/messages.yaml", "/apis/shop/money.json", "/common/schemas/money.yaml"] {
            assert!(stored.contains(&server.url(file)), "{file}: {stored}");
        }
        assert!(!stored.contains("$ref: ../"), "{stored}");
        let paths = |server: &TestServer| -> Vec<String> {
            server.received().iter().map(|r| r.path.clone()).collect()
        };
        let fetched = [
            "/apis/shop/asyncapi.yaml",
            "/common/messages.yaml",
            "/apis/shop/money.json",
            "/common/schemas/money.yaml",
        ];
        assert_eq!(paths(&server), fetched);

        // A refetch fetches every file again.
        let spec = refetch(&g, &id).await?;
        assert_eq!(spec["fetchRequest"]["status"]["condition"], "SUCCEEDED");
        assert_eq!(paths(&server), [fetched, fetched].concat());

        // Each failure names the reference and where it is written.
        let cases = [
            (
                "/broken/missing.yaml",
                format!(
                    "$ref `gone.yaml#/M` cannot be loaded: HTTP 404 from {} \
                     (at /channels/order.created.v1/subscribe/message/$ref) \
                     (in the document from {})",
                    server.url("/broken/gone.yaml"),
                    server.url("/broken/missing.yaml")
                ),
            ),
            (
                "/broken/loop.yaml",
                format!(
                    "$ref cycle through #/channels/order.created.v1/subscribe/message/payload \
                     → #/x-eventplane-files/{file}/A → #/x-eventplane-files/{file}/B \
                     → #/channels/order.created.v1/subscribe/message/payload \
                     (at /x-eventplane-files/{file}/B/$ref) (in the document from {})",
                    server.url("/broken/loop.yaml"),
                    file = server.url("/broken/loop-b.yaml").replace('/', "~1"),
                ),
            ),
            (
                "/broken/big.yaml",
                format!(
                    "$ref `big-schema.yaml#/S` brings the document's files to {} bytes, more \
                     than the 4096 bytes they may hold together (spec_max_bytes) \
                     (at /channels/order.created.v1/subscribe/message/payload/$ref) \
                     (in the document from {})",
                    split_files("/broken/big.yaml").unwrap_or_default().len()
                        + split_files("/broken/big-schema.yaml").unwrap_or_default().len(),
                    server.url("/broken/big.yaml")
                ),
            ),
            (
                "/broken/page.yaml",
                format!(
                    "$ref `login.html` cannot be loaded: wrong content from {}: Content-Type \
                     `text/html`, expected an AsyncAPI document (JSON or YAML) \
                     (at /channels/order.created.v1/subscribe/message/payload/$ref) \
                     (in the document from {})",
                    server.url("/broken/login.html"),
                    server.url("/broken/page.yaml")
                ),
            ),
            (
                "/broken/elsewhere.yaml",
                format!(
                    "$ref `https://specs.example.com/s.yaml` cannot be loaded: the fetcher may \
                     not reach https://specs.example.com/s.yaml (fetch_allowed_hosts) \
                     (at /channels/order.created.v1/subscribe/message/payload/$ref) \
                     (in the document from {})",
                    server.url("/broken/elsewhere.yaml")
                ),
            ),
        ];
        for (path, expected) in &cases {
            let api = add_to(&g, &app, remote(&server.url(path), basic.clone())).await?;
            assert_eq!(status(&api), ("FAILED".to_owned(), expected.clone()), "{path}");
            assert_eq!(api["events"], j!([]), "{path}");
        }

        // Given inline, a document with a relative $ref is refused, saying to register it by URL.
        let inline = split_files("/apis/shop/asyncapi.yaml").unwrap_or_default();
        let error = g
            .error(
                "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
                    addEventAPI(applicationID: $app, in: $in) { id } }",
                j!({"app": app, "in": {"name": "inline", "spec": {"eventSpecType": "ASYNC_API", "data": inline}}}),
            )
            .await?;
        assert_eq!(error["extensions"]["code"], "INVALID_SPEC", "{error}");
        assert_eq!(
            error["extensions"]["path"],
            "/channels/order.created.v1/subscribe/message/$ref",
            "{error}"
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(
                "$ref `../../common/messages.yaml#/components/messages/OrderCreated` refers to \
                 another file, which a document given inline cannot: register the document by \
                 URL (spec.fetchRequest)"
            ),
            "{message}"
        );
        r.stop().await
    }
}
