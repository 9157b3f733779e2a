//! Hookline's integration tests: the real services against the real broker,
//! database and an HTTP receiver on loopback. One binary, a module per area.

mod api;
mod batches;
mod catalogue;
mod catalogue_checks;
mod client;
mod control;
mod endpoint_queues;
mod fairness;
mod http_limits;
mod ingest;
mod metrics;
mod migrations;
mod observability;
mod otel;
mod parking;
mod pipeline;
mod producers;
mod receiver_examples;
mod receivers;
mod redelivery;
mod retries;
mod revisions;
mod security;
mod shapes;
mod shutdown;
mod signing;
mod sources;
mod templates;
mod tools;
mod traces;
mod trust;
mod verification;
