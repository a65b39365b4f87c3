//! The listener: TLS, connection caps and the timers that close slow or idle connections (docs/api.md; issue 10).
//!
//! Flow per connection: accept → caps (overall and per client address; over either, the socket is closed at once) →
//! TLS handshake with a deadline (rustls, `[server] tls_cert`/`tls_key`, reloaded on SIGHUP and when the files change)
//! → HTTP/1.1 (hyper) with a header-read deadline → the axum router, with the peer address as a request extension
//! (`ConnectInfo`) for admission control. A watchdog closes a connection that has moved no byte for `idle_timeout`
//! (an idle keep-alive or a half-open socket); hyper closes one whose request head takes longer than
//! `header_read_timeout` (a slow-loris drip). On shutdown every connection is asked to finish its request and close.
//!
//! Plaintext is allowed only on loopback listen addresses, or with `allow_plaintext = true` (logged at warn).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// The largest request head accepted (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Connection limits and timers (`[server]` keys; defaults in [`crate::config`]).
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub handshake_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

/// The TLS server configuration, swapped whole on reload.
#[derive(Debug)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// (length, mtime) of both files when last loaded, to notice a change.
    seen: Mutex<Option<(u64, u64)>>,
}

fn stamp(paths: [&Path; 2]) -> Option<(u64, u64)> {
    let mut len = 0u64;
    let mut mtime = 0u64;
    for p in paths {
        let m = std::fs::metadata(p).ok()?;
        len = len.wrapping_add(m.len());
        let t = m
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos() as u64;
        mtime = mtime.wrapping_add(t);
    }
    Some((len, mtime))
}

/// Install ring as the process-wide rustls crypto provider (the verifier's `main` calls it first). aws-lc-rs is
/// compiled in as well, for the per-request signatures, so nothing TLS-related (the listener, reqwest's collateral
/// clients) may be left to pick a provider on its own; rustls is built with ring alone, and this says so at run
/// time too. Returns false when another provider was installed first.
pub fn install_crypto_provider() -> bool {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // A concurrent install of the same provider is as good as ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    rustls::crypto::CryptoProvider::get_default()
        .is_some_and(|p| p.cipher_suites == rustls::crypto::ring::default_provider().cipher_suites)
}

/// Build a rustls server config from PEM files, with ring as the explicit crypto provider.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("tls_cert {}: no certificate", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Tls {
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let cfg = server_config(cert, key)?;
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(cfg)),
            seen: Mutex::new(stamp([cert, key])),
        })
    }

    /// Re-read the files; a bad pair keeps the running configuration.
    pub fn reload(&self) -> Result<(), String> {
        let cfg = server_config(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cfg);
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = stamp([&self.cert, &self.key]);
        Ok(())
    }

    /// Reload when either file changed since the last load.
    pub fn reload_if_changed(&self) {
        let now = stamp([&self.cert, &self.key]);
        let changed = *self.seen.lock().unwrap_or_else(|p| p.into_inner()) != now;
        if changed && now.is_some() {
            match self.reload() {
                Ok(()) => tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the running certificate")
                }
            }
        }
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let cfg = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(cfg)
    }
}

/// Open connections, overall and per client address.
#[derive(Debug, Default)]
struct Conns {
    per_client: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicU64,
}

/// A slot in [`Conns`], released on drop.
struct ConnSlot {
    conns: Arc<Conns>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.conns.total.fetch_sub(1, Ordering::Relaxed);
        let mut m = self
            .conns
            .per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl Conns {
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<ConnSlot> {
        let mut m = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if self.total.load(Ordering::Relaxed) as usize >= limits.max_connections {
            return None;
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= limits.max_connections_per_client {
            return None;
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(ConnSlot {
            conns: self.clone(),
            ip,
        })
    }
}

/// An IO that remembers when it last moved a byte.
struct Activity<T> {
    inner: T,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl<T> Activity<T> {
    fn touch(&self) {
        self.last
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Activity<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Activity<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// True for 127.0.0.0/8 and ::1.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Serve `app` on `listener` until `shutdown` resolves; then ask every connection to close after its request.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    limits: Limits,
    on_refused: Arc<dyn Fn() + Send + Sync>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let conns = Arc::new(Conns::default());
    // Graceful shutdown by hand (hyper-util's `GracefulShutdown` cannot watch a connection that may upgrade): every
    // connection task holds a clone of `alive`; on shutdown each is asked to finish its request and close, and
    // `drained` yields `None` once the last clone is dropped.
    let (draining_tx, draining_rx) = tokio::sync::watch::channel(false);
    let (alive, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = conns.admit(peer.ip(), &limits) else {
            on_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let limits = limits.clone();
        let alive = alive.clone();
        let mut draining = draining_rx.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let _slot = slot;
            let last = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let svc = app.map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let svc = TowerToHyperService::new(svc);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                // A request head larger than this gets 431 (hyper's default buffer would accept ~400 KB).
                .max_buf_size(MAX_HEAD_BYTES)
                .max_headers(64)
                .keep_alive(true);
            let io_result: Result<Pin<Box<dyn Io>>, String> = match &tls {
                None => Ok(Box::pin(Activity {
                    inner: stream,
                    started,
                    last: last.clone(),
                })),
                Some(tls) => {
                    match tokio::time::timeout(
                        limits.handshake_timeout,
                        tls.acceptor().accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => Ok(Box::pin(Activity {
                            inner: s,
                            started,
                            last: last.clone(),
                        })),
                        Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
                        Err(_) => Err("TLS handshake timed out".to_string()),
                    }
                }
            };
            let io = match io_result {
                Ok(io) => io,
                Err(e) => {
                    tracing::debug!(peer = %peer, error = %e, "connection closed before HTTP");
                    return;
                }
            };
            // With upgrades: `GET /v1/proximity` hands the connection to a landmark session (crate::proximity).
            let conn = builder
                .serve_connection(TokioIo::new(io), svc)
                .with_upgrades();
            tokio::pin!(conn);
            let check = (limits.idle_timeout / 4).max(Duration::from_millis(100));
            let mut asked_to_close = false;
            loop {
                tokio::select! {
                    r = &mut conn => {
                        if let Err(e) = r {
                            tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    changed = draining.changed(), if !asked_to_close => {
                        asked_to_close = true;
                        if changed.is_ok() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                    () = tokio::time::sleep(check) => {
                        let idle_for = started.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                        if idle_for >= limits.idle_timeout {
                            tracing::debug!(peer = %peer, "closing an idle connection");
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = draining_tx.send(true);
    drop(alive);
    let _ = drained.recv().await;
    Ok(())
}

/// The IO a connection runs on: plain TCP or TLS, both activity-tracked.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

#[cfg(test)]
mod tests {
    #[test]
    fn ring_is_the_process_wide_rustls_provider_after_install() {
        assert!(super::install_crypto_provider());
        assert!(
            super::install_crypto_provider(),
            "installing twice is harmless"
        );
        let reqwest_client = reqwest::Client::builder().build();
        assert!(reqwest_client.is_ok(), "{reqwest_client:?}");
    }

    use super::*;

    fn limits(total: usize, per: usize) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
            max_connections: total,
            max_connections_per_client: per,
        }
    }

    #[test]
    fn connection_caps_hold_overall_and_per_client_and_free_on_drop() {
        let conns = Arc::new(Conns::default());
        let l = limits(3, 2);
        let a: IpAddr = "127.0.0.2".parse().expect("ip");
        let b: IpAddr = "127.0.0.3".parse().expect("ip");
        let s1 = conns.admit(a, &l).expect("first");
        let _s2 = conns.admit(a, &l).expect("second");
        assert!(conns.admit(a, &l).is_none(), "per-client cap");
        let _s3 = conns.admit(b, &l).expect("other client");
        assert!(conns.admit(b, &l).is_none(), "overall cap");
        drop(s1);
        assert!(conns.admit(a, &l).is_some(), "freed on drop");
    }

    #[test]
    fn loopback_is_127_slash_8_and_ipv6_one() {
        for a in ["127.0.0.1:1", "127.9.9.9:1", "[::1]:1"] {
            assert!(is_loopback(&a.parse().expect("addr")), "{a}");
        }
        for a in ["0.0.0.0:1", "10.0.0.1:1", "[::]:1"] {
            assert!(!is_loopback(&a.parse().expect("addr")), "{a}");
        }
    }
}
