//! The start-up refusal of development credentials off loopback: a service
//! reachable from other machines must not run with a token or key that is
//! printed in this repository.

use std::net::SocketAddr;

use crate::load::ConfigError;
use crate::secret::Secret;
use crate::settings::{Settings, DEV_ADMIN_TOKEN, DEV_SECRET_KEY};

/// Marks the placeholders in `deploy/`: a manifest applied unedited must
/// fail as loudly as a missing value.
const PLACEHOLDER: &str = "CHANGE-ME";

fn is_development(value: &Secret, default: &str) -> bool {
    let value = value.expose();
    value == default || value.contains(PLACEHOLDER)
}

/// Refuses to serve on `listen` (named `listen_key`) when it is not a
/// loopback address while `api.admin_token` or `api.secret_key` has its
/// development default or a `CHANGE-ME` placeholder, or, for ingest, while
/// `ingest.tokens` is empty and `ingest.allow_anonymous` is off.
pub fn refuse_development_defaults(
    settings: &Settings,
    listen_key: &str,
    listen: SocketAddr,
    is_ingest: bool,
) -> Result<(), ConfigError> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    let refuse = |key: &str, what: &str| ConfigError::Invalid {
        key: key.into(),
        message: format!(
            "{what} while {listen_key} is {listen}, which is not loopback; \
             set a random value of at least 16 characters"
        ),
    };
    if is_development(&settings.api.admin_token, DEV_ADMIN_TOKEN) {
        return Err(refuse(
            "api.admin_token",
            "still has its development default",
        ));
    }
    if is_development(&settings.api.secret_key, DEV_SECRET_KEY) {
        return Err(refuse(
            "api.secret_key",
            "still has its development default",
        ));
    }
    if is_ingest {
        if settings.ingest.tokens.is_empty() && !settings.ingest.allow_anonymous {
            return Err(ConfigError::Invalid {
                key: "ingest.tokens".into(),
                message: format!(
                    "is empty while ingest.listen is {listen}, which is not loopback; \
                     set producer tokens, or ingest.allow_anonymous = true"
                ),
            });
        }
        if settings
            .ingest
            .tokens
            .iter()
            .any(|t| t.expose().contains(PLACEHOLDER))
        {
            return Err(refuse("ingest.tokens", "holds a CHANGE-ME placeholder"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> SocketAddr {
        "0.0.0.0:8081".parse().unwrap()
    }

    #[test]
    fn loopback_listeners_accept_the_development_defaults() {
        let s = Settings::default();
        let local: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        refuse_development_defaults(&s, "api.listen", local, true).unwrap();
        refuse_development_defaults(&s, "api.listen", "[::1]:1".parse().unwrap(), true).unwrap();
    }

    #[test]
    fn a_public_listener_with_the_default_admin_token_is_refused_by_key() {
        let err = refuse_development_defaults(&Settings::default(), "api.listen", public(), false)
            .unwrap_err();
        assert!(err.to_string().starts_with("api.admin_token:"), "{err}");
        assert!(err.to_string().contains("api.listen"), "{err}");
    }

    #[test]
    fn a_placeholder_secret_key_is_refused_like_the_default() {
        let mut s = Settings::default();
        s.api.admin_token = Secret::new("a-real-admin-token-0123456789");
        s.api.secret_key = Secret::new("CHANGE-ME-secret-key");
        let err = refuse_development_defaults(&s, "api.listen", public(), false).unwrap_err();
        assert!(err.to_string().starts_with("api.secret_key:"), "{err}");
    }

    #[test]
    fn a_public_ingest_needs_tokens_unless_anonymous_is_allowed() {
        let mut s = Settings::default();
        s.api.admin_token = Secret::new("a-real-admin-token-0123456789");
        s.api.secret_key = Secret::new("a-real-secret-key-0123456789");
        refuse_development_defaults(&s, "fanout.listen", public(), false).unwrap();
        let err = refuse_development_defaults(&s, "ingest.listen", public(), true).unwrap_err();
        assert!(err.to_string().starts_with("ingest.tokens:"), "{err}");
        s.ingest.allow_anonymous = true;
        refuse_development_defaults(&s, "ingest.listen", public(), true).unwrap();
        s.ingest.allow_anonymous = false;
        s.ingest.tokens = vec![Secret::new("producer-token-0123456789")];
        refuse_development_defaults(&s, "ingest.listen", public(), true).unwrap();
    }
}
