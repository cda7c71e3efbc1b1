//! Bundling with an in-memory loader.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::*;

/// Files served from memory; records what was loaded.
#[derive(Default)]
struct Memory {
    files: HashMap<String, Vec<u8>>,
    loaded: RefCell<Vec<String>>,
}

impl Memory {
    fn with(files: &[(&str, &str)]) -> Self {
        Self {
            files: files
                .iter()
                .map(|(url, text)| ((*url).to_owned(), text.as_bytes().to_vec()))
                .collect(),
            loaded: RefCell::default(),
        }
    }
}

impl Files for Memory {
    async fn load(&self, url: &str) -> Result<Vec<u8>, String> {
        self.loaded.borrow_mut().push(url.to_owned());
        self.files
            .get(url)
            .cloned()
            .ok_or_else(|| format!("HTTP 404 from {url}"))
    }
}

/// Runs a future that never waits (the memory loader is ready at once).
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the in-memory loader never waits"),
    }
}

const ROOT: &str = "http://specs.example/apis/shop/asyncapi.yaml";

fn run(files: &Memory, limits: BundleLimits) -> Result<Bundled, SpecError> {
    let root = files.files.get(ROOT).cloned().unwrap_or_default();
    ready(bundle(ROOT, &root, None, files, limits))
}

fn limits() -> BundleLimits {
    BundleLimits::with_total_bytes(1 << 20)
}

/// A 2.6 document whose one channel's message is `message` (YAML flow).
fn root_with(message: &str) -> String {
    format!(
        "asyncapi: 2.6.0\ninfo: {{title: Shop, version: '1'}}\nchannels:\n  order.created.v1:\n    subscribe:\n      message: {message}\n"
    )
}

fn catalog(bundled: &Bundled) -> Result<Vec<(String, Option<serde_json::Value>)>, SpecError> {
    Ok(crate::parse(&bundled.text, Some(bundled.format))?
        .events
        .into_iter()
        .map(|e| (e.name, e.payload_schema))
        .collect())
}

#[test]
fn relative_urls_resolve_with_dot_segments() {
    let base = "http://h.example:8080/a/b/c.yaml?x=1";
    let cases = [
        ("d.yaml", "http://h.example:8080/a/b/d.yaml"),
        ("../common/m.yaml", "http://h.example:8080/a/common/m.yaml"),
        ("./x/../y.json", "http://h.example:8080/a/b/y.json"),
        ("../../../../z.yaml", "http://h.example:8080/z.yaml"),
        ("/abs.yaml", "http://h.example:8080/abs.yaml"),
        ("//other.example/s.yaml", "http://other.example/s.yaml"),
        (
            "https://other.example/p/../s.yaml",
            "https://other.example/s.yaml",
        ),
        ("", "http://h.example:8080/a/b/c.yaml?x=1"),
    ];
    for (reference, expected) in cases {
        assert_eq!(
            join(base, reference).as_deref(),
            Ok(expected),
            "{reference}"
        );
    }
    for bad in ["file:///etc/passwd", "urn:x:y", "ftp://h/x"] {
        assert!(join(base, bad).is_err(), "{bad}");
    }
}

#[test]
fn a_document_without_external_refs_is_returned_as_given() -> Result<(), SpecError> {
    let text = root_with(
        "{payload: {$ref: '#/components/schemas/X'}}\ncomponents: {schemas: {X: {type: string}}}",
    );
    let files = Memory::with(&[(ROOT, &text)]);
    let bundled = run(&files, limits())?;
    assert_eq!((bundled.text.as_str(), bundled.files), (text.as_str(), 1));
    assert!(files.loaded.borrow().is_empty());
    Ok(())
}

#[test]
fn files_in_three_directories_are_bundled_into_one_document() -> Result<(), SpecError> {
    let files = Memory::with(&[
        (
            ROOT,
            &root_with("{$ref: '../../common/messages.yaml#/components/messages/OrderCreated'}"),
        ),
        (
            "http://specs.example/common/messages.yaml",
            concat!(
                "components:\n  messages:\n    OrderCreated:\n      summary: An order was placed.\n",
                "      payload: {$ref: '#/components/schemas/Order'}\n",
                "  schemas:\n    Order:\n      type: object\n",
                "      properties: {total: {$ref: 'schemas/money.json#/Money'}}\n",
            ),
        ),
        (
            "http://specs.example/common/schemas/money.json",
            r#"{"Money": {"type": "number", "minimum": 0}}"#,
        ),
    ]);
    let bundled = run(&files, limits())?;
    assert_eq!(bundled.files, 3);
    assert_eq!(bundled.format, SpecFormat::Yaml);
    assert_eq!(
        catalog(&bundled)?,
        [(
            "order.created.v1".to_owned(),
            Some(serde_json::json!({
                "type": "object",
                "properties": {"total": {"type": "number", "minimum": 0}}
            }))
        )]
    );
    // The stored document is self-contained: local references only, the files embedded.
    let document: serde_json::Value = serde_yaml_ng::from_str(&bundled.text).unwrap_or_default();
    assert_eq!(
        document["channels"]["order.created.v1"]["subscribe"]["message"]["$ref"],
        "#/x-eventplane-files/http:~1~1specs.example~1common~1messages.yaml/components/messages/OrderCreated"
    );
    let embedded = document[FILES_KEY]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>());
    assert_eq!(
        embedded.unwrap_or_default(),
        [
            "http://specs.example/common/messages.yaml",
            "http://specs.example/common/schemas/money.json"
        ]
    );
    // Bundling the bundle changes nothing: there is nothing left to load.
    assert_eq!(
        crate::bundle::external_ref(&text::decode(&bundled.text, None)?.root),
        None
    );
    Ok(())
}

#[test]
fn a_cycle_of_files_that_resolves_is_fine_and_each_file_is_loaded_once() -> Result<(), SpecError> {
    // The root refers to b.yaml's message, whose payload is the root's schema.
    let root = format!(
        "{}components:\n  schemas:\n    Id: {{type: string}}\n    Order: {{properties: {{id: {{$ref: 'b.yaml#/Id'}}}}}}\n",
        root_with("{$ref: 'b.yaml#/Created'}")
    );
    let files = Memory::with(&[
        (ROOT, &root),
        (
            "http://specs.example/apis/shop/b.yaml",
            "Created: {payload: {$ref: 'asyncapi.yaml#/components/schemas/Order'}}\nId: {$ref: 'asyncapi.yaml#/components/schemas/Id'}\n",
        ),
    ]);
    let bundled = run(&files, limits())?;
    assert_eq!(bundled.files, 2);
    assert_eq!(
        catalog(&bundled)?[0].1,
        Some(serde_json::json!({"properties": {"id": {"type": "string"}}}))
    );
    assert_eq!(
        *files.loaded.borrow(),
        ["http://specs.example/apis/shop/b.yaml"]
    );
    Ok(())
}

#[test]
fn an_infinite_ref_loop_across_files_names_the_chain() -> Result<(), SpecError> {
    let files = Memory::with(&[
        (ROOT, &root_with("{payload: {$ref: 'b.yaml#/A'}}")),
        (
            "http://specs.example/apis/shop/b.yaml",
            "A: {$ref: '#/B'}\nB: {$ref: '#/A'}\n",
        ),
    ]);
    let bundled = run(&files, limits())?;
    let err = crate::parse(&bundled.text, None).unwrap_err();
    let file = "#/x-eventplane-files/http:~1~1specs.example~1apis~1shop~1b.yaml";
    assert_eq!(
        err.path,
        "/x-eventplane-files/http:~1~1specs.example~1apis~1shop~1b.yaml/B/$ref"
    );
    assert_eq!(
        err.message,
        format!("$ref cycle through {file}/A → {file}/B → {file}/A")
    );
    Ok(())
}

#[test]
fn a_missing_file_names_the_reference_and_where_it_is() {
    let files = Memory::with(&[(ROOT, &root_with("{payload: {$ref: '../nope.yaml#/X'}}"))]);
    let err = run(&files, limits()).unwrap_err();
    assert_eq!(
        err.path,
        "/channels/order.created.v1/subscribe/message/payload/$ref"
    );
    assert_eq!(
        err.message,
        "$ref `../nope.yaml#/X` cannot be loaded: HTTP 404 from http://specs.example/apis/nope.yaml"
    );
}

#[test]
fn a_problem_in_another_file_names_that_file() {
    let files = Memory::with(&[
        (ROOT, &root_with("{$ref: 'm.yaml#/M'}")),
        (
            "http://specs.example/apis/shop/m.yaml",
            "M: {payload: {$ref: 'gone.json'}}\n",
        ),
    ]);
    let err = run(&files, limits()).unwrap_err();
    assert_eq!(err.path, "/M/payload/$ref");
    assert_eq!(
        err.message,
        "$ref `gone.json` (in http://specs.example/apis/shop/m.yaml) cannot be loaded: \
         HTTP 404 from http://specs.example/apis/shop/gone.json"
    );
}

#[test]
fn files_that_are_not_json_or_yaml_are_refused() {
    let files = Memory::with(&[
        (ROOT, &root_with("{payload: {$ref: 'page.yaml'}}")),
        ("http://specs.example/apis/shop/page.yaml", "a: [unclosed\n"),
    ]);
    let err = run(&files, limits()).unwrap_err();
    assert_eq!(
        err.path,
        "/channels/order.created.v1/subscribe/message/payload/$ref"
    );
    assert!(
        err.message.starts_with(
            "$ref `page.yaml` names http://specs.example/apis/shop/page.yaml, which is not a JSON \
             or YAML document: invalid YAML at line"
        ),
        "{err}"
    );
}

#[test]
fn the_files_together_must_fit_the_byte_budget() {
    let big = format!("X: {{type: string, description: '{}'}}\n", "x".repeat(2000));
    let root = root_with("{payload: {$ref: 'big.yaml#/X'}}");
    let files = Memory::with(&[
        (ROOT, &root),
        ("http://specs.example/apis/shop/big.yaml", &big),
    ]);
    let err = run(&files, BundleLimits::with_total_bytes(root.len() + 1000)).unwrap_err();
    assert_eq!(
        err.path,
        "/channels/order.created.v1/subscribe/message/payload/$ref"
    );
    assert_eq!(
        err.message,
        format!(
            "$ref `big.yaml#/X` brings the document's files to {} bytes, more than the {} bytes \
             they may hold together (spec_max_bytes)",
            root.len() + big.len(),
            root.len() + 1000
        )
    );
}

#[test]
fn file_count_and_depth_are_limited() {
    // A chain root → f1 → f2 → ...: each file refers to the next.
    let mut owned = vec![(
        ROOT.to_owned(),
        root_with("{payload: {$ref: 'f1.yaml#/S'}}"),
    )];
    for i in 1..=40 {
        owned.push((
            format!("http://specs.example/apis/shop/f{i}.yaml"),
            format!("S: {{$ref: 'f{}.yaml#/S'}}\n", i + 1),
        ));
    }
    let pairs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(u, t)| (u.as_str(), t.as_str()))
        .collect();
    let files = Memory::with(&pairs);
    let err = run(&files, limits()).unwrap_err();
    assert_eq!(err.path, "/S/$ref");
    assert!(
        err.message.starts_with(&format!(
            "$ref `f9.yaml#/S` (in http://specs.example/apis/shop/f8.yaml) leads more than {MAX_FILE_DEPTH} files deep: {ROOT} → "
        )),
        "{err}"
    );
    let wide = BundleLimits {
        max_files: 4,
        max_depth: 100,
        ..limits()
    };
    let err = run(&files, wide).unwrap_err();
    assert_eq!(
        err.message,
        "$ref `f4.yaml#/S` (in http://specs.example/apis/shop/f3.yaml) would be file 5 of the \
         document: a document may span at most 4 files"
    );
}

#[test]
fn other_schemes_and_plain_name_fragments_are_refused() {
    for (reference, expected) in [
        (
            "file:///etc/passwd",
            "$ref `file:///etc/passwd` is not an http(s) URL or a path relative to the document",
        ),
        (
            "b.yaml#Order",
            "$ref `b.yaml#Order` has a fragment that is not a JSON Pointer (expected `file.yaml#/components/...`)",
        ),
    ] {
        let files = Memory::with(&[(
            ROOT,
            &root_with(&format!("{{payload: {{$ref: '{reference}'}}}}")),
        )]);
        let err = run(&files, limits()).unwrap_err();
        assert_eq!(err.message, expected);
    }
}

#[test]
fn an_inline_document_with_a_relative_ref_says_to_register_it_by_url() {
    let err =
        crate::parse(&root_with("{payload: {$ref: 'schemas.json#/Money'}}"), None).unwrap_err();
    assert_eq!(
        err.path,
        "/channels/order.created.v1/subscribe/message/payload/$ref"
    );
    assert!(
        err.message.starts_with(
            "$ref `schemas.json#/Money` refers to another file, which a document given inline \
             cannot: register the document by URL (spec.fetchRequest)"
        ),
        "{err}"
    );
}

#[test]
fn json_roots_stay_json_in_document_order() -> Result<(), SpecError> {
    let root = r#"{"asyncapi": "2.6.0", "info": {"title": "T", "version": "1"}, "channels": {"z.v1": {"subscribe": {"message": {"$ref": "m.json"}}}, "a.v1": {"subscribe": {"message": {"$ref": "m.json"}}}}}"#;
    let files = Memory::with(&[
        (ROOT, root),
        (
            "http://specs.example/apis/shop/m.json",
            r#"{"payload": {"type": "object"}}"#,
        ),
    ]);
    let bundled = run(&files, limits())?;
    assert_eq!(bundled.format, SpecFormat::Json);
    let names: Vec<String> = catalog(&bundled)?.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["z.v1", "a.v1"]);
    Ok(())
}
