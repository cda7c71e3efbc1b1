//! Documents split across files (issue 21): a document fetched from a URL may `$ref` other
//! files by URLs relative to its own (`../common/messages.yaml#/components/messages/Created`,
//! `schemas.json#/Money`, `other.yaml`). [`bundle`] loads them through a [`Files`] loader and
//! returns one self-contained document, which is what is stored, validated and read.
//!
//! The bundled document is the root document with every other file embedded whole under the
//! reserved root member [`FILES_KEY`] (a specification extension, so AsyncAPI tools ignore it),
//! keyed by the file's absolute URL; every `$ref` to another file (in the root or in an embedded
//! file) is rewritten into a local `#/x-eventplane-files/<url>/...` reference, and an embedded
//! file's own local `$ref`s are rewritten to stay inside it. A reference back to the root file
//! becomes a plain `#/...`. Cycles of files (A → B → A's component) therefore resolve like
//! local references; a `$ref` chain that loops forever is reported by the usual cycle check,
//! naming each step.
//!
//! Loading is the caller's: this crate does no I/O. A document without external references is
//! returned as it was given, byte for byte.

use std::future::Future;

use indexmap::IndexMap;

use crate::error::SpecError;
use crate::node::Node;
use crate::pointer;
use crate::{SpecFormat, text};

/// The most files one document may span, the root included.
pub const MAX_FILES: usize = 32;

/// The longest chain of files referring to files (the root is at depth 0).
pub const MAX_FILE_DEPTH: usize = 8;

/// The root member under which the other files of a bundled document are embedded.
pub const FILES_KEY: &str = "x-eventplane-files";

/// Loads the files a document refers to (over HTTP in the fetcher, from memory in tests).
pub trait Files {
    /// The bytes at the absolute URL `url` (no fragment), or why they cannot be had (a message
    /// for the registrant: `HTTP 404 from ...`, a host that may not be reached, a size limit).
    fn load(&self, url: &str) -> impl Future<Output = Result<Vec<u8>, String>>;
}

/// How far a document may spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// The most files, the root included ([`MAX_FILES`]).
    pub max_files: usize,
    /// The most bytes of all files together (the fetcher uses `spec_max_bytes`).
    pub max_total_bytes: usize,
    /// The longest chain of files ([`MAX_FILE_DEPTH`]).
    pub max_depth: usize,
}

impl BundleLimits {
    /// The default file count and depth, with `max_total_bytes` for all files together.
    pub fn with_total_bytes(max_total_bytes: usize) -> Self {
        Self {
            max_files: MAX_FILES,
            max_total_bytes,
            max_depth: MAX_FILE_DEPTH,
        }
    }
}

/// A bundled document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundled {
    /// The self-contained document: the root's text when it refers to no other file, else the
    /// bundle, in the root's format.
    pub text: String,
    /// The root's format (detected unless declared).
    pub format: SpecFormat,
    /// How many files it was made of, the root included.
    pub files: usize,
    /// Their bytes together.
    pub bytes: usize,
}

/// One file of a bundle.
struct Entry {
    url: String,
    node: Node,
    depth: usize,
    /// The index of the file that first referred to it.
    parent: Option<usize>,
}

/// Bundles the document `data`, fetched from `url`, with every file it refers to, loaded by
/// `files`. `format` is the root's declared format (other files are detected). Errors name the
/// reference and the pointer where it is written (in its own file, which the message names
/// unless it is the root).
pub async fn bundle<F: Files>(
    url: &str,
    data: &[u8],
    format: Option<SpecFormat>,
    files: &F,
    limits: BundleLimits,
) -> Result<Bundled, SpecError> {
    let root_text = text::utf8(data)?;
    let decoded = text::decode(root_text, format)?;
    let root_url = strip_fragment(url).to_owned();
    if external_ref(&decoded.root).is_none() {
        return Ok(Bundled {
            text: root_text
                .strip_prefix('\u{feff}')
                .unwrap_or(root_text)
                .to_owned(),
            format: decoded.format,
            files: 1,
            bytes: data.len(),
        });
    }
    if data.len() > limits.max_total_bytes {
        return Err(SpecError::new(
            "",
            format!(
                "the document is {} bytes, more than the {} bytes all its files may hold together",
                data.len(),
                limits.max_total_bytes
            ),
        ));
    }
    let mut entries = vec![Entry {
        url: root_url,
        node: decoded.root,
        depth: 0,
        parent: None,
    }];
    let mut total = data.len();
    let mut index = 0;
    while index < entries.len() {
        let mut refs = Vec::new();
        collect_refs(&entries[index].node, "", false, &mut refs);
        let mut rewrites: IndexMap<String, String> = IndexMap::new();
        for (path, reference) in refs {
            if rewrites.contains_key(&reference) {
                continue;
            }
            let fail = |message: String| {
                let within = if index == 0 {
                    String::new()
                } else {
                    format!(" (in {})", entries[index].url)
                };
                SpecError::new(
                    path.clone(),
                    format!("$ref `{reference}`{within} {message}"),
                )
            };
            let rewritten = if let Some(fragment) = reference.strip_prefix('#') {
                if index == 0 {
                    continue;
                }
                local_in(&entries[0].url, &entries[index].url, fragment)
            } else {
                let (target, fragment) = reference
                    .split_once('#')
                    .map_or((reference.as_str(), ""), |(t, f)| (t, f));
                if !fragment.is_empty() && !fragment.starts_with('/') {
                    return Err(fail(
                        "has a fragment that is not a JSON Pointer (expected `file.yaml#/components/...`)"
                            .to_owned(),
                    ));
                }
                let target = join(&entries[index].url, target).map_err(&fail)?;
                let known = entries.iter().position(|e| e.url == target);
                if known.is_none() {
                    let depth = entries[index].depth + 1;
                    if depth > limits.max_depth {
                        return Err(fail(format!(
                            "leads more than {} files deep: {} → {target}",
                            limits.max_depth,
                            chain(&entries, index)
                        )));
                    }
                    if entries.len() >= limits.max_files {
                        return Err(fail(format!(
                            "would be file {} of the document: a document may span at most {} files",
                            entries.len() + 1,
                            limits.max_files
                        )));
                    }
                    let bytes = files
                        .load(&target)
                        .await
                        .map_err(|e| fail(format!("cannot be loaded: {e}")))?;
                    total = total.saturating_add(bytes.len());
                    if total > limits.max_total_bytes {
                        return Err(fail(format!(
                            "brings the document's files to {total} bytes, more than the {} bytes \
                             they may hold together (spec_max_bytes)",
                            limits.max_total_bytes
                        )));
                    }
                    let node = text::utf8(&bytes)
                        .and_then(|text| text::decode(text, None))
                        .map_err(|e| {
                            fail(format!(
                                "names {target}, which is not a JSON or YAML document: {}",
                                e.message
                            ))
                        })?
                        .root;
                    entries.push(Entry {
                        url: target.clone(),
                        node,
                        depth,
                        parent: Some(index),
                    });
                }
                local_in(&entries[0].url, &target, fragment)
            };
            rewrites.insert(reference, rewritten);
        }
        rewrite_refs(&mut entries[index].node, false, &rewrites);
        index += 1;
    }
    let files_count = entries.len();
    let mut entries = entries.into_iter();
    let Some(Entry { node: root, .. }) = entries.next() else {
        return Err(SpecError::new("", "the document is empty"));
    };
    let embedded: IndexMap<String, Node> = entries.map(|e| (e.url, e.node)).collect();
    let Node::Object(mut members) = root else {
        return Err(SpecError::new("", "the document is not an object"));
    };
    if members.contains_key(FILES_KEY) {
        return Err(SpecError::new(
            pointer::child("", FILES_KEY),
            format!("`{FILES_KEY}` is reserved for the files a document refers to"),
        ));
    }
    members.insert(FILES_KEY.to_owned(), Node::Object(embedded));
    let bundled = Node::Object(members);
    let text = match decoded.format {
        SpecFormat::Json => serde_json::to_string_pretty(&bundled).map_err(|e| e.to_string()),
        SpecFormat::Yaml => serde_yaml_ng::to_string(&bundled).map_err(|e| e.to_string()),
    }
    .map_err(|e| SpecError::new("", format!("the bundled document cannot be written: {e}")))?;
    Ok(Bundled {
        text,
        format: decoded.format,
        files: files_count,
        bytes: total,
    })
}

/// The local reference, in the bundle, to `fragment` (`""` or `/a/b`) of the file at `url`:
/// `#<fragment>` in the root, `#/x-eventplane-files/<url><fragment>` in another file.
fn local_in(root_url: &str, url: &str, fragment: &str) -> String {
    if url == root_url {
        format!("#{fragment}")
    } else {
        // `%` is escaped because reference fragments are percent-decoded.
        let file = pointer::child(&pointer::child("", FILES_KEY), url).replace('%', "%25");
        format!("#{file}{fragment}")
    }
}

/// Why a document given as text may not refer to another file.
pub(crate) fn unbundled_ref(reference: &str) -> String {
    format!(
        "$ref `{reference}` refers to another file, which a document given inline cannot: \
         register the document by URL (spec.fetchRequest) so that its relative references are \
         resolved against it, or refer to `#/components/...` in this document"
    )
}

/// The first `$ref` to another file in `root`: its pointer and value.
pub(crate) fn external_ref(root: &Node) -> Option<(String, String)> {
    let mut refs = Vec::new();
    collect_refs(root, "", false, &mut refs);
    refs.into_iter().find(|(_, r)| !r.starts_with('#'))
}

/// Keywords whose values are data, where a `$ref` is text, not a reference.
const LITERAL_KEYWORDS: [&str; 5] = ["const", "default", "enum", "example", "examples"];

/// Members whose values map names to objects: their keys are names (a schema may be called
/// `examples`), never keywords.
const NAME_MAPS: [&str; 12] = [
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
    "schemas",
    "messages",
    "channels",
    "operations",
    "parameters",
    "components",
    FILES_KEY,
];

/// Every reference object (`{"$ref": "<string>"}`) under `node` at `path`, with the pointer of
/// its `$ref`. `names`: `node`'s members are names, not keywords.
fn collect_refs(node: &Node, path: &str, names: bool, out: &mut Vec<(String, String)>) {
    match node {
        Node::Object(members) => {
            if !names && let Some(reference) = node.ref_target() {
                out.push((pointer::child(path, "$ref"), reference.to_owned()));
            }
            for (key, value) in members {
                if !names && LITERAL_KEYWORDS.contains(&key.as_str()) {
                    continue;
                }
                let inner = !names && NAME_MAPS.contains(&key.as_str());
                collect_refs(value, &pointer::child(path, key), inner, out);
            }
        }
        Node::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_refs(item, &pointer::child(path, i.to_string()), false, out);
            }
        }
        _ => {}
    }
}

/// Replaces each `$ref` found by [`collect_refs`] by its rewrite.
fn rewrite_refs(node: &mut Node, names: bool, rewrites: &IndexMap<String, String>) {
    match node {
        Node::Object(members) => {
            for (key, value) in members.iter_mut() {
                if !names && key == "$ref" {
                    if let Node::String(reference) = value
                        && let Some(new) = rewrites.get(reference.as_str())
                    {
                        new.clone_into(reference);
                    }
                    continue;
                }
                if !names && LITERAL_KEYWORDS.contains(&key.as_str()) {
                    continue;
                }
                let inner = !names && NAME_MAPS.contains(&key.as_str());
                rewrite_refs(value, inner, rewrites);
            }
        }
        Node::Array(items) => {
            for item in items {
                rewrite_refs(item, false, rewrites);
            }
        }
        _ => {}
    }
}

/// `root → a.yaml → b.yaml`: the files leading to entry `index`.
fn chain(entries: &[Entry], index: usize) -> String {
    let mut urls = vec![entries[index].url.as_str()];
    let mut at = entries[index].parent;
    while let Some(parent) = at {
        urls.push(entries[parent].url.as_str());
        at = entries[parent].parent;
    }
    urls.reverse();
    urls.join(" → ")
}

fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(u, _)| u)
}

/// The absolute URL of `reference` (no fragment) relative to `base` (RFC 3986 §5.2, with dot
/// segments removed): only http(s) URLs.
pub(crate) fn join(base: &str, reference: &str) -> Result<String, String> {
    let lower = reference.to_ascii_lowercase();
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("cannot be resolved: `{base}` is not an absolute URL"))?;
    let (authority, path, _) = split(rest);
    let joined = if lower.starts_with("http://") || lower.starts_with("https://") {
        reference.to_owned()
    } else if let Some(colon) = reference.find(':')
        && !reference[..colon].contains(['/', '?'])
    {
        return Err("is not an http(s) URL or a path relative to the document".to_owned());
    } else if let Some(rest) = reference.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if reference.is_empty() {
        return Ok(strip_fragment(base).to_owned());
    } else if reference.starts_with('/') {
        format!("{scheme}://{authority}{reference}")
    } else if reference.starts_with('?') {
        format!("{scheme}://{authority}{path}{reference}")
    } else {
        let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let directory = if directory.is_empty() { "/" } else { directory };
        format!("{scheme}://{authority}{directory}{reference}")
    };
    let (scheme, rest) = joined
        .split_once("://")
        .ok_or_else(|| "is not an http(s) URL".to_owned())?;
    let (authority, path, query) = split(rest);
    let path = remove_dot_segments(path);
    Ok(format!("{scheme}://{authority}{path}{query}"))
}

/// `authority`, `path` and `?query` of what follows `scheme://` (without a fragment).
fn split(rest: &str) -> (&str, &str, &str) {
    let rest = strip_fragment(rest);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    let query_start = rest.find('?').unwrap_or(rest.len());
    let (path, query) = rest.split_at(query_start);
    (authority, path, query)
}

/// RFC 3986 §5.2.4: `/a/b/../c/./d` → `/a/c/d`; `..` above the root stays at the root.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    if path.is_empty() {
        return String::new();
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests;
