//! The signing schemes a subscription can choose, in the contract's `signature` JSON shape.

use serde::{Deserialize, Serialize};

/// How a subscription's deliveries are signed; stored on the subscription and sent as its
/// `signature` object (`{"scheme": "standard"}` or `{"scheme": "hmac", ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
pub enum SignatureScheme {
    /// Standard Webhooks: `webhook-signature: v1,<base64>` over `{id}.{timestamp}.{body}`,
    /// so receivers can use any Standard Webhooks library.
    #[default]
    Standard,
    /// One vendor-style HMAC-SHA256 header, for receivers that already expect that style.
    Hmac(HmacScheme),
}

/// The settings of a vendor-style HMAC signature, so Hookline can imitate the webhook
/// sender a receiver was written for.
///
/// Unknown fields are rejected, so a misspelt option fails loudly instead of silently
/// falling back to its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacScheme {
    /// Name of the header that carries the signature, e.g. `X-Signature`.
    pub header: String,
    /// How the MAC bytes are written into the header.
    #[serde(default)]
    pub encoding: Encoding,
    /// Text written before the encoded MAC, e.g. `sha256=`; empty for none.
    #[serde(default)]
    pub prefix: String,
    /// Which bytes are fed to the MAC.
    #[serde(default)]
    pub signed: SignedContent,
    /// Header that carries the timestamp; required when `signed` includes the timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// Unit of the timestamp in `timestamp_header` and in the signed content.
    #[serde(default)]
    pub timestamp_unit: TimestampUnit,
}

/// How a MAC is written as text, because vendors differ (GitHub uses hex, Shopify base64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lowercase hexadecimal (`"hex"`).
    #[default]
    Hex,
    /// Standard base64 alphabet with padding (`"base64"`).
    Base64,
}

/// What an HMAC signature covers, because some vendors bind the timestamp into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SignedContent {
    /// The raw body only (`"body"`).
    #[default]
    #[serde(rename = "body")]
    Body,
    /// `"{timestamp}.{body}"` (`"timestamp.body"`), which lets receivers reject replays.
    #[serde(rename = "timestamp.body")]
    TimestampDotBody,
}

/// The unit of an HMAC scheme's timestamp, because vendors send seconds or milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TimestampUnit {
    /// Unix seconds (`"s"`).
    #[default]
    #[serde(rename = "s")]
    Seconds,
    /// Unix milliseconds (`"ms"`).
    #[serde(rename = "ms")]
    Millis,
}

impl TimestampUnit {
    /// The attempt time expressed in this unit.
    pub(crate) fn of_unix_millis(self, unix_millis: i64) -> i64 {
        match self {
            TimestampUnit::Seconds => unix_seconds(unix_millis),
            TimestampUnit::Millis => unix_millis,
        }
    }

    /// Milliseconds per unit, for converting a received timestamp back.
    pub(crate) fn millis_per_unit(self) -> i128 {
        match self {
            TimestampUnit::Seconds => 1000,
            TimestampUnit::Millis => 1,
        }
    }
}

/// Whole Unix seconds of a millisecond time (rounded down).
pub(crate) fn unix_seconds(unix_millis: i64) -> i64 {
    unix_millis.div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from(value: serde_json::Value) -> Result<SignatureScheme, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn the_standard_scheme_is_the_default_and_serializes_as_its_name_only() {
        assert_eq!(SignatureScheme::default(), SignatureScheme::Standard);
        let value = serde_json::to_value(SignatureScheme::Standard).unwrap();
        assert_eq!(value, json!({"scheme": "standard"}));
        assert_eq!(from(value).unwrap(), SignatureScheme::Standard);
    }

    #[test]
    fn a_full_hmac_object_from_the_contract_round_trips() {
        let value = json!({
            "scheme": "hmac", "header": "X-Signature", "encoding": "base64",
            "prefix": "sha256=", "signed": "timestamp.body",
            "timestamp_header": "X-Timestamp", "timestamp_unit": "ms"
        });
        let scheme = from(value.clone()).unwrap();
        assert_eq!(
            scheme,
            SignatureScheme::Hmac(HmacScheme {
                header: "X-Signature".into(),
                encoding: Encoding::Base64,
                prefix: "sha256=".into(),
                signed: SignedContent::TimestampDotBody,
                timestamp_header: Some("X-Timestamp".into()),
                timestamp_unit: TimestampUnit::Millis,
            })
        );
        assert_eq!(serde_json::to_value(&scheme).unwrap(), value);
    }

    #[test]
    fn an_hmac_object_with_only_a_header_gets_the_documented_defaults() {
        let scheme = from(json!({"scheme": "hmac", "header": "X-Signature"})).unwrap();
        let SignatureScheme::Hmac(hmac) = &scheme else {
            panic!("expected hmac, got {scheme:?}");
        };
        assert_eq!(hmac.encoding, Encoding::Hex);
        assert_eq!(hmac.prefix, "");
        assert_eq!(hmac.signed, SignedContent::Body);
        assert_eq!(hmac.timestamp_header, None);
        assert_eq!(hmac.timestamp_unit, TimestampUnit::Seconds);
        let back = serde_json::to_value(&scheme).unwrap();
        assert!(back.get("timestamp_header").is_none());
        assert_eq!(from(back).unwrap(), scheme);
    }

    #[test]
    fn every_spelling_of_the_enums_in_the_contract_is_accepted() {
        let value = json!({"scheme": "hmac", "header": "X", "encoding": "hex",
            "signed": "body", "timestamp_unit": "s"});
        let SignatureScheme::Hmac(hmac) = from(value).unwrap() else {
            panic!("expected hmac");
        };
        assert_eq!(
            (hmac.encoding, hmac.signed, hmac.timestamp_unit),
            (Encoding::Hex, SignedContent::Body, TimestampUnit::Seconds)
        );
    }

    #[test]
    fn an_unknown_scheme_fails_to_deserialize() {
        assert!(from(json!({"scheme": "ed25519"})).is_err());
        assert!(from(json!({"scheme": "Standard"})).is_err());
        assert!(from(json!({})).is_err());
    }

    #[test]
    fn an_hmac_scheme_without_a_header_fails_to_deserialize() {
        assert!(from(json!({"scheme": "hmac"})).is_err());
    }

    #[test]
    fn unknown_enum_values_fail_to_deserialize() {
        for bad in [
            json!({"scheme": "hmac", "header": "X", "encoding": "HEX"}),
            json!({"scheme": "hmac", "header": "X", "signed": "timestamp_body"}),
            json!({"scheme": "hmac", "header": "X", "timestamp_unit": "us"}),
        ] {
            assert!(from(bad.clone()).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_misspelt_hmac_option_fails_to_deserialize() {
        let value = json!({"scheme": "hmac", "header": "X", "encodign": "base64"});
        assert!(from(value).is_err());
    }

    #[test]
    fn seconds_are_the_millis_rounded_down() {
        assert_eq!(unix_seconds(1_614_265_330_999), 1_614_265_330);
        assert_eq!(TimestampUnit::Millis.of_unix_millis(1_234), 1_234);
        assert_eq!(TimestampUnit::Seconds.of_unix_millis(1_234), 1);
    }
}
