//! Route patterns and their precedence, reproducing the `routefinder` crate (0.5) that Spin's
//! router is built on.
//!
//! A pattern is cut into segments at every `/` and `.` (leading and trailing `/` ignored):
//! - `*` is the trailing wildcard (Spin turns a trailing `/...` into `/*`);
//! - `:name` is a parameter capturing up to the next `/` (or `.` if a `.` follows it);
//! - anything else is literal text; a `.` right after literal text stays part of it, so
//!   `/index.html` is literal, while `/:name.json` is parameter, dot, literal.
//!
//! A path matches after its leading and trailing slashes are trimmed, so `/foo` matches
//! `/foo/` and `//foo`. `/foo/*` also matches `/foo` itself (empty wildcard).
//!
//! Precedence: patterns are compared segment by segment, literal > parameter > wildcard >
//! separator; then more dots first; then fewer segments first; ties keep insertion order.
//! routefinder keeps patterns in a `BTreeMap` with exactly this comparison (which never says
//! "equal" and is not fully consistent when a `.` meets a literal); [`OrderKey`] implements the
//! same comparison so a `BTreeMap` orders our routes exactly as Spin's.

use std::cmp::Ordering;

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A `/` between two pieces.
    Slash,
    /// A `.` that could not be merged into preceding literal text.
    Dot,
    /// Literal text.
    Exact(String),
    /// `:name`
    Param(String),
    /// `*`
    Wildcard,
}

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
}

/// What a successful match captured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures {
    /// `(name, value)` for each `:name`, in pattern order.
    pub params: Vec<(String, String)>,
    /// The text matched by `*`, if the pattern has one (without a leading `/`).
    pub wildcard: Option<String>,
}

impl Pattern {
    /// Parses a pattern (already combined with the base, `/...` already turned into `/*`).
    pub fn parse(source: &str) -> Result<Self, String> {
        let trimmed = source.trim_matches('/');
        let mut segments: Vec<Segment> = Vec::new();
        // Sections between separators, each with the character routefinder believes precedes
        // it. routefinder looks that character up by *char* index using a *byte* offset, so
        // after non-ASCII text it may miss a separator; we reproduce that.
        let mut pieces = Vec::new();
        let mut start = 0;
        let ends = trimmed
            .match_indices(['/', '.'])
            .map(|(i, _)| i)
            .chain([trimmed.len()]);
        for end in ends {
            let separator = if start == 0 {
                None
            } else {
                trimmed.chars().nth(start - 1)
            };
            pieces.push((separator, &trimmed[start..end]));
            start = end + 1;
        }

        for (separator, text) in pieces {
            let segment = if text == "*" {
                Some(Segment::Wildcard)
            } else if text.starts_with('*') {
                return Err(format!(
                    "since there can only be one wildcard, it doesn't need a name. replace `{text}` with `*`"
                ));
            } else if text == ":" {
                return Err("params must be named".to_owned());
            } else if let Some(name) = text.strip_prefix(':') {
                Some(Segment::Param(name.to_owned()))
            } else if text.is_empty() {
                None
            } else {
                Some(Segment::Exact(text.to_owned()))
            };
            if separator == Some('.') {
                match segments.last_mut() {
                    Some(Segment::Exact(s)) => s.push('.'),
                    _ => segments.push(Segment::Dot),
                }
            }
            if let Some(segment) = segment {
                if separator == Some('/') {
                    segments.push(Segment::Slash);
                }
                segments.push(segment);
            }
        }
        // routefinder accepts these but panics when a request reaches them.
        for (i, segment) in segments.iter().enumerate() {
            let next = segments.get(i + 1);
            match segment {
                Segment::Wildcard if next.is_some() => {
                    return Err("the wildcard must be the last segment of a route".to_owned());
                }
                Segment::Param(_)
                    if !matches!(next, None | Some(Segment::Slash | Segment::Dot)) =>
                {
                    return Err(
                        "a parameter must be followed by '/', '.' or the end of the route"
                            .to_owned(),
                    );
                }
                _ => {}
            }
        }
        Ok(Self { segments })
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Matches a request path.
    pub fn matches(&self, path: &str) -> Option<Captures> {
        let mut rest = path.trim_matches('/');
        let mut captures = Captures::default();
        for (i, segment) in self.segments.iter().enumerate() {
            let next = self.segments.get(i + 1);
            match segment {
                Segment::Exact(text) => rest = rest.strip_prefix(text.as_str())?,
                Segment::Param(name) => {
                    if rest.is_empty() {
                        return None;
                    }
                    let end = if next == Some(&Segment::Dot) {
                        let stop = rest.find(['.', '/'])?;
                        if !rest[stop..].starts_with('.') {
                            return None;
                        }
                        stop
                    } else {
                        rest.find('/').unwrap_or(rest.len())
                    };
                    captures.params.push((name.clone(), rest[..end].to_owned()));
                    rest = &rest[end..];
                }
                Segment::Wildcard => {
                    captures.wildcard = Some(rest.to_owned());
                    rest = "";
                }
                Segment::Slash => match (rest.strip_prefix('/'), next) {
                    (Some(after), Some(_)) => rest = after,
                    (None, None) if rest.is_empty() => {}
                    (None, Some(Segment::Wildcard)) if rest.is_empty() => {}
                    _ => return None,
                },
                Segment::Dot => rest = rest.strip_prefix('.')?,
            }
        }
        (rest.is_empty() || rest == "/").then_some(captures)
    }

    fn dots(&self) -> usize {
        self.segments.iter().filter(|s| **s == Segment::Dot).count()
    }
}

/// routefinder's segment comparison, table for table ("greater" = more specific).
fn compare_segments(a: &Segment, b: &Segment) -> Ordering {
    use Ordering::{Equal, Greater, Less};
    use Segment::{Dot, Exact, Param, Slash, Wildcard};
    match (a, b) {
        (Exact(_), Exact(_))
        | (Slash | Dot, Slash | Dot)
        | (Param(_), Param(_))
        | (Wildcard, Wildcard) => Equal,
        (Dot, _) | (Exact(_), _) => Greater,
        (Param(_), Exact(_)) => Less,
        (Param(_), _) => Greater,
        (Wildcard, Exact(_) | Param(_)) => Less,
        (Wildcard, _) => Greater,
        (Slash, _) => Less,
    }
}

/// A key whose `Ord` is routefinder's route ordering: iterating a `BTreeMap<OrderKey, _>`
/// yields routes in the order Spin tries them.
#[derive(Debug)]
pub struct OrderKey(pub Pattern);

impl Ord for OrderKey {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.0, &other.0);
        a.segments
            .iter()
            .zip(&b.segments)
            .map(|(x, y)| compare_segments(x, y))
            .chain([a.dots().cmp(&b.dots())])
            .chain([b.segments.len().cmp(&a.segments.len())])
            .find(|o| o.is_ne())
            // Never "equal": a later insertion of an equivalent pattern goes after.
            .unwrap_or(Ordering::Less)
            .reverse()
    }
}

impl PartialOrd for OrderKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for OrderKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for OrderKey {}
