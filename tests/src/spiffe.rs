//! SPIFFE test support: a test certificate authority ([`TestCa`]), an SVID issuer double for the agent's
//! `SvidSource` ([`DoubleIssuer`], which checks each request as the verifier's contract says), a gRPC channel over a
//! Unix socket ([`uds_channel`]) and an in-memory rustls handshake ([`handshake`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use locus_agent::spiffe::bundle::SpiffeBundle;
use locus_agent::spiffe::source::{
    BoxFuture, IssuedJwt, IssuedWit, IssuedX509, SvidCall, SvidSource,
};
use locus_agent::AgentError;
use locus_wimse::jws::{sign_compact, CompactJws};
use locus_wimse::wpt::token_hash;
use locus_wimse::{Alg, Es256SigningKey, Jwk, PublicKey, WitIssuer, WorkloadId};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

use crate::unix_now;

/// A P-256 certificate authority for one trust domain.
#[derive(Debug)]
pub struct TestCa {
    key: KeyPair,
    params: CertificateParams,
    der: Vec<u8>,
}

/// A P-256 public key given as its uncompressed point (a key rcgen did not generate).
struct RawP256(Vec<u8>);

impl PublicKeyData for RawP256 {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

fn time_at(unix: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix as i64).expect("unix time")
}

fn san(uri: &str) -> SanType {
    SanType::URI(uri.try_into().expect("ia5 uri"))
}

impl TestCa {
    /// A CA whose only URI SAN is `spiffe://<trust_domain>`, valid for a day around now.
    pub fn new(trust_domain: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![san(&format!("spiffe://{trust_domain}"))];
        params.not_before = time_at(unix_now() - 3600);
        params.not_after = time_at(unix_now() + 86_400);
        let der = params.self_signed(&key).expect("CA").der().to_vec();
        Self { key, params, der }
    }

    /// The CA certificate.
    pub fn cert(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.der.clone())
    }

    fn leaf_params(uris: &[&str], not_before: u64, not_after: u64) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.subject_alt_names = uris.iter().map(|u| san(u)).collect();
        params.not_before = time_at(not_before);
        params.not_after = time_at(not_after);
        params.use_authority_key_identifier_extension = true;
        params
    }

    /// A leaf for the P-256 public point `04 ‖ x ‖ y` with these URI SANs and validity.
    pub fn leaf_for_point(
        &self,
        point: &[u8],
        uris: &[&str],
        not_before: u64,
        not_after: u64,
    ) -> Vec<u8> {
        let issuer = Issuer::from_params(&self.params, &self.key);
        Self::leaf_params(uris, not_before, not_after)
            .signed_by(&RawP256(point.to_vec()), &issuer)
            .expect("leaf")
            .der()
            .to_vec()
    }

    /// A leaf with a fresh key: the certificate and the key's PKCS#8.
    pub fn leaf(
        &self,
        uris: &[&str],
        not_before: u64,
        not_after: u64,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("leaf key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = Self::leaf_params(uris, not_before, not_after)
            .signed_by(&key, &issuer)
            .expect("leaf");
        (
            CertificateDer::from(cert.der().to_vec()),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    /// The CA as a SPIFFE bundle key (`use` x509-svid, `x5c`).
    pub fn bundle_key(&self, kid: &str) -> Value {
        let point = self.key.public_key_raw();
        let pk = PublicKey::P256 {
            x: point[1..33].try_into().expect("x"),
            y: point[33..65].try_into().expect("y"),
        };
        let mut jwk = Jwk::new(pk).with_kid(kid).with_use("x509-svid").to_value();
        jwk["x5c"] = json!([base64::engine::general_purpose::STANDARD.encode(&self.der)]);
        jwk
    }
}

/// An SVID issuer standing in for the verifier's `POST /v1/svid` and `/v1/spiffe/bundle`: it checks each request as
/// the contract says (signature under the WIT's `cnf.jwk` over the received bytes, `typ`, `kind`, `wth`, a per-SVID
/// key that is not the attested key) and issues X.509-SVIDs from a [`TestCa`], JWT-SVIDs and WIT-SVIDs.
#[derive(Debug)]
pub struct DoubleIssuer {
    ca: TestCa,
    jwt_key: Es256SigningKey,
    wit: WitIssuer,
    x509_lifetime: u64,
    x509_issued: AtomicU64,
    seen_keys: std::sync::Mutex<Vec<[u8; 32]>>,
}

fn refused(code: &str, message: impl Into<String>) -> AgentError {
    AgentError::Refused {
        status: 403,
        code: code.into(),
        message: message.into(),
    }
}

impl DoubleIssuer {
    /// An issuer for `trust_domain` whose X.509-SVIDs live `x509_lifetime` seconds (at most until the WIT's `exp`).
    pub fn new(trust_domain: &str, x509_lifetime: u64) -> Self {
        Self {
            ca: TestCa::new(trust_domain),
            jwt_key: Es256SigningKey::generate().expect("key").with_kid("jwt-1"),
            wit: WitIssuer::new(
                Es256SigningKey::generate().expect("key").with_kid("wit-1"),
                Some("https://double.example".into()),
            )
            .expect("WIT issuer"),
            x509_lifetime,
            x509_issued: AtomicU64::new(0),
            seen_keys: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// X.509-SVIDs issued so far.
    pub fn x509_issued(&self) -> u64 {
        self.x509_issued.load(Ordering::Relaxed)
    }

    /// Thumbprints of every per-SVID key requested.
    pub fn seen_keys(&self) -> Vec<[u8; 32]> {
        self.seen_keys.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The bundle document, as `/v1/spiffe/bundle` serves it.
    pub fn bundle_json(&self) -> Value {
        json!({
            "keys": [
                self.ca.bundle_key("x509-1"),
                self.jwt_key.public_jwk().with_use("jwt-svid").to_value(),
                self.wit.public_jwk().to_value(),
            ],
            "spiffe_sequence": 1,
            "spiffe_refresh_hint": 60,
        })
    }

    /// The checks of the contract; the request claims, the subject and the WIT's `exp`.
    fn accept(
        &self,
        call: &SvidCall,
        kind: &str,
    ) -> Result<(serde_json::Map<String, Value>, WorkloadId, u64), AgentError> {
        let wit = CompactJws::parse(&call.wit)
            .map_err(|e| refused("credential_invalid", e.to_string()))?;
        let wit_claims = wit
            .claims()
            .map_err(|e| refused("credential_invalid", e.to_string()))?;
        let cnf = Jwk::from_value(&wit_claims["cnf"]["jwk"])
            .map_err(|e| refused("credential_invalid", e.to_string()))?;
        let req = CompactJws::parse(&call.request)
            .map_err(|e| refused("request_invalid", e.to_string()))?;
        if req.header.typ.as_deref() != Some("locus-svid-request+jwt") {
            return Err(refused("request_invalid", "typ"));
        }
        req.verify_with(Alg::Es256, &cnf.key)
            .map_err(|_| refused("signature_invalid", "request signature"))?;
        let claims = req
            .claims()
            .map_err(|e| refused("request_invalid", e.to_string()))?;
        if claims["kind"] != kind {
            return Err(refused(
                "request_invalid",
                format!("kind {} for {kind}", claims["kind"]),
            ));
        }
        if claims["wth"] != token_hash(&call.wit) {
            return Err(refused("request_invalid", "wth"));
        }
        if kind != "jwt-svid" {
            let pk = Jwk::from_value(&claims["public_key"])
                .map_err(|e| refused("key_unsupported", e.to_string()))?;
            if pk.thumbprint_sha256() == cnf.thumbprint_sha256() {
                return Err(refused("key_unsupported", "the attested key"));
            }
            if let Ok(mut g) = self.seen_keys.lock() {
                g.push(pk.thumbprint_sha256());
            }
        }
        let sub = wit_claims["sub"]
            .as_str()
            .and_then(|s| WorkloadId::parse(s).ok())
            .ok_or_else(|| refused("identifier_invalid", "sub"))?;
        let exp = wit_claims["exp"]
            .as_u64()
            .ok_or_else(|| refused("credential_invalid", "exp"))?;
        Ok((claims, sub, exp))
    }
}

impl SvidSource for DoubleIssuer {
    fn issue_x509(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedX509, AgentError>> {
        Box::pin(async move {
            let (claims, sub, wit_exp) = self.accept(&call, "x509-svid")?;
            let PublicKey::P256 { x, y } = Jwk::from_value(&claims["public_key"])
                .map_err(|e| refused("key_unsupported", e.to_string()))?
                .key
            else {
                return Err(refused("key_unsupported", "not P-256"));
            };
            let now = unix_now();
            let exp = (now + self.x509_lifetime).min(wit_exp);
            let point = [&[4u8][..], &x, &y].concat();
            let leaf = self
                .ca
                .leaf_for_point(&point, &[sub.as_str()], now - 60, exp);
            self.x509_issued.fetch_add(1, Ordering::Relaxed);
            Ok(IssuedX509 {
                chain: vec![leaf],
                expires_at: exp,
            })
        })
    }

    fn issue_jwt(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedJwt, AgentError>> {
        Box::pin(async move {
            let (claims, sub, wit_exp) = self.accept(&call, "jwt-svid")?;
            let now = unix_now();
            let exp = (now + 300).min(wit_exp);
            let token = sign_compact(
                &self.jwt_key,
                &json!({"alg": "ES256", "kid": "jwt-1", "typ": "JWT"}),
                &json!({"sub": sub.as_str(), "aud": claims["aud"], "iat": now, "exp": exp}),
            )
            .map_err(|e| AgentError::Internal(e.to_string()))?;
            Ok(IssuedJwt {
                token,
                expires_at: exp,
            })
        })
    }

    fn issue_wit(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedWit, AgentError>> {
        Box::pin(async move {
            let (claims, sub, wit_exp) = self.accept(&call, "wit-svid")?;
            let pk = Jwk::from_value(&claims["public_key"])
                .map_err(|e| refused("key_unsupported", e.to_string()))?;
            let now = unix_now();
            let exp = (now + self.x509_lifetime).min(wit_exp);
            let (wit, _) = self
                .wit
                .issue(&sub, &pk, now, exp, &serde_json::Map::new())
                .map_err(|e| AgentError::Internal(e.to_string()))?;
            Ok(IssuedWit {
                wit,
                expires_at: exp,
            })
        })
    }

    fn bundle(&self) -> BoxFuture<'_, Result<SpiffeBundle, AgentError>> {
        Box::pin(async move { SpiffeBundle::from_json(self.bundle_json().to_string().as_bytes()) })
    }
}

/// A gRPC channel to the Unix socket at `path`.
pub async fn uds_channel(path: &Path) -> tonic::transport::Channel {
    let path: PathBuf = path.to_path_buf();
    tonic::transport::Endpoint::try_from("http://localhost")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .expect("connect to the Workload API socket")
}

/// `req` with the Workload API's security header.
pub fn with_header<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("workload.spiffe.io", "true".parse().expect("metadata"));
    req
}

/// Run a TLS handshake between `client` and `server` in memory (server name `workload.invalid`, which SPIFFE
/// verification ignores). `Err` carries the first side's error.
pub fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
) -> Result<(), rustls::Error> {
    let name = rustls::pki_types::ServerName::try_from("workload.invalid").expect("name");
    let mut c = rustls::ClientConnection::new(client, name)?;
    let mut s = rustls::ServerConnection::new(server)?;
    for _ in 0..16 {
        let mut buf = Vec::new();
        c.write_tls(&mut buf)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        if !buf.is_empty() {
            s.read_tls(&mut &buf[..])
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            s.process_new_packets()?;
        }
        buf.clear();
        s.write_tls(&mut buf)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        if !buf.is_empty() {
            c.read_tls(&mut &buf[..])
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            c.process_new_packets()?;
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    Err(rustls::Error::General("handshake did not finish".into()))
}

/// The ring crypto provider.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The next answer of a Workload API stream, within `wait`.
pub async fn next_answer<T>(stream: &mut tonic::Streaming<T>, wait: std::time::Duration) -> T {
    use tokio_stream::StreamExt as _;
    tokio::time::timeout(wait, stream.next())
        .await
        .expect("an answer in time")
        .expect("an answer")
        .expect("ok")
}

/// FetchWITSVID (asking for `ask`, empty for the caller's own) and FetchWITBundles, checked as a relying party would:
/// the first WIT-SVID is for `expected`, verifies with the WIT bundle of [`crate::TRUST_DOMAIN`], and its `cnf.jwk`
/// is the public part of the private JWK handed out with it. Returns that public JWK and the SVID's claims.
pub async fn checked_wit_svid(
    c: &mut locus_agent::spiffe::pb::spiffe_workload_api_client::SpiffeWorkloadApiClient<
        tonic::transport::Channel,
    >,
    ask: &str,
    expected: &str,
    wait: std::time::Duration,
) -> (Jwk, serde_json::Map<String, Value>) {
    use locus_agent::spiffe::pb;
    let mut svids = c
        .fetch_witsvid(with_header(pb::WitsvidRequest {
            spiffe_id: ask.into(),
        }))
        .await
        .expect("FetchWITSVID")
        .into_inner();
    let resp = next_answer(&mut svids, wait).await;
    let svid = &resp.svids[0];
    assert_eq!(svid.spiffe_id, expected);
    let mut bundles = c
        .fetch_wit_bundles(with_header(pb::WitBundlesRequest {}))
        .await
        .expect("FetchWITBundles")
        .into_inner();
    let bundle = next_answer(&mut bundles, wait).await;
    let jwks =
        locus_wimse::Jwks::from_json(&bundle.bundles[&format!("spiffe://{}", crate::TRUST_DOMAIN)])
            .expect("JWK Set");
    let trust = locus_wimse::TrustStore::new().with_keys(
        locus_wimse::TrustDomain::parse(crate::TRUST_DOMAIN).expect("trust domain"),
        jwks,
    );
    let verified = locus_wimse::WitVerifier::new(trust, locus_wimse::WitPolicy::wit_svid())
        .verify(&svid.wit_svid, unix_now())
        .expect("the WIT-SVID verifies with the WIT bundle");
    assert_eq!(verified.id().as_str(), expected);
    // Bound to the private JWK handed out with it.
    let mut key: Value = serde_json::from_str(&svid.wit_svid_key).expect("JWK JSON");
    let d = locus_wimse::b64::decode(key["d"].as_str().expect("private JWK")).expect("d");
    key.as_object_mut().expect("object").remove("d");
    let public = Jwk::from_value(&key).expect("public part");
    Es256SigningKey::from_scalar_and_public(&d, &public.key).expect("d matches x, y");
    let claims = CompactJws::parse(&svid.wit_svid)
        .expect("jws")
        .claims()
        .expect("claims");
    assert_eq!(
        Jwk::from_value(&claims["cnf"]["jwk"])
            .expect("cnf")
            .thumbprint_sha256(),
        public.thumbprint_sha256()
    );
    (public, claims)
}
