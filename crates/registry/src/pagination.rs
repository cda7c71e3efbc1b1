//! Pages over indexes: `first` (at most [`MAX_PAGE_SIZE`], default [`DEFAULT_PAGE_SIZE`]),
//! opaque `after` cursors, `PageInfo` and `totalCount`, and the `Pageable` interface.
//!
//! A cursor is the base64url of the last member (id) on the previous page; a page starts at the
//! first member after it in index order, so a cursor stays valid when its member is deleted.
//! Filtered pages (labels, groups) load every member to count the matches.

use async_graphql::{Interface, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eventplane_core::Error;

use crate::applications::ApplicationPage;
use crate::event_apis::EventApiDefinitionPage;
use crate::scalars::PageCursor;

/// The page size when `first` is not given.
pub(crate) const DEFAULT_PAGE_SIZE: i32 = 100;
/// The largest `first` accepted.
pub(crate) const MAX_PAGE_SIZE: i32 = 200;

/// Where a page is in its list.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PageInfo {
    /// The cursor of the first item on the page (empty when the page is empty).
    pub start_cursor: PageCursor,
    /// The cursor of the last item on the page: pass it as `after` for the next page.
    pub end_cursor: PageCursor,
    /// Whether more items follow.
    pub has_next_page: bool,
}

/// Every query that implements pagination returns an object that implements `Pageable`.
/// `first` is the page size and `after` the cursor after which the page starts: leave it
/// empty for the first page, then pass the previous page's `pageInfo.endCursor`.
#[derive(Interface)]
#[graphql(
    field(
        name = "page_info",
        ty = "&PageInfo",
        desc = "Where the page is in the list."
    ),
    field(
        name = "total_count",
        ty = "&i32",
        desc = "How many items the whole list has."
    )
)]
pub(crate) enum Pageable {
    /// A page of applications.
    ApplicationPage(ApplicationPage),
    /// A page of event API definitions.
    EventApiDefinitionPage(EventApiDefinitionPage),
}

/// Validates `first`.
pub(crate) fn page_size(first: Option<i32>) -> Result<usize, Error> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(0..=MAX_PAGE_SIZE).contains(&first) {
        return Err(Error::invalid(
            "first",
            format!("must be between 0 and {MAX_PAGE_SIZE}, not {first}"),
        ));
    }
    usize::try_from(first).map_err(|_| Error::invalid("first", "must not be negative"))
}

/// The cursor pointing after `member`.
pub(crate) fn encode_cursor(member: &str) -> PageCursor {
    PageCursor(URL_SAFE_NO_PAD.encode(member))
}

/// The member an `after` cursor points after; `None` (or empty) starts from the beginning.
pub(crate) fn decode_cursor(after: Option<PageCursor>) -> Result<Option<String>, Error> {
    let Some(PageCursor(cursor)) = after else {
        return Ok(None);
    };
    if cursor.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            Error::invalid(
                "after",
                "is not a cursor from this API: pass a page's pageInfo.endCursor",
            )
        })
}

/// One page of items.
pub(crate) struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the page is.
    pub page_info: PageInfo,
    /// How many items the whole (filtered) list has.
    pub total_count: i32,
}

/// Pages through `members` (in index order): the first `first` items after `after` that load
/// (an item deleted meanwhile loads as `None` and is skipped) and pass `keep`. With
/// `filtered`, every member is loaded to count the matches; without, `keep` must accept all.
pub(crate) fn page<T>(
    members: Vec<String>,
    after: Option<&str>,
    first: usize,
    filtered: bool,
    mut load: impl FnMut(&str) -> Result<Option<T>, Error>,
    keep: impl Fn(&T) -> bool,
) -> Result<Page<T>, Error> {
    let start = after.map_or(0, |after| members.partition_point(|m| m.as_str() <= after));
    let mut taken: Vec<(String, T)> = Vec::new();
    let mut has_next_page = false;
    let mut total = 0;
    if filtered {
        for (position, member) in members.iter().enumerate() {
            let Some(item) = load(member)? else { continue };
            if !keep(&item) {
                continue;
            }
            total += 1;
            if position < start {
                continue;
            }
            if taken.len() < first {
                taken.push((member.clone(), item));
            } else {
                has_next_page = true;
            }
        }
    } else {
        total = members.len();
        let mut rest = members.iter().skip(start);
        for member in rest.by_ref() {
            if taken.len() == first {
                has_next_page = true;
                break;
            }
            if let Some(item) = load(member)? {
                taken.push((member.clone(), item));
            }
        }
    }
    let page_info = PageInfo {
        start_cursor: taken
            .first()
            .map(|(m, _)| encode_cursor(m))
            .unwrap_or_default(),
        end_cursor: taken
            .last()
            .map(|(m, _)| encode_cursor(m))
            .unwrap_or_default(),
        has_next_page,
    };
    Ok(Page {
        items: taken.into_iter().map(|(_, item)| item).collect(),
        page_info,
        total_count: i32::try_from(total).unwrap_or(i32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i:03}")).collect()
    }

    fn load(member: &str) -> Result<Option<String>, Error> {
        Ok(Some(member.to_owned()))
    }

    #[test]
    fn first_is_bounded() {
        assert_eq!(page_size(None).ok(), Some(100));
        assert_eq!(page_size(Some(200)).ok(), Some(200));
        assert_eq!(page_size(Some(0)).ok(), Some(0));
        assert!(page_size(Some(201)).is_err());
        assert!(page_size(Some(-1)).is_err());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() -> Result<(), Error> {
        let cursor = encode_cursor("app_0190");
        assert_eq!(decode_cursor(Some(cursor))?, Some("app_0190".to_owned()));
        assert_eq!(decode_cursor(Some(PageCursor(String::new())))?, None);
        assert_eq!(decode_cursor(None)?, None);
        assert!(decode_cursor(Some(PageCursor("%%%".to_owned()))).is_err());
        assert!(decode_cursor(Some(PageCursor("_w".to_owned()))).is_err());
        Ok(())
    }

    #[test]
    fn unfiltered_pages_walk_the_whole_list() -> Result<(), Error> {
        let all = members(5);
        let first = page(all.clone(), None, 2, false, load, |_| true)?;
        assert_eq!(first.items, ["m000", "m001"]);
        assert_eq!(first.total_count, 5);
        assert!(first.page_info.has_next_page);
        let after = decode_cursor(Some(first.page_info.end_cursor))?;
        let second = page(all.clone(), after.as_deref(), 3, false, load, |_| true)?;
        assert_eq!(second.items, ["m002", "m003", "m004"]);
        assert!(!second.page_info.has_next_page);
        let empty = page(all, Some("m004"), 3, false, load, |_| true)?;
        assert!(empty.items.is_empty());
        assert_eq!(empty.page_info, PageInfo::default());
        Ok(())
    }

    #[test]
    fn filtered_pages_count_only_matches() -> Result<(), Error> {
        let even = |item: &String| item.ends_with(['0', '2', '4', '6', '8']);
        let first = page(members(10), None, 2, true, load, even)?;
        assert_eq!(first.items, ["m000", "m002"]);
        assert_eq!(first.total_count, 5);
        assert!(first.page_info.has_next_page);
        let rest = page(members(10), Some("m002"), 10, true, load, even)?;
        assert_eq!(rest.items, ["m004", "m006", "m008"]);
        assert!(!rest.page_info.has_next_page);
        Ok(())
    }

    #[test]
    fn vanished_items_are_skipped() -> Result<(), Error> {
        let load = |m: &str| Ok((m != "m001").then(|| m.to_owned()));
        let page = page(members(4), None, 2, false, load, |_| true)?;
        assert_eq!(page.items, ["m000", "m002"]);
        assert!(page.page_info.has_next_page);
        Ok(())
    }
}
