//! Keyset pagination: a [`Cursor`] names the last row of a page by its sort key (a time and a
//! unique id, newest first), and the next page is the rows strictly after it. Unlike an
//! offset, a cursor stays correct while new rows arrive, and costs one index seek.
//!
//! On the wire a cursor is an opaque URL-safe string ([`Cursor::encode`]): clients pass back
//! what they were given and never build one.

/// Where a page ended: the sort key `(at_ms, id)` of its last row. Lists are ordered by
/// `at_ms` descending, then `id` descending, so the next page holds the rows with a smaller
/// `(at_ms, id)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The last row's time (unix ms): `started_at` of a call, `created_at` of an extraction,
    /// `last_call_at` of a caller.
    pub at_ms: i64,
    /// The last row's unique id within that order (call id, extraction id, caller phone).
    pub id: String,
}

/// One page of a list, newest first, and the cursor of the page after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Where to continue; `None` when this is the last page.
    pub next_cursor: Option<Cursor>,
}

/// A cursor string that [`Cursor::decode`] cannot read (not one the server gave out).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this server gave out")]
pub struct InvalidCursor;

/// Format version inside the encoded cursor, so the format can change later.
const CURSOR_VERSION: &str = "v1";
/// Longest id a cursor carries (ids are UUIDs and phone numbers; this bounds the input).
const MAX_CURSOR_ID_LEN: usize = 256;

impl Cursor {
    /// The opaque form given to clients: lowercase hex of `v1:<at_ms>:<id>` (URL-safe, no
    /// escaping needed in a query string).
    pub fn encode(&self) -> String {
        let plain = format!("{CURSOR_VERSION}:{}:{}", self.at_ms, self.id);
        let mut out = String::with_capacity(plain.len() * 2);
        for byte in plain.bytes() {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Reads a cursor made by [`Cursor::encode`]; anything else is [`InvalidCursor`].
    pub fn decode(text: &str) -> Result<Cursor, InvalidCursor> {
        let bytes = text.as_bytes();
        if bytes.is_empty()
            || !bytes.len().is_multiple_of(2)
            || bytes.len() > 2 * (MAX_CURSOR_ID_LEN + 32)
        {
            return Err(InvalidCursor);
        }
        let plain: Vec<u8> = bytes
            .chunks_exact(2)
            .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(pair[1])?))
            .collect::<Option<_>>()
            .ok_or(InvalidCursor)?;
        let plain = String::from_utf8(plain).map_err(|_| InvalidCursor)?;
        let rest = plain
            .strip_prefix(CURSOR_VERSION)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or(InvalidCursor)?;
        let (at_ms, id) = rest.split_once(':').ok_or(InvalidCursor)?;
        let at_ms = at_ms.parse::<i64>().map_err(|_| InvalidCursor)?;
        if id.is_empty() || id.len() > MAX_CURSOR_ID_LEN {
            return Err(InvalidCursor);
        }
        Ok(Cursor {
            at_ms,
            id: id.to_owned(),
        })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The value of one lowercase hex digit.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// Cuts `rows` (fetched with one row more than `limit`) to a page: when the extra row is there,
/// the page is full and the cursor points at its last row.
pub(crate) fn page_of<T>(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(key)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_url_safe() {
        for cursor in [
            Cursor {
                at_ms: 1_733_390_000_123,
                id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned(),
            },
            Cursor {
                at_ms: -5,
                id: "+919800000001".to_owned(),
            },
            Cursor {
                at_ms: 0,
                id: "a:b:c".to_owned(),
            },
        ] {
            let text = cursor.encode();
            assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
            assert_eq!(Cursor::decode(&text), Ok(cursor));
        }
    }

    #[test]
    fn anything_else_is_an_invalid_cursor() {
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for text in [
            String::new(),
            "abc".to_owned(),
            "zz".to_owned(),
            "ABCD".to_owned(),
            hex("v2:1:x"),
            hex("v1:1:"),
            hex("v1:one:x"),
            hex("v1:1"),
            hex("1:x"),
            "ff".repeat(10),
            "a".repeat(100_000),
        ] {
            assert_eq!(Cursor::decode(&text), Err(InvalidCursor), "{text}");
        }
    }

    #[test]
    fn a_page_is_cut_at_the_limit_with_a_cursor_only_when_more_follow() {
        let key = |n: &i64| Cursor {
            at_ms: *n,
            id: n.to_string(),
        };
        let page = page_of(vec![5, 4, 3], 2, key);
        assert_eq!(page.items, [5, 4]);
        assert_eq!(page.next_cursor, Some(key(&4)));
        let page = page_of(vec![5, 4], 2, key);
        assert_eq!(page.items, [5, 4]);
        assert_eq!(page.next_cursor, None);
        let page = page_of(Vec::new(), 2, key);
        assert!(page.items.is_empty() && page.next_cursor.is_none());
    }
}
