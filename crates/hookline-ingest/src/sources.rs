//! Ingest's copy of the inbound sources, read through the api's
//! `GET /v1/sources` (see [`crate::mirror`]) and looked up by the SHA-256
//! of the URL token, the only form in which the api keeps it.
//!
//! Verification secrets arrive sealed, as PostgreSQL holds them, and are
//! opened here with the keyring of `api.secret_key`: they never cross the
//! network in clear.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hookline_model::sealed::{self, Keyring};
use hookline_proto::ChangeKind;
use hookline_signature::{Secret, SignatureScheme};
use parking_lot::RwLock;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::mirror::{ApiReader, Mirror};
use crate::AppState;

/// How requests to a source are authenticated.
#[derive(Debug)]
pub enum Verify {
    /// Anyone holding the URL may post.
    None,
    /// The request must be signed with this scheme and secret.
    Signed(SignatureScheme, Secret),
    /// The stored secret did not open or parse (an operator's problem:
    /// `api.secret_key` differs from the api's). Requests are refused with
    /// `503` rather than let through unverified.
    Broken(String),
}

/// What ingest needs to turn a request into an event.
#[derive(Debug)]
pub struct Source {
    /// `src_…`, the key of its rate limit.
    pub id: String,
    /// The tenant of its events.
    pub tenant: String,
    /// The type of its events.
    pub event_type: String,
    /// The sender's signature check.
    pub verify: Verify,
}

/// The result of looking a URL token up.
pub enum Lookup {
    /// No read has succeeded yet: whether the token exists is unknown.
    NotLoaded,
    /// No such source (never was, or deleted).
    Unknown,
    /// The source.
    Found(Arc<Source>),
}

/// Sources by the SHA-256 of their URL token.
type Table = HashMap<[u8; 32], Arc<Source>>;

/// The table, replaced whole on every reload; `None` before the first.
#[derive(Clone, Default)]
pub struct SharedSources(Arc<RwLock<Option<Arc<Table>>>>);

impl SharedSources {
    /// The source whose URL token is `token`.
    pub fn lookup(&self, token: &str) -> Lookup {
        let Some(table) = self.0.read().clone() else {
            return Lookup::NotLoaded;
        };
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        match table.get(&hash) {
            Some(source) => Lookup::Found(source.clone()),
            None => Lookup::Unknown,
        }
    }

    /// The ids in the copy, to forget the rate limits of deleted sources.
    pub fn ids(&self) -> HashSet<String> {
        self.0
            .read()
            .iter()
            .flat_map(|table| table.values().map(|s| s.id.clone()))
            .collect()
    }

    fn replace(&self, table: Table) -> usize {
        let len = table.len();
        *self.0.write() = Some(Arc::new(table));
        len
    }
}

/// One entry of `GET /v1/sources`.
#[derive(Deserialize)]
struct Entry {
    id: String,
    tenant: String,
    event_type: String,
    token_hash: String,
    verify: Option<Value>,
    sealed_secret: Option<String>,
}

/// Opens and parses an entry's verification, or says why it cannot be.
fn verify_of(entry: &Entry, keyring: &Keyring) -> Verify {
    let Some(scheme) = &entry.verify else {
        return Verify::None;
    };
    let opened = (|| {
        let scheme: SignatureScheme =
            serde_json::from_value(scheme.clone()).map_err(|e| format!("scheme: {e}"))?;
        let sealed_secret = STANDARD
            .decode(entry.sealed_secret.as_deref().unwrap_or_default())
            .map_err(|e| format!("sealed secret: {e}"))?;
        let text = keyring
            .open_string(&sealed::source_secret(&entry.id), &sealed_secret)
            .map_err(|e| format!("sealed secret: {e}"))?;
        let secret = Secret::parse(&scheme, &text).map_err(|e| format!("secret: {e}"))?;
        Ok::<_, String>(Verify::Signed(scheme, secret))
    })();
    opened.unwrap_or_else(|reason| {
        tracing::error!(source_id = %entry.id, %reason, "a source's verification cannot be opened; its requests answer 503 (is api.secret_key the api's?)");
        Verify::Broken(reason)
    })
}

fn table_of(entries: Vec<Entry>, keyring: &Keyring) -> Table {
    let mut table = HashMap::with_capacity(entries.len());
    for entry in entries {
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(&entry.token_hash, &mut hash).is_err() {
            tracing::error!(source_id = %entry.id, "a source's token hash is not hex SHA-256; skipped");
            continue;
        }
        let verify = verify_of(&entry, keyring);
        table.insert(
            hash,
            Arc::new(Source {
                id: entry.id,
                tenant: entry.tenant,
                event_type: entry.event_type,
                verify,
            }),
        );
    }
    table
}

/// Keeps `state.sources` equal to the api's, and forgets the rate limits
/// of deleted sources.
pub fn mirror(reader: ApiReader, state: Arc<AppState>) -> Mirror {
    Mirror {
        what: "inbound sources",
        kind: ChangeKind::Sources,
        reload: Box::new(move || {
            let (reader, state) = (reader.clone(), state.clone());
            Box::pin(async move {
                let entries: Vec<Entry> = reader.fetch_all("/v1/sources").await?;
                let loaded = state
                    .sources
                    .replace(table_of(entries, &state.config.keyring));
                let ids = state.sources.ids();
                if let Some(limits) = &state.source_limits {
                    limits.retain(|id| ids.contains(id));
                }
                Ok(loaded)
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, token: &str) -> Entry {
        Entry {
            id: id.into(),
            tenant: "acme".into(),
            event_type: "form.submitted".into(),
            token_hash: hex::encode(Sha256::digest(token.as_bytes())),
            verify: None,
            sealed_secret: None,
        }
    }

    #[test]
    fn a_token_finds_its_source_and_nothing_before_the_first_load() {
        let keyring = Keyring::new("key-one-0123456789", []);
        let sources = SharedSources::default();
        assert!(matches!(sources.lookup("hlin_a"), Lookup::NotLoaded));
        sources.replace(table_of(vec![entry("src_1", "hlin_a")], &keyring));
        assert!(matches!(sources.lookup("hlin_a"), Lookup::Found(s) if s.id == "src_1"));
        assert!(matches!(sources.lookup("hlin_b"), Lookup::Unknown));
        assert_eq!(sources.ids(), HashSet::from(["src_1".to_string()]));
    }

    #[test]
    fn a_sealed_secret_opens_and_a_foreign_one_is_broken() {
        let keyring = Keyring::new("key-one-0123456789", []);
        let mut signed = entry("src_1", "hlin_a");
        signed.verify = Some(serde_json::json!({"scheme": "standard"}));
        let secret = hookline_signature::generate_secret();
        let sealed_secret = keyring
            .seal(&sealed::source_secret("src_1"), secret.as_bytes())
            .unwrap();
        signed.sealed_secret = Some(STANDARD.encode(&sealed_secret));
        assert!(matches!(verify_of(&signed, &keyring), Verify::Signed(..)));
        let other = Keyring::new("key-two-0123456789", []);
        assert!(matches!(verify_of(&signed, &other), Verify::Broken(_)));
    }
}
