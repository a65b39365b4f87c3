//! The identifier table: every identifier rule (draft-ietf-wimse-identifier, SPIFFE ID) with its verdict, for both schemes.
#![allow(clippy::unwrap_used)]

use locus_wimse::{IdReason, Scheme, WorkloadId};

enum Verdict {
    Ok,
    Bad(IdReason),
}
use Verdict::{Bad, Ok as Good};

fn table() -> Vec<(String, Verdict)> {
    let s = |x: &str| x.to_owned();
    // 2048 bytes exactly, and one more.
    let prefix = "spiffe://example.org/";
    let at_limit = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
    let over_limit = format!("{prefix}{}", "a".repeat(2049 - prefix.len()));
    let wprefix = "wimse://example.org/";
    let w_at_limit = format!("{wprefix}{}", "b".repeat(2048 - wprefix.len()));
    let w_over_limit = format!("{wprefix}{}", "b".repeat(2049 - wprefix.len()));
    let long_td = format!("spiffe://{}/w", "a".repeat(256));
    let td_255 = format!("spiffe://{}/w", "a".repeat(255));
    vec![
        // Accepted.
        (
            s("spiffe://prod.trust.domain/ns/prod-01/sa/foo-service"),
            Good,
        ),
        (s("spiffe://example.org/my-workload"), Good),
        (s("spiffe://ex_ample-1.org/A.b_c-D"), Good),
        (s("spiffe://10.0.0.1/legacy"), Good),
        (s("wimse://trust.example.com/service/payment"), Good),
        (
            s("wimse://prod.corp.example/workload/89a6ec51-f877-44c0-9501-b213597f2d1d"),
            Good,
        ),
        (s("wimse://example.com/specific-workload"), Good),
        (s("wimse://example.com/a~b/..c/.d"), Good),
        (s("wimse://example.com/Payment"), Good),
        (at_limit, Good),
        (w_at_limit, Good),
        (td_255, Good),
        // Scheme.
        (s("SPIFFE://example.org/w"), Bad(IdReason::Scheme)),
        (s("Wimse://example.org/w"), Bad(IdReason::Scheme)),
        (s("https://example.org/w"), Bad(IdReason::Scheme)),
        (s("spiffe:/example.org/w"), Bad(IdReason::Scheme)),
        (s("spiffe:example.org/w"), Bad(IdReason::Scheme)),
        (s(" spiffe://example.org/w"), Bad(IdReason::Scheme)),
        (s(""), Bad(IdReason::Empty)),
        // Trust domain.
        (
            s("spiffe://Example.org/w"),
            Bad(IdReason::TrustDomainUppercase),
        ),
        (
            s("wimse://EXAMPLE.COM/w"),
            Bad(IdReason::TrustDomainUppercase),
        ),
        (s("spiffe://example.org:8443/w"), Bad(IdReason::Port)),
        (s("wimse://example.com:443/w"), Bad(IdReason::Port)),
        (s("spiffe://user@example.org/w"), Bad(IdReason::Userinfo)),
        (s("wimse://user:pw@example.com/w"), Bad(IdReason::Userinfo)),
        (s("spiffe://[::1]/w"), Bad(IdReason::Ipv6)),
        (s("wimse://[2001:db8::1]/w"), Bad(IdReason::Ipv6)),
        (s("wimse://192.0.2.1/w"), Bad(IdReason::IpAddress)),
        (s("spiffe:///w"), Bad(IdReason::TrustDomainEmpty)),
        (s("wimse:///w"), Bad(IdReason::TrustDomainEmpty)),
        (
            s("spiffe://ex%61mple.org/w"),
            Bad(IdReason::PercentEncoding),
        ),
        (s("spiffe://exa mple.org/w"), Bad(IdReason::TrustDomainChar)),
        (
            s("wimse://example.com./w"),
            Bad(IdReason::TrustDomainTrailingDot),
        ),
        (s("wimse://exa+mple.com/w"), Bad(IdReason::TrustDomainChar)),
        (long_td, Bad(IdReason::TrustDomainTooLong)),
        // Query and fragment.
        (s("spiffe://example.org/w?x=1"), Bad(IdReason::Query)),
        (s("wimse://example.com/w?"), Bad(IdReason::Query)),
        (s("spiffe://example.org/w#frag"), Bad(IdReason::Fragment)),
        (s("wimse://example.com/w#"), Bad(IdReason::Fragment)),
        (s("spiffe://example.org?x"), Bad(IdReason::Query)),
        // Percent-encoding in the path (java-spiffe PR #67; identifier draft's own example).
        (s("spiffe://bar/%61dmin"), Bad(IdReason::PercentEncoding)),
        (
            s("wimse://trust.example/service/%70ayment"),
            Bad(IdReason::PercentEncoding),
        ),
        (
            s("wimse://trust.example/service/%2F"),
            Bad(IdReason::PercentEncoding),
        ),
        // Segments.
        (s("spiffe://example.org"), Bad(IdReason::PathEmpty)),
        (s("wimse://example.com"), Bad(IdReason::PathEmpty)),
        (s("spiffe://example.org/"), Bad(IdReason::PathEmpty)),
        (s("spiffe://example.org/w/"), Bad(IdReason::TrailingSlash)),
        (
            s("wimse://example.com/service/payment/"),
            Bad(IdReason::TrailingSlash),
        ),
        (s("spiffe://example.org//w"), Bad(IdReason::EmptySegment)),
        (s("wimse://example.com/a//b"), Bad(IdReason::EmptySegment)),
        (s("spiffe://example.org/./w"), Bad(IdReason::DotSegment)),
        (
            s("spiffe://example.org/a/../admin"),
            Bad(IdReason::DotSegment),
        ),
        (s("wimse://example.com/a/."), Bad(IdReason::DotSegment)),
        (s("wimse://example.com/.."), Bad(IdReason::DotSegment)),
        // Path characters.
        (s("spiffe://example.org/a~b"), Bad(IdReason::PathChar)),
        (s("spiffe://example.org/a b"), Bad(IdReason::PathChar)),
        (s("wimse://example.com/a:b"), Bad(IdReason::PathChar)),
        (s("wimse://example.com/a@b"), Bad(IdReason::PathChar)),
        (s("wimse://example.com/caf\u{e9}"), Bad(IdReason::NotAscii)),
        // Length.
        (over_limit, Bad(IdReason::TooLong)),
        (w_over_limit, Bad(IdReason::TooLong)),
    ]
}

#[test]
fn identifier_table_each_case_gets_its_verdict() {
    let cases = table();
    assert!(cases.len() >= 40, "table has {} cases", cases.len());
    for (input, verdict) in &cases {
        match (WorkloadId::parse(input), verdict) {
            (Ok(id), Good) => {
                // Canonical form is the input itself, byte for byte.
                assert_eq!(id.as_str(), input);
                assert_eq!(WorkloadId::parse(id.as_str()).unwrap(), id);
            }
            (Err(e), Bad(reason)) => {
                assert_eq!(e.code(), "identifier_invalid", "{input:?}");
                assert_eq!(
                    e,
                    locus_wimse::WimseError::IdentifierInvalid { reason: *reason },
                    "{input:?}"
                );
            }
            (Ok(_), Bad(reason)) => panic!("{input:?} accepted, expected refusal {reason:?}"),
            (Err(e), Good) => panic!("{input:?} refused ({e}), expected acceptance"),
        }
    }
}

#[test]
fn length_limit_is_exactly_2048_bytes() {
    let prefix = "wimse://example.org/";
    let ok = format!("{prefix}{}", "x".repeat(2048 - prefix.len()));
    assert_eq!(ok.len(), 2048);
    assert!(WorkloadId::parse(&ok).is_ok());
    let bad = format!("{ok}y");
    assert_eq!(bad.len(), 2049);
    assert_eq!(
        WorkloadId::parse(&bad).unwrap_err().code(),
        "identifier_invalid"
    );
}

#[test]
fn comparison_is_byte_for_byte_across_schemes_and_case() {
    let a = WorkloadId::parse("spiffe://example.org/w").unwrap();
    let b = WorkloadId::parse("wimse://example.org/w").unwrap();
    let c = WorkloadId::parse("spiffe://example.org/W").unwrap();
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_eq!(
        a.trust_domain(),
        b.trust_domain(),
        "schemes share trust domains"
    );
    assert_eq!(a.scheme(), Scheme::Spiffe);
    assert_eq!(b.scheme(), Scheme::Wimse);
    assert_eq!(b.origin(), "wimse://example.org");
}
