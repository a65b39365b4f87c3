//! Workload Identifiers (draft-ietf-wimse-identifier-03, SPIFFE-ID): `spiffe://<trust-domain>/<path>` and
//! `wimse://<trust-domain>/<path>`.
//!
//! Parsing is strict and never repairs input: no case folding, no percent-decoding, no dot-segment removal. A string
//! is accepted only if it already is in canonical form, so the accepted string *is* the canonical form and equality is
//! byte-for-byte. Rules (draft-ietf-wimse-identifier, SPIFFE ID):
//! - whole URI ≤ 2048 bytes, ASCII; scheme exactly `spiffe://` or `wimse://` (lower case);
//! - trust domain non-empty, `[a-z0-9._-]` only (so no userinfo `@`, port `:`, IPv6 `[`, `%`, upper case); `spiffe`:
//!   ≤ 255 bytes; `wimse`: must not end with `.` and must not be an IPv4 literal (IP addresses MUST NOT be used);
//! - no query (`?`) or fragment (`#`);
//! - path with ≥ 1 segment (a *workload* identifier names a workload; the bare trust domain is a [`TrustDomain`]),
//!   no empty segment (`//`, trailing `/`), no `.` / `..` segment, no `%`; segment characters `[A-Za-z0-9._-]`
//!   (`spiffe`) or RFC 3986 unreserved `[A-Za-z0-9._~-]` (`wimse`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::WimseError;

/// Longest identifier accepted, in bytes (identifier draft §4.1, SPIFFE-ID §2.4).
pub const MAX_ID_LEN: usize = 2048;
/// Longest SPIFFE trust domain, in bytes.
pub const MAX_SPIFFE_TRUST_DOMAIN_LEN: usize = 255;

/// Why an identifier was refused. Every variant maps to the code `identifier_invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdReason {
    /// Empty input.
    Empty,
    /// Over [`MAX_ID_LEN`] bytes.
    TooLong,
    /// A non-ASCII byte.
    NotAscii,
    /// Scheme other than lower-case `spiffe://` or `wimse://`.
    Scheme,
    /// Contains `?`.
    Query,
    /// Contains `#`.
    Fragment,
    /// Contains `%`.
    PercentEncoding,
    /// Empty trust domain.
    TrustDomainEmpty,
    /// Userinfo (`@`) in the authority.
    Userinfo,
    /// A port (`:`) in the authority.
    Port,
    /// An IPv6 literal (`[`…`]`).
    Ipv6,
    /// An IPv4 literal in a `wimse` trust domain.
    IpAddress,
    /// Upper-case letters in the trust domain.
    TrustDomainUppercase,
    /// Another character outside `[a-z0-9._-]` in the trust domain.
    TrustDomainChar,
    /// SPIFFE trust domain over 255 bytes.
    TrustDomainTooLong,
    /// `wimse` trust domain ending with `.`.
    TrustDomainTrailingDot,
    /// No path: not a workload identifier.
    PathEmpty,
    /// Empty segment (`//`).
    EmptySegment,
    /// Trailing `/`.
    TrailingSlash,
    /// `.` or `..` segment.
    DotSegment,
    /// A character not allowed in a path segment.
    PathChar,
}

impl fmt::Display for IdReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Empty => "empty",
            Self::TooLong => "longer than 2048 bytes",
            Self::NotAscii => "not ASCII",
            Self::Scheme => "scheme must be lower-case spiffe:// or wimse://",
            Self::Query => "query not allowed",
            Self::Fragment => "fragment not allowed",
            Self::PercentEncoding => "percent-encoding not allowed",
            Self::TrustDomainEmpty => "empty trust domain",
            Self::Userinfo => "userinfo not allowed",
            Self::Port => "port not allowed",
            Self::Ipv6 => "IPv6 literal not allowed",
            Self::IpAddress => "IP address not allowed as trust domain",
            Self::TrustDomainUppercase => "trust domain must be lower case",
            Self::TrustDomainChar => "trust domain character outside [a-z0-9._-]",
            Self::TrustDomainTooLong => "trust domain longer than 255 bytes",
            Self::TrustDomainTrailingDot => "trust domain ends with '.'",
            Self::PathEmpty => "no path: not a workload identifier",
            Self::EmptySegment => "empty path segment",
            Self::TrailingSlash => "trailing '/'",
            Self::DotSegment => "'.' or '..' path segment",
            Self::PathChar => "path character not allowed",
        };
        f.write_str(s)
    }
}

fn invalid(reason: IdReason) -> WimseError {
    WimseError::IdentifierInvalid { reason }
}

/// The identifier scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// `spiffe://` (SPIFFE-ID).
    Spiffe,
    /// `wimse://` (draft-ietf-wimse-identifier).
    Wimse,
}

impl Scheme {
    /// `"spiffe"` or `"wimse"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spiffe => "spiffe",
            Self::Wimse => "wimse",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Spiffe => "spiffe://",
            Self::Wimse => "wimse://",
        }
    }
}

/// A validated trust domain (the authority of a Workload Identifier). Schemes share one namespace of trust domains:
/// `spiffe://example.com/x` and `wimse://example.com/x` both belong to trust domain `example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Parse a bare trust domain (`example.com`) under the stricter of both schemes' rules
    /// (lower-case `[a-z0-9._-]`, ≤ 255 bytes, no trailing dot, no IP literal).
    pub fn parse(s: &str) -> Result<Self, WimseError> {
        check_trust_domain(s, Scheme::Spiffe)?;
        check_trust_domain(s, Scheme::Wimse)?;
        Ok(Self(s.to_owned()))
    }

    /// The trust domain string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = WimseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A validated Workload Identifier in canonical form. Equality, ordering and hashing are byte-for-byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadId {
    canonical: String,
    scheme: Scheme,
    /// Byte offset of the `/` starting the path.
    path_start: usize,
}

impl WorkloadId {
    /// Parse strictly; accept only canonical identifiers (see the module documentation for the rules).
    pub fn parse(s: &str) -> Result<Self, WimseError> {
        if s.is_empty() {
            return Err(invalid(IdReason::Empty));
        }
        if s.len() > MAX_ID_LEN {
            return Err(invalid(IdReason::TooLong));
        }
        if !s.is_ascii() {
            return Err(invalid(IdReason::NotAscii));
        }
        let (scheme, rest) = if let Some(rest) = s.strip_prefix(Scheme::Spiffe.prefix()) {
            (Scheme::Spiffe, rest)
        } else if let Some(rest) = s.strip_prefix(Scheme::Wimse.prefix()) {
            (Scheme::Wimse, rest)
        } else {
            return Err(invalid(IdReason::Scheme));
        };
        // Query and fragment first: they would otherwise surface as "character not allowed".
        if rest.contains('#') {
            return Err(invalid(IdReason::Fragment));
        }
        if rest.contains('?') {
            return Err(invalid(IdReason::Query));
        }
        if rest.contains('%') {
            return Err(invalid(IdReason::PercentEncoding));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        check_trust_domain(authority, scheme)?;
        check_path(path, scheme)?;
        Ok(Self {
            canonical: s.to_owned(),
            scheme,
            path_start: scheme.prefix().len() + authority.len(),
        })
    }

    /// The canonical string (identical to the accepted input).
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The trust domain string.
    pub fn trust_domain_str(&self) -> &str {
        &self.canonical[self.scheme.prefix().len()..self.path_start]
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> TrustDomain {
        TrustDomain(self.trust_domain_str().to_owned())
    }

    /// The path, starting with `/`.
    pub fn path(&self) -> &str {
        &self.canonical[self.path_start..]
    }

    /// The "Workload Identifier Origin": scheme and trust domain, e.g. `spiffe://prod.trust.domain`.
    pub fn origin(&self) -> &str {
        &self.canonical[..self.path_start]
    }

    /// True for a `spiffe://` identifier (a SPIFFE ID; a WIT with such a subject can be a WIT-SVID).
    pub fn is_spiffe(&self) -> bool {
        self.scheme == Scheme::Spiffe
    }
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl FromStr for WorkloadId {
    type Err = WimseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for WorkloadId {
    fn as_ref(&self) -> &str {
        &self.canonical
    }
}

impl Serialize for WorkloadId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.canonical)
    }
}

impl<'de> Deserialize<'de> for WorkloadId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TrustDomain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TrustDomain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn check_trust_domain(td: &str, scheme: Scheme) -> Result<(), WimseError> {
    if td.is_empty() {
        return Err(invalid(IdReason::TrustDomainEmpty));
    }
    if td.contains('%') {
        return Err(invalid(IdReason::PercentEncoding));
    }
    if td.contains('@') {
        return Err(invalid(IdReason::Userinfo));
    }
    if td.starts_with('[') || td.contains(']') {
        return Err(invalid(IdReason::Ipv6));
    }
    if td.contains(':') {
        return Err(invalid(IdReason::Port));
    }
    if td.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid(IdReason::TrustDomainUppercase));
    }
    if !td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(IdReason::TrustDomainChar));
    }
    match scheme {
        Scheme::Spiffe => {
            if td.len() > MAX_SPIFFE_TRUST_DOMAIN_LEN {
                return Err(invalid(IdReason::TrustDomainTooLong));
            }
        }
        Scheme::Wimse => {
            if td.ends_with('.') {
                return Err(invalid(IdReason::TrustDomainTrailingDot));
            }
            if is_ipv4_literal(td) {
                return Err(invalid(IdReason::IpAddress));
            }
        }
    }
    Ok(())
}

/// Dotted-quad IPv4 as RFC 3986 `IPv4address` (the only IP form the character set still admits).
fn is_ipv4_literal(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|v| v <= 255)
        })
}

fn check_path(path: &str, scheme: Scheme) -> Result<(), WimseError> {
    if path.is_empty() || path == "/" {
        return Err(invalid(IdReason::PathEmpty));
    }
    // `path` starts with '/': segments follow.
    let body = &path[1..];
    if body.ends_with('/') {
        return Err(invalid(IdReason::TrailingSlash));
    }
    for seg in body.split('/') {
        if seg.is_empty() {
            return Err(invalid(IdReason::EmptySegment));
        }
        if seg == "." || seg == ".." {
            return Err(invalid(IdReason::DotSegment));
        }
        let ok = seg.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b'-')
                || (scheme == Scheme::Wimse && b == b'~')
        });
        if !ok {
            return Err(invalid(IdReason::PathChar));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_split_the_canonical_string() {
        let id = WorkloadId::parse("spiffe://prod.trust.domain/ns/prod-01/sa/foo-service").unwrap();
        assert_eq!(id.scheme(), Scheme::Spiffe);
        assert_eq!(id.trust_domain_str(), "prod.trust.domain");
        assert_eq!(id.trust_domain().as_str(), "prod.trust.domain");
        assert_eq!(id.path(), "/ns/prod-01/sa/foo-service");
        assert_eq!(id.origin(), "spiffe://prod.trust.domain");
        assert_eq!(
            id.as_str(),
            "spiffe://prod.trust.domain/ns/prod-01/sa/foo-service"
        );
    }

    #[test]
    fn percent_encoded_alias_is_not_equal_and_is_refused() {
        let a = WorkloadId::parse("wimse://trust.example/service/payment").unwrap();
        assert!(WorkloadId::parse("wimse://trust.example/service/%70ayment").is_err());
        let b = WorkloadId::parse("wimse://trust.example/service/Payment").unwrap();
        assert_ne!(a, b, "paths are case-sensitive, compared byte for byte");
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: WorkloadId = serde_json::from_str("\"wimse://example.com/a\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"wimse://example.com/a\""
        );
        assert!(serde_json::from_str::<WorkloadId>("\"wimse://Example.com/a\"").is_err());
    }

    #[test]
    fn bare_trust_domain_parses_strictly() {
        assert!(TrustDomain::parse("example.com").is_ok());
        assert!(TrustDomain::parse("Example.com").is_err());
        assert!(TrustDomain::parse("example.com.").is_err());
        assert!(TrustDomain::parse("10.0.0.1").is_err());
        assert!(TrustDomain::parse("").is_err());
    }
}
