//! Building blocks shared by both schemes: the MAC, constant-time comparison and
//! timestamp checks.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::verify::VerifyError;

/// Longest timestamp text accepted; `i64::MAX` has 19 digits.
const MAX_TIMESTAMP_DIGITS: usize = 19;

/// HMAC-SHA256 of the concatenation of `parts`, so callers need not build the signed
/// content in a separate buffer.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Compares a received MAC with the expected one without leaking, through timing, how
/// many leading bytes matched.
pub(crate) fn macs_match(expected: &[u8], received: &[u8]) -> bool {
    expected.ct_eq(received).into()
}

/// Reads a timestamp header as unsigned decimal digits, rejecting signs, spaces and
/// anything else a sender would not have written.
pub(crate) fn parse_timestamp(value: &str, header: &str) -> Result<i64, VerifyError> {
    let bad = || VerifyError::BadFormat(format!("{header} must be a Unix timestamp in digits"));
    if value.is_empty()
        || value.len() > MAX_TIMESTAMP_DIGITS
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// Accepts a timestamp (in milliseconds) no further than `tolerance` from now in either
/// direction, so captured deliveries cannot be replayed later.
pub(crate) fn check_tolerance(
    timestamp_millis: i128,
    now_unix_millis: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let distance = (i128::from(now_unix_millis) - timestamp_millis).unsigned_abs();
    if distance > tolerance.as_millis() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    Ok(())
}

/// Looks a required header up, naming it when it is absent.
pub(crate) fn required_header(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<String, VerifyError> {
    lookup(name).ok_or_else(|| VerifyError::MissingHeader(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_of_split_parts_equals_the_mac_of_the_whole() {
        let whole = hmac_sha256(b"key", &[b"id.123.body"]);
        assert_eq!(
            hmac_sha256(b"key", &[b"id", b".", b"123", b".", b"body"]),
            whole
        );
        assert_ne!(hmac_sha256(b"other key", &[b"id.123.body"]), whole);
    }

    #[test]
    fn macs_of_different_length_never_match() {
        assert!(macs_match(b"abc", b"abc"));
        assert!(!macs_match(b"abc", b"ab"));
        assert!(!macs_match(b"abc", b"abd"));
        assert!(!macs_match(b"abc", b""));
    }

    #[test]
    fn a_timestamp_must_be_plain_digits() {
        assert_eq!(parse_timestamp("1614265330", "t").unwrap(), 1_614_265_330);
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.5",
            "0x10",
            "hello",
            "99999999999999999999",
        ] {
            assert!(
                matches!(parse_timestamp(bad, "t"), Err(VerifyError::BadFormat(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_timestamp_exactly_at_the_tolerance_is_accepted_and_one_millisecond_more_is_not() {
        let tolerance = Duration::from_secs(300);
        let now = 1_700_000_000_000;
        for edge in [now - 300_000, now + 300_000] {
            check_tolerance(i128::from(edge), now, tolerance).unwrap();
        }
        for outside in [now - 300_001, now + 300_001] {
            assert_eq!(
                check_tolerance(i128::from(outside), now, tolerance),
                Err(VerifyError::TimestampOutOfTolerance)
            );
        }
    }

    #[test]
    fn huge_timestamps_do_not_overflow_the_tolerance_check() {
        let far = i128::from(i64::MAX) * 1000;
        assert!(check_tolerance(far, i64::MIN, Duration::MAX).is_ok());
        assert!(check_tolerance(far, 0, Duration::from_secs(1)).is_err());
    }
}
