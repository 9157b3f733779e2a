//! One delivery over HTTP, the same for the deliverer and for the api's
//! test sends: open the task's sealed credentials, sign, POST with the SSRF
//! guard, classify the answer, and describe the attempt for the history.
//! No AMQP and no database here: the callers decide what happens next.

pub mod batch;
pub mod credentials;
pub mod record;
pub mod request;
pub mod sender;

use hookline_config::ApiSettings;
use hookline_model::sealed::Keyring;

pub use sender::{SendResult, Sender};

/// The keys of `api.secret_key` and `api.previous_secret_keys`: what opens
/// the credentials the api sealed.
pub fn keyring_of(api: &ApiSettings) -> Keyring {
    Keyring::new(
        api.secret_key.expose(),
        api.previous_secret_keys.iter().map(|k| k.expose()),
    )
}
