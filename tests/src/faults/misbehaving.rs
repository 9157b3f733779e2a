//! Receivers that misbehave at the socket level, which an HTTP framework
//! would not let us do: accept and never answer, trickle a body forever,
//! stream a huge body, or speak TLS with a certificate nobody trusts.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A self-signed certificate for 127.0.0.1 and localhost: valid in form,
/// trusted by no one.
const UNTRUSTED_CERT: &str = include_str!("untrusted-cert.pem");
/// Its key.
const UNTRUSTED_KEY: &str = include_str!("untrusted-key.pem");

/// How the receiver misbehaves.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Reads the request, then never answers and never closes.
    Silent,
    /// Sends the status line and headers (chunked), then one byte every
    /// `every`, forever.
    Trickle {
        /// Status code of the answer.
        status: u16,
        /// Pause between bytes.
        every: Duration,
    },
    /// Announces and streams `bytes` of body as fast as the client reads.
    Huge {
        /// Status code of the answer.
        status: u16,
        /// Body length.
        bytes: u64,
    },
    /// TLS with [`UNTRUSTED_CERT`]; answers 200 to whoever gets through.
    UntrustedTls,
}

/// Counters shared with the connection tasks.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    requests: AtomicUsize,
    body_bytes_sent: AtomicU64,
}

/// A running misbehaving receiver on loopback.
#[derive(Clone)]
pub struct MisbehavingReceiver {
    /// `http://127.0.0.1:PORT` (or `https://` for TLS).
    pub base: String,
    counters: Arc<Counters>,
}

impl MisbehavingReceiver {
    /// Starts on an ephemeral loopback port.
    pub async fn start(behaviour: Misbehaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counters = Arc::new(Counters::default());
        let tls = matches!(behaviour, Misbehaviour::UntrustedTls).then(untrusted_acceptor);
        let shared = counters.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (counters, tls) = (shared.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, Misbehaviour::UntrustedTls, &counters).await;
                            }
                        }
                        None => serve(stream, behaviour, &counters).await,
                    }
                });
            }
        });
        let scheme = if matches!(behaviour, Misbehaviour::UntrustedTls) {
            "https"
        } else {
            "http"
        };
        Self {
            base: format!("{scheme}://{addr}"),
            counters,
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// HTTP requests whose head was read (after TLS, when there is TLS).
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Body bytes the receiver managed to write before the client hung up.
    pub fn body_bytes_sent(&self) -> u64 {
        self.counters.body_bytes_sent.load(Ordering::SeqCst)
    }
}

fn untrusted_acceptor() -> TlsAcceptor {
    let certs = vec![CertificateDer::from_pem_slice(UNTRUSTED_CERT.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(UNTRUSTED_KEY.as_bytes()).expect("key");
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}

/// Reads one request (head and `Content-Length` body); `false` when the
/// client went away first.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buffer.len() - head_end;
    while body < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => body += n,
        }
    }
    true
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    behaviour: Misbehaviour,
    counters: &Counters,
) {
    if !read_request(&mut stream).await {
        return;
    }
    counters.requests.fetch_add(1, Ordering::SeqCst);
    match behaviour {
        Misbehaviour::Silent => {
            // Hold the connection until the client gives up.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        Misbehaviour::Trickle { status, every } => {
            let head = format!(
                "HTTP/1.1 {status} Misbehaving\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            while stream.write_all(b"1\r\nx\r\n").await.is_ok() && stream.flush().await.is_ok() {
                counters.body_bytes_sent.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(every).await;
            }
        }
        Misbehaviour::Huge { status, bytes } => {
            let head = format!(
                "HTTP/1.1 {status} Misbehaving\r\ncontent-type: text/plain\r\ncontent-length: {bytes}\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'x'; 64 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                if stream.write_all(&block[..n]).await.is_err() {
                    return;
                }
                counters
                    .body_bytes_sent
                    .fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
        }
        Misbehaviour::UntrustedTls => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    }
}
