//! Fault tests: their own broker node and database cluster (see tests/src/faults).
//! Each test owns a RabbitMQ node and a PostgreSQL cluster (or, for poison
//! messages that disturb nobody, a vhost and database of the shared ones),
//! injects one kind of fault, and checks the exact set of event ids that
//! reached the receiver and the duplicates among them.

mod alarm;
mod broker;
mod client;
mod crashes;
mod database;
mod poison;
mod quorum;
mod tls;
