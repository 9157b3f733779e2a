//! Converting between the task's protobuf `Signature` and the signing
//! crate's scheme.

use crate::{DeliveryTask, Signature};
use hookline_signature::{Encoding, HmacScheme, SignatureScheme, SignedContent, TimestampUnit};

/// The scheme a task is signed with; an unreadable one falls back to
/// `standard` (the api validated it on the way in).
pub fn scheme_of(task: &DeliveryTask) -> SignatureScheme {
    let Some(sig) = &task.signature else {
        return SignatureScheme::Standard;
    };
    if sig.scheme != "hmac" {
        return SignatureScheme::Standard;
    }
    SignatureScheme::Hmac(HmacScheme {
        header: sig.header.clone(),
        encoding: if sig.encoding == "base64" {
            Encoding::Base64
        } else {
            Encoding::Hex
        },
        prefix: sig.prefix.clone(),
        signed: if sig.signed == "timestamp.body" {
            SignedContent::TimestampDotBody
        } else {
            SignedContent::Body
        },
        timestamp_header: (!sig.timestamp_header.is_empty()).then(|| sig.timestamp_header.clone()),
        timestamp_unit: if sig.timestamp_unit == "ms" {
            TimestampUnit::Millis
        } else {
            TimestampUnit::Seconds
        },
    })
}

/// The protobuf form of a scheme, for tasks built by fanout and the api.
pub fn to_proto(scheme: &SignatureScheme) -> Signature {
    match scheme {
        SignatureScheme::Standard => Signature {
            scheme: "standard".into(),
            ..Signature::default()
        },
        SignatureScheme::Hmac(h) => Signature {
            scheme: "hmac".into(),
            header: h.header.clone(),
            encoding: match h.encoding {
                Encoding::Hex => "hex",
                Encoding::Base64 => "base64",
            }
            .into(),
            prefix: h.prefix.clone(),
            signed: match h.signed {
                SignedContent::Body => "body",
                SignedContent::TimestampDotBody => "timestamp.body",
            }
            .into(),
            timestamp_header: h.timestamp_header.clone().unwrap_or_default(),
            timestamp_unit: match h.timestamp_unit {
                TimestampUnit::Seconds => "s",
                TimestampUnit::Millis => "ms",
            }
            .into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hmac_scheme_survives_the_round_trip_through_protobuf() {
        let scheme: SignatureScheme = serde_json::from_str(
            r#"{"scheme":"hmac","header":"X-Sig","encoding":"base64","prefix":"sha256=","signed":"timestamp.body","timestamp_header":"X-Ts","timestamp_unit":"ms"}"#,
        )
        .unwrap();
        let task = DeliveryTask {
            signature: Some(to_proto(&scheme)),
            ..DeliveryTask::default()
        };
        assert_eq!(scheme_of(&task), scheme);
        assert_eq!(
            scheme_of(&DeliveryTask::default()),
            SignatureScheme::Standard
        );
    }
}
