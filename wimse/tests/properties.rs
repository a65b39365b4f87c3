//! Property tests: parsers of untrusted input never panic, and accepted identifiers keep their invariants.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use locus_wimse::jws::CompactJws;
use locus_wimse::{CacheControl, Ear, Jwk, Jwks, JwksCache, JwksCachePolicy, WorkloadId};
use proptest::prelude::*;

proptest! {
    #[test]
    fn identifier_parse_never_panics(s in "\\PC{0,80}") {
        let _ = WorkloadId::parse(&s);
    }

    #[test]
    fn accepted_identifiers_keep_every_invariant(
        scheme in prop::sample::select(vec!["spiffe://", "wimse://"]),
        rest in "[a-zA-Z0-9.%/?#@:\\[\\]~_ -]{0,40}",
    ) {
        let s = format!("{scheme}{rest}");
        if let Ok(id) = WorkloadId::parse(&s) {
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert!(!s.contains(['%', '?', '#', '@', '[', ']', ' ']));
            prop_assert_eq!(s.matches(':').count(), 1);
            prop_assert!(!id.path().ends_with('/'));
            prop_assert!(!id.path().contains("//"));
            prop_assert!(!id.path().split('/').any(|seg| seg == "." || seg == ".."));
            prop_assert!(!id.trust_domain_str().is_empty());
            prop_assert!(!id.trust_domain_str().bytes().any(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn identifier_grammar_inputs_round_trip(
        scheme in prop::sample::select(vec!["spiffe://", "wimse://"]),
        td in "[a-z0-9][a-z0-9.-]{0,20}[a-z]",
        segs in prop::collection::vec("[A-Za-z0-9_-][A-Za-z0-9._-]{0,10}", 1..5),
    ) {
        let s = format!("{scheme}{td}/{}", segs.join("/"));
        let id = WorkloadId::parse(&s).unwrap();
        prop_assert_eq!(id.trust_domain_str(), td.as_str());
        prop_assert_eq!(WorkloadId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn compact_jws_parse_never_panics(s in "[A-Za-z0-9_.=-]{0,200}") {
        let _ = CompactJws::parse(&s);
    }

    #[test]
    fn cache_control_parse_never_panics_and_freshness_stays_in_the_policy_bounds(
        s in "[ -~\t]{0,80}", now in 0u64..u64::MAX / 2
    ) {
        let _ = CacheControl::parse(&s);
        let policy = JwksCachePolicy::default();
        let mut c = JwksCache::new(policy);
        c.on_fetched(now, br#"{"keys":[]}"#, Some(&s)).unwrap();
        prop_assert!(c.is_fresh(now + policy.min_max_age - 1));
        prop_assert!(!c.is_fresh(now + policy.max_max_age));
    }

    #[test]
    fn cache_control_directive_lists_never_panic(
        s in "(max-age|MAX-AGE|no-store|no-cache|public|s-maxage)(=[0-9\"]{0,25})?( ?, ?(max-age|no-store|private)(=[0-9\"]{0,25})?){0,3}"
    ) {
        let cc = CacheControl::parse(&s);
        if cc.no_store || cc.no_cache {
            prop_assert_eq!(cc.freshness(), Some(0));
        }
    }

    #[test]
    fn jwk_parse_never_panics(s in "\\PC{0,120}") {
        let _ = Jwk::from_json(&s);
        let _ = Jwks::from_json(&s);
    }

    #[test]
    fn ear_cwt_verify_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Ear::verify_cwt(&bytes, &Jwks::default(), NOW);
    }

    #[test]
    fn relying_party_refuses_garbage_without_panicking(
        wit in "[A-Za-z0-9_.-]{0,120}", wpt in "[A-Za-z0-9_.-]{0,120}", target in "\\PC{0,40}"
    ) {
        let r = rp().verify_request(headers(&wit, &wpt), &target, NOW);
        prop_assert!(r.is_err());
    }

    #[test]
    fn any_single_byte_change_to_a_good_wit_is_refused(pos in 0usize..10_000, replacement in "[A-Za-z0-9_-]") {
        let wit = good_wit();
        let pos = pos % wit.len();
        let mut bytes = wit.clone().into_bytes();
        let new = replacement.as_bytes()[0];
        prop_assume!(bytes[pos] != b'.' && bytes[pos] != new);
        bytes[pos] = new;
        let bad = String::from_utf8(bytes).unwrap();
        // The WPT is recomputed for the altered WIT, so only the WIT's own checks can refuse it.
        let r = rp().verify_request(headers(&bad, &good_wpt(&bad)), TARGET, NOW);
        prop_assert!(r.is_err(), "altered WIT accepted at {}", pos);
    }
}
