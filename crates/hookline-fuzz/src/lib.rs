//! Fuzz targets live in `tests/fuzz.rs`, as proptest properties over
//! arbitrary input: envelope parsing, delivery task decoding, signature
//! header parsing, `Retry-After` parsing, and the inbound sources' body
//! and event id parsing must never panic. They are
//! `#[ignore]`d so `make test` stays fast; `make fuzz` runs them with many
//! cases for a bounded time (cargo-fuzz would need a nightly toolchain).
