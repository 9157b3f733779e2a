//! The credentials of a task: signing secrets and static headers travel
//! sealed (see `hookline_model::sealed`) and are opened here, just before
//! signing, by the only stage that sends.

use hookline_model::sealed::{self, Keyring, OpenError};
use hookline_proto::DeliveryTask;

/// What signing and sending need in clear, for one attempt only.
#[derive(Default)]
pub struct Credentials {
    /// Signing secrets, newest first.
    pub secrets: Vec<String>,
    /// Static headers.
    pub headers: Vec<(String, String)>,
}

/// Opens a task's sealed secrets and headers. Tasks written before sealing
/// carry them in clear, and are honoured as they are.
pub fn open(keyring: &Keyring, task: &DeliveryTask) -> Result<Credentials, OpenError> {
    let mut credentials = Credentials {
        secrets: task.secrets.clone(),
        headers: task
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let secret_place = sealed::subscription_secret(&task.subscription_id);
    for sealed_secret in &task.sealed_secrets {
        credentials
            .secrets
            .push(keyring.open_string(&secret_place, sealed_secret)?);
    }
    if !task.sealed_headers.is_empty() {
        let place = sealed::subscription_headers(&task.subscription_id);
        let json = keyring.open(&place, &task.sealed_headers)?;
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_slice(&json).map_err(|_| OpenError::Corrupt)?;
        credentials.headers.extend(map);
    }
    Ok(credentials)
}

/// Drops every credential from a task that is parked: a dead letter is
/// replayed with the subscription's current ones, so it keeps none.
pub fn strip(task: &mut DeliveryTask) {
    task.secrets.clear();
    task.headers.clear();
    task.sealed_secrets.clear();
    task.sealed_headers = Default::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new("deliverer-test-key-0123456789", [])
    }

    #[test]
    fn sealed_secrets_and_headers_open_for_their_own_subscription_only() {
        let ring = ring();
        let mut task = DeliveryTask {
            subscription_id: "sub_1".into(),
            ..DeliveryTask::default()
        };
        task.sealed_secrets = vec![ring
            .seal(&sealed::subscription_secret("sub_1"), b"whsec_one")
            .unwrap()
            .into()];
        task.sealed_headers = ring
            .seal(
                &sealed::subscription_headers("sub_1"),
                br#"{"Authorization":"Bearer abc"}"#,
            )
            .unwrap()
            .into();
        let opened = open(&ring, &task).unwrap();
        assert_eq!(opened.secrets, ["whsec_one"]);
        assert_eq!(
            opened.headers,
            [("Authorization".into(), "Bearer abc".into())]
        );
        task.subscription_id = "sub_2".into();
        assert!(open(&ring, &task).is_err());
    }

    #[test]
    fn a_stripped_task_carries_no_credentials() {
        let mut task = DeliveryTask {
            secrets: vec!["whsec_x".into()],
            sealed_secrets: vec![vec![1u8, 2].into()],
            sealed_headers: vec![3u8].into(),
            ..DeliveryTask::default()
        };
        task.headers.insert("A".into(), "b".into());
        strip(&mut task);
        assert!(task.secrets.is_empty() && task.headers.is_empty());
        assert!(task.sealed_secrets.is_empty() && task.sealed_headers.is_empty());
    }
}
