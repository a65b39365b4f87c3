//! `locus_wimse::spiffe_tls`: rustls mTLS between two workloads holding X.509-SVIDs of a test CA, each verifying the
//! other's SPIFFE ID, and every refusal: a wrong expected ID (on either side), another CA, another trust domain, an
//! expired SVID, and leaves whose URI SANs are not exactly one SPIFFE ID.

use std::sync::Arc;

use locus_tests::spiffe::{handshake, provider, TestCa};
use locus_tests::unix_now;
use locus_wimse::spiffe_tls::{
    spiffe_id_of_leaf, SpiffeClientVerifier, SpiffeIdError, SpiffeIdMatcher, SpiffeServerVerifier,
};
use locus_wimse::{TrustDomain, WorkloadId};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const TD: &str = "example.org";
const A: &str = "spiffe://example.org/ns/a";
const B: &str = "spiffe://example.org/ns/b";

fn td() -> TrustDomain {
    TrustDomain::parse(TD).expect("td")
}

fn exact(id: &str) -> SpiffeIdMatcher {
    SpiffeIdMatcher::Exact(WorkloadId::parse(id).expect("id"))
}

type Svid = (CertificateDer<'static>, PrivateKeyDer<'static>);

fn svid(ca: &TestCa, id: &str) -> Svid {
    let now = unix_now();
    ca.leaf(&[id], now - 60, now + 3600)
}

/// Client presents `client_svid` and expects `server_expects`-matching server; server presents `server_svid` and
/// expects a matching client. Both trust `bundle`.
fn mtls(
    bundle: &[CertificateDer<'static>],
    client_svid: Svid,
    client_expects: SpiffeIdMatcher,
    server_svid: Svid,
    server_expects: SpiffeIdMatcher,
) -> Result<(), rustls::Error> {
    let client_verifier = SpiffeServerVerifier::new(bundle, td(), client_expects, provider())?;
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(client_verifier))
        .with_client_auth_cert(vec![client_svid.0], client_svid.1)?;
    let server_verifier = SpiffeClientVerifier::new(bundle, td(), server_expects, provider())?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(server_verifier))
        .with_single_cert(vec![server_svid.0], server_svid.1)?;
    handshake(Arc::new(client), Arc::new(server))
}

/// The SPIFFE refusal inside a rustls error.
fn spiffe_error(e: &rustls::Error) -> Option<SpiffeIdError> {
    match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<SpiffeIdError>().cloned()
        }
        _ => None,
    }
}

#[test]
fn mtls_completes_when_each_side_expects_the_others_spiffe_id() {
    let ca = TestCa::new(TD);
    let bundle = [ca.cert()];
    mtls(&bundle, svid(&ca, A), exact(B), svid(&ca, B), exact(A)).expect("handshake");
    // Any ID of the trust domain, and a predicate.
    let only_ns =
        SpiffeIdMatcher::Predicate(Arc::new(|id: &WorkloadId| id.path().starts_with("/ns/")));
    mtls(
        &bundle,
        svid(&ca, A),
        SpiffeIdMatcher::AnyInTrustDomain,
        svid(&ca, B),
        only_ns,
    )
    .expect("handshake");
}

#[test]
fn a_wrong_expected_spiffe_id_fails_the_handshake_on_either_side() {
    let ca = TestCa::new(TD);
    let bundle = [ca.cert()];
    let c = "spiffe://example.org/ns/c";
    // The client expects C but the server is B.
    let err =
        mtls(&bundle, svid(&ca, A), exact(c), svid(&ca, B), exact(A)).expect_err("client refuses");
    assert_eq!(
        spiffe_error(&err),
        Some(SpiffeIdError::IdNotAccepted(B.into())),
        "{err}"
    );
    // The server expects C but the client is A.
    let err =
        mtls(&bundle, svid(&ca, A), exact(B), svid(&ca, B), exact(c)).expect_err("server refuses");
    assert_eq!(
        spiffe_error(&err),
        Some(SpiffeIdError::IdNotAccepted(A.into())),
        "{err}"
    );
}

#[test]
fn an_svid_of_another_ca_or_trust_domain_or_past_its_expiry_is_refused() {
    let ca = TestCa::new(TD);
    let bundle = [ca.cert()];
    let rogue = TestCa::new(TD);
    let err =
        mtls(&bundle, svid(&ca, A), exact(B), svid(&rogue, B), exact(A)).expect_err("other CA");
    // The rogue CA has the same subject name, so the chain is built and its signature fails.
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature
            )
        ),
        "{err:?}"
    );
    // Same CA, but the server's ID is in another trust domain: refused even by a matcher that accepts everything.
    let anything = SpiffeIdMatcher::Predicate(Arc::new(|_: &WorkloadId| true));
    let err = mtls(
        &bundle,
        svid(&ca, A),
        anything,
        svid(&ca, "spiffe://other.org/b"),
        exact(A),
    )
    .expect_err("other trust domain");
    assert_eq!(
        spiffe_error(&err),
        Some(SpiffeIdError::TrustDomainMismatch {
            expected: TD.into(),
            got: "spiffe://other.org/b".into()
        }),
        "{err}"
    );
    let now = unix_now();
    let expired = ca.leaf(&[B], now - 7200, now - 3600);
    let err = mtls(&bundle, svid(&ca, A), exact(B), expired, exact(A)).expect_err("expired");
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::ExpiredContext { .. } | rustls::CertificateError::Expired
            )
        ),
        "{err:?}"
    );
}

#[test]
fn a_leaf_must_carry_exactly_one_uri_san_that_is_a_workload_spiffe_id() {
    let ca = TestCa::new(TD);
    let now = unix_now();
    let leaf = |uris: &[&str]| ca.leaf(uris, now - 60, now + 60).0;
    assert_eq!(
        spiffe_id_of_leaf(&leaf(&[A])).map(|id| id.to_string()),
        Ok(A.to_string())
    );
    assert_eq!(
        spiffe_id_of_leaf(&leaf(&[A, B])),
        Err(SpiffeIdError::UriSanCount(2))
    );
    assert_eq!(
        spiffe_id_of_leaf(&leaf(&[])),
        Err(SpiffeIdError::UriSanCount(0))
    );
    for bad in [
        "https://example.org/a",
        "spiffe://example.org",
        "spiffe://example.org/%61",
        "wimse://example.org/a",
    ] {
        assert_eq!(
            spiffe_id_of_leaf(&leaf(&[bad])),
            Err(SpiffeIdError::NotSpiffeId(bad.into())),
            "{bad}"
        );
    }
    assert!(matches!(
        spiffe_id_of_leaf(b"not a certificate"),
        Err(SpiffeIdError::Malformed(_))
    ));
    // And in a handshake: a server leaf with two URI SANs is refused.
    let two = ca.leaf(&[B, A], now - 60, now + 60);
    let bundle = [ca.cert()];
    let err = mtls(&bundle, svid(&ca, A), exact(B), two, exact(A)).expect_err("two URI SANs");
    assert_eq!(
        spiffe_error(&err),
        Some(SpiffeIdError::UriSanCount(2)),
        "{err}"
    );
}

#[test]
fn an_empty_bundle_is_a_configuration_error() {
    assert!(SpiffeServerVerifier::new(&[], td(), exact(A), provider()).is_err());
    assert!(SpiffeClientVerifier::new(&[], td(), exact(A), provider()).is_err());
}
