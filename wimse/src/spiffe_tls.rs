//! rustls certificate verifiers for SPIFFE X.509-SVID peers (the SPIFFE X509-SVID standard, §5 validation).
//!
//! An X.509-SVID names its workload only by a `spiffe://` URI SAN, which rustls's name check (DNS names and IP
//! addresses) cannot match. These verifiers replace the name check, not the chain check:
//! 1. the chain is validated against the trust domain's X.509 bundle by rustls's own webpki code —
//!    [`rustls::client::verify_server_cert_signed_by_trust_anchor`] (server certificates, `serverAuth`) and
//!    [`WebPkiClientVerifier`] (client certificates, `clientAuth`), with expiry checked at the handshake's time;
//! 2. the leaf must carry exactly one URI SAN, a strict SPIFFE ID ([`WorkloadId`]) with a path, in the bundle's trust
//!    domain;
//! 3. that ID must be accepted by the caller's [`SpiffeIdMatcher`] (one ID, any ID of the trust domain, or a
//!    predicate).
//!
//! The TLS server name a client passes is ignored: the SPIFFE ID is the name. Handshake signatures are checked with
//! the crypto provider's algorithms, as rustls does.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use x509_cert::der::oid::AssociatedOid as _;
use x509_cert::der::Decode as _;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use crate::id::{TrustDomain, WorkloadId};

/// Which peer SPIFFE IDs a verifier accepts.
#[derive(Clone)]
pub enum SpiffeIdMatcher {
    /// Exactly this ID (byte-for-byte).
    Exact(WorkloadId),
    /// Any ID of the bundle's trust domain.
    AnyInTrustDomain,
    /// Whatever the predicate accepts (called only for IDs of the bundle's trust domain).
    Predicate(Arc<dyn Fn(&WorkloadId) -> bool + Send + Sync>),
}

impl fmt::Debug for SpiffeIdMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(id) => f.debug_tuple("Exact").field(id).finish(),
            Self::AnyInTrustDomain => f.write_str("AnyInTrustDomain"),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

impl SpiffeIdMatcher {
    fn accepts(&self, id: &WorkloadId) -> bool {
        match self {
            Self::Exact(want) => want == id,
            Self::AnyInTrustDomain => true,
            Self::Predicate(p) => p(id),
        }
    }
}

/// Why a peer's X.509-SVID names no acceptable SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// The leaf does not parse as X.509.
    #[error("the leaf certificate does not parse: {0}")]
    Malformed(String),
    /// Not exactly one URI SAN.
    #[error("an X.509-SVID has exactly one URI SAN; this leaf has {0}")]
    UriSanCount(usize),
    /// The URI SAN is not a SPIFFE ID with a path.
    #[error("the URI SAN {0:?} is not a SPIFFE ID of a workload")]
    NotSpiffeId(String),
    /// The ID belongs to another trust domain than the bundle's.
    #[error("{got} is not in trust domain {expected}")]
    TrustDomainMismatch {
        /// The bundle's trust domain.
        expected: String,
        /// The peer's ID.
        got: String,
    },
    /// The matcher refused the ID.
    #[error("peer SPIFFE ID {0} is not the one expected")]
    IdNotAccepted(String),
}

fn other(e: SpiffeIdError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(e))))
}

/// The SPIFFE ID of an X.509-SVID leaf (steps 2 of the module docs), without any chain check.
pub fn spiffe_id_of_leaf(der: &[u8]) -> Result<WorkloadId, SpiffeIdError> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| SpiffeIdError::Malformed(e.to_string()))?;
    let mut uris = Vec::new();
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id == SubjectAltName::OID {
            let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(|e| SpiffeIdError::Malformed(e.to_string()))?;
            for name in san.0 {
                if let GeneralName::UniformResourceIdentifier(uri) = name {
                    uris.push(uri.to_string());
                }
            }
        }
    }
    let [uri] = uris.as_slice() else {
        return Err(SpiffeIdError::UriSanCount(uris.len()));
    };
    match WorkloadId::parse(uri) {
        Ok(id) if id.is_spiffe() && !id.path().is_empty() => Ok(id),
        _ => Err(SpiffeIdError::NotSpiffeId(uri.clone())),
    }
}

/// Steps 2 and 3 for `trust_domain` and `matcher`.
fn check_peer(
    end_entity: &CertificateDer<'_>,
    trust_domain: &TrustDomain,
    matcher: &SpiffeIdMatcher,
) -> Result<(), rustls::Error> {
    let id = spiffe_id_of_leaf(end_entity).map_err(other)?;
    if id.trust_domain() != *trust_domain {
        return Err(other(SpiffeIdError::TrustDomainMismatch {
            expected: trust_domain.to_string(),
            got: id.to_string(),
        }));
    }
    if !matcher.accepts(&id) {
        return Err(other(SpiffeIdError::IdNotAccepted(id.to_string())));
    }
    Ok(())
}

/// A trust domain's X.509 bundle as rustls roots.
fn roots(authorities: &[CertificateDer<'_>]) -> Result<Arc<RootCertStore>, rustls::Error> {
    if authorities.is_empty() {
        return Err(rustls::Error::General("the X.509 bundle is empty".into()));
    }
    let mut store = RootCertStore::empty();
    for a in authorities {
        store.add(a.clone().into_owned())?;
    }
    Ok(Arc::new(store))
}

/// Verifies a TLS server's X.509-SVID (for a [`rustls::ClientConfig`]).
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    trust_domain: TrustDomain,
    matcher: SpiffeIdMatcher,
    provider: Arc<CryptoProvider>,
}

impl SpiffeServerVerifier {
    /// Servers whose X.509-SVID chains to `authorities` (the X.509 bundle of `trust_domain`) and whose SPIFFE ID
    /// `matcher` accepts, using `provider`'s signature algorithms.
    pub fn new(
        authorities: &[CertificateDer<'_>],
        trust_domain: TrustDomain,
        matcher: SpiffeIdMatcher,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, rustls::Error> {
        Ok(Self {
            roots: roots(authorities)?,
            trust_domain,
            matcher,
            provider,
        })
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Step 1: the chain, by rustls's webpki verifier minus its DNS/IP name check.
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        // Steps 2 and 3: the SPIFFE ID.
        check_peer(end_entity, &self.trust_domain, &self.matcher)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Verifies a TLS client's X.509-SVID (for a [`rustls::ServerConfig`]); a client certificate is mandatory.
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust_domain: TrustDomain,
    matcher: SpiffeIdMatcher,
}

impl SpiffeClientVerifier {
    /// Clients whose X.509-SVID chains to `authorities` (the X.509 bundle of `trust_domain`) and whose SPIFFE ID
    /// `matcher` accepts, using `provider`'s signature algorithms.
    pub fn new(
        authorities: &[CertificateDer<'_>],
        trust_domain: TrustDomain,
        matcher: SpiffeIdMatcher,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, rustls::Error> {
        let inner = WebPkiClientVerifier::builder_with_provider(roots(authorities)?, provider)
            .build()
            .map_err(|e| rustls::Error::General(format!("client verifier: {e}")))?;
        Ok(Self {
            inner,
            trust_domain,
            matcher,
        })
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Step 1: the chain, by rustls's webpki client verifier (it checks no name).
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        // Steps 2 and 3: the SPIFFE ID.
        check_peer(end_entity, &self.trust_domain, &self.matcher)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
