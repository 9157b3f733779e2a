//! Certificates for TLS tests, made fresh per test with rcgen: a CA, a
//! server certificate it signs for `localhost` and `127.0.0.1`, and the
//! files a broker or database server reads them from.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA and one server certificate it signed, as PEM.
pub struct ServerCert {
    /// The CA's certificate: what clients must trust.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

/// A self-signed CA's certificate, unrelated to any other.
pub fn other_ca_pem() -> String {
    new_ca().pem()
}

fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA")
}

impl ServerCert {
    /// A new CA and a server certificate for `localhost` and `127.0.0.1`.
    pub fn new() -> Self {
        let ca = new_ca();
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params");
        let cert = params.signed_by(&key, &ca).expect("server certificate");
        Self {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir`; returns
    /// their paths.
    pub fn write_to(&self, dir: &Path) -> (String, String, String) {
        let write = |name: &str, text: &str| -> String {
            let path: PathBuf = dir.join(name);
            std::fs::write(&path, text).expect("write certificate file");
            path.to_string_lossy().into_owned()
        };
        (
            write("ca.pem", &self.ca_pem),
            write("server.pem", &self.cert_pem),
            write("server.key", &self.key_pem),
        )
    }
}

impl Default for ServerCert {
    fn default() -> Self {
        Self::new()
    }
}
