//! Signs Hookline webhook deliveries and verifies them on the receiving side.
//!
//! Two schemes exist (see the contract's "Signing" section): [`SignatureScheme::Standard`]
//! follows the Standard Webhooks specification, and [`SignatureScheme::Hmac`] reproduces
//! vendor-style HMAC-SHA256 headers. The deliverer calls [`sign`]; a receiver written in
//! Rust calls [`verify`] with the subscription's secret and the raw request body:
//!
//! ```
//! use std::collections::HashMap;
//! use hookline_signature::{verify, Secret, SignatureScheme, VerifyError, DEFAULT_TOLERANCE};
//!
//! fn accept(
//!     headers: &HashMap<String, String>, // names stored in lowercase
//!     raw_body: &[u8],
//!     now_unix_millis: i64,
//! ) -> Result<(), VerifyError> {
//!     let scheme = SignatureScheme::Standard;
//!     let secret = Secret::parse(&scheme, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
//!         .expect("the secret shown when the subscription was created");
//!     let lookup = |name: &str| headers.get(&name.to_ascii_lowercase()).cloned();
//!     verify(&scheme, &secret, &lookup, raw_body, now_unix_millis, DEFAULT_TOLERANCE)
//! }
//!
//! let headers: HashMap<String, String> = [
//!     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
//!     ("webhook-timestamp", "1614265330"),
//!     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_owned(), v.to_owned()))
//! .collect();
//! let body = br#"{"test": 2432232314}"#;
//!
//! assert_eq!(accept(&headers, body, 1_614_265_331_000), Ok(()));
//! assert_eq!(accept(&headers, b"{}", 1_614_265_331_000), Err(VerifyError::NoMatch));
//! // A day later the same request is refused as a replay.
//! assert_eq!(
//!     accept(&headers, body, 1_614_351_730_000),
//!     Err(VerifyError::TimestampOutOfTolerance)
//! );
//! ```
//!
//! Deduplicate on `webhook-id`: it stays the same across every attempt of one event.

mod hmac_scheme;
mod mac;
mod scheme;
mod secret;
mod sign;
mod standard;
mod validate;
mod verify;

#[cfg(test)]
mod roundtrip_tests;

pub use scheme::{Encoding, HmacScheme, SignatureScheme, SignedContent, TimestampUnit};
pub use secret::{generate_secret, Secret, SecretError};
pub use sign::{sign, SignError};
pub use validate::SchemeError;
pub use verify::{verify, VerifyError, DEFAULT_TOLERANCE};
