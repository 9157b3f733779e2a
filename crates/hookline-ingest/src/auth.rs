//! Producer authentication: with `ingest.tokens` set, every event route
//! needs `Authorization: Bearer <one of them>`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::handlers::error;
use crate::AppState;

/// SHA-256 digests of the accepted tokens: comparing digests of equal length
/// in constant time tells nothing about a token's length or prefix.
#[derive(Debug, Clone, Default)]
pub struct ProducerTokens(Vec<[u8; 32]>);

impl ProducerTokens {
    /// Digests `tokens`; an empty list accepts every request.
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self(
            tokens
                .into_iter()
                .map(|t| Sha256::digest(t).into())
                .collect(),
        )
    }

    fn accepts(&self, presented: Option<&str>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(presented) = presented else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented).into();
        // Every token is compared, so timing does not reveal which matched.
        self.0
            .iter()
            .fold(0u8, |found, token| found | token.ct_eq(&digest).unwrap_u8())
            == 1
    }
}

/// Answers `401` before the body is read when the token is missing or wrong.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if state.tokens.accepts(presented) {
        return next.run(request).await;
    }
    state.metrics.events.with_label_values(&["rejected"]).inc();
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a producer token is required: Authorization: Bearer <one of ingest.tokens>",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tokens_configured_accepts_anyone() {
        assert!(ProducerTokens::new([]).accepts(None));
    }

    #[test]
    fn only_a_configured_token_is_accepted() {
        let tokens = ProducerTokens::new(["producer-one-0123456789", "producer-two-0123456789"]);
        assert!(tokens.accepts(Some("producer-two-0123456789")));
        assert!(!tokens.accepts(Some("producer-three-0123456789")));
        assert!(!tokens.accepts(Some("")));
        assert!(!tokens.accepts(None));
    }
}
