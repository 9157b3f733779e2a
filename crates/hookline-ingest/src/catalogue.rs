//! Ingest's copy of the event type catalogue, read through the api (see
//! [`crate::mirror`]).
//!
//! Until the first read succeeds, ingest accepts events unchecked: fanout
//! checks every event against its own copy (loaded from PostgreSQL), so an
//! event ingest let through still ends in `hookline.events.invalid` with
//! its reason rather than at a receiver.

use hookline_catalogue::SharedCatalogue;
use hookline_proto::ChangeKind;
use serde::Deserialize;
use serde_json::Value;

use crate::mirror::{ApiReader, Mirror};

/// One entry of `GET /v1/event-types`, as far as ingest reads it.
#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    name: String,
    schema: Option<Value>,
}

/// Keeps `catalogue` equal to the api's.
pub fn mirror(reader: ApiReader, catalogue: SharedCatalogue) -> Mirror {
    Mirror {
        what: "event type catalogue",
        kind: ChangeKind::Catalogue,
        reload: Box::new(move || {
            let (reader, catalogue) = (reader.clone(), catalogue.clone());
            Box::pin(async move {
                let entries: Vec<Entry> = reader.fetch_all("/v1/event-types").await?;
                Ok(catalogue.replace(
                    entries
                        .into_iter()
                        .filter_map(|entry| Some((entry.name, entry.schema?))),
                ))
            })
        }),
    }
}
