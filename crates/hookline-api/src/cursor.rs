//! Pagination: the opaque `cursor` (base64 of `"<time in µs>|<id>"`, the
//! sort key of the last row served) and the `limit` parameter.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// Rows per page when `limit` is absent.
pub(crate) const DEFAULT_LIMIT: i64 = 50;
/// Most rows per page; a larger `limit` is clamped to it.
pub(crate) const MAX_LIMIT: i64 = 200;

/// Where a page starts: strictly after this `(time, id)` in the list's order.
/// Microseconds because PostgreSQL keeps them, so no two rows compare equal
/// by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Sort time of the last row served.
    pub at: DateTime<Utc>,
    /// Id of the last row served, the tie-breaker.
    pub id: String,
}

impl Cursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.at.timestamp_micros(), self.id))
    }

    /// Reads back what [`Cursor::encode`] produced; `None` for anything else.
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (micros, id) = text.split_once('|')?;
        let at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
        if id.is_empty() || id.len() > 128 {
            return None;
        }
        Some(Cursor {
            at,
            id: id.to_string(),
        })
    }
}

/// A page request, parsed from `?limit=&cursor=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// Rows to return: `DEFAULT_LIMIT` when not given, never above `MAX_LIMIT`.
    pub limit: i64,
    /// Where to start; `None` for the first page.
    pub after: Option<Cursor>,
}

impl Page {
    /// Parses the query values; a malformed one is a `422` naming it.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Page, ApiError> {
        let limit = match limit {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n >= 1 => n.min(MAX_LIMIT),
                _ => {
                    return Err(ApiError::invalid(
                        "invalid_limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    ))
                }
            },
        };
        let after = match cursor {
            None | Some("") => None,
            Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
                ApiError::invalid("invalid_cursor", "cursor is not one this api handed out")
            })?),
        };
        Ok(Page { limit, after })
    }

    /// Trims the one extra row fetched to learn whether another page exists,
    /// and returns the cursor of that next page.
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> Cursor) -> Option<String> {
        if rows.len() as i64 > self.limit {
            rows.truncate(self.limit as usize);
            rows.last().map(|row| key(row).encode())
        } else {
            None
        }
    }

    /// The start key as query parameters: `(None, None)` for the first page.
    pub fn after_key(&self) -> (Option<DateTime<Utc>>, Option<&str>) {
        match &self.after {
            Some(c) => (Some(c.at), Some(c.id.as_str())),
            None => (None, None),
        }
    }

    /// Rows to fetch: one more than asked, to learn whether a next page exists.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            at: DateTime::<Utc>::from_timestamp_micros(1_768_392_443_884_123).unwrap(),
            id: "att_01JABC".into(),
        }
    }

    #[test]
    fn a_cursor_survives_encoding_and_decoding() {
        let c = cursor();
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }

    #[test]
    fn a_cursor_is_opaque_url_safe_text() {
        let text = cursor().encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
        assert!(!text.contains("att_"));
    }

    #[test]
    fn a_forged_or_garbled_cursor_is_rejected() {
        for bad in [
            "",
            "!!!",
            "bm90aGluZw",
            &URL_SAFE_NO_PAD.encode("abc|id"),
            &URL_SAFE_NO_PAD.encode("1|"),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
        assert!(matches!(
            Page::parse(None, Some("!!!")),
            Err(ApiError::Invalid {
                code: "invalid_cursor",
                ..
            })
        ));
    }

    #[test]
    fn the_limit_defaults_to_50_and_is_clamped_to_200() {
        assert_eq!(Page::parse(None, None).unwrap().limit, 50);
        assert_eq!(Page::parse(Some("7"), None).unwrap().limit, 7);
        assert_eq!(Page::parse(Some("1000"), None).unwrap().limit, 200);
    }

    #[test]
    fn a_zero_negative_or_non_numeric_limit_is_rejected() {
        for bad in ["0", "-1", "ten"] {
            assert!(
                matches!(
                    Page::parse(Some(bad), None),
                    Err(ApiError::Invalid {
                        code: "invalid_limit",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_full_page_hands_out_the_cursor_of_its_last_row() {
        let page = Page::parse(Some("2"), None).unwrap();
        let mut rows = vec![cursor(), cursor(), cursor()];
        let next = page.finish(&mut rows, Clone::clone);
        assert_eq!(rows.len(), 2);
        assert_eq!(next, Some(cursor().encode()));
        let mut short = vec![cursor()];
        assert_eq!(page.finish(&mut short, Clone::clone), None);
    }
}
