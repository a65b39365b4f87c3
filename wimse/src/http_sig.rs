//! HTTP Message Signatures proof of possession: the WIMSE profile of RFC 9421 (draft-ietf-wimse-http-signature-07,
//! the editor's copy; -06 is the last published revision, and its examples are the ones used as test vectors here).
//!
//! The workload proves it holds its WIT's `cnf` key by signing the request with it, as the alternative to a WPT:
//!
//! - the signature is labelled `wimse`; its parameters are `created`, `expires`, `nonce`,
//!   `tag="wimse-workload-to-workload"` and, on a request, `wimse-aud` (the target URI without query and fragment)
//!   and optionally `wimse-sign-response`; on a response `wimse-req-nonce` (the request's `nonce`). `alg` and `keyid`
//!   are never used: the algorithm is the WIT's `cnf.jwk.alg` and the key its `cnf.jwk`;
//! - a request covers `@method`, `@request-target`, `workload-identity-token` and, when present, `content-type`,
//!   `content-digest`, `authorization` and `txn-token`; a request with a body carries `Content-Digest`, checked
//!   against the body;
//! - a response covers `@status`, `"@method";req`, `"@request-target";req`, its own `workload-identity-token` and,
//!   when present, `content-type` and `content-digest`.
//!
//! The signature base is built here from the message's components (RFC 9421 §2.5), never taken from a caller, and the
//! `@signature-params` line re-serializes the received `Signature-Input` member (RFC 8941), preserving its order.
//!
//! [`verify_request`] applies the receiver's checks in order: the WIT in the request is the verified one; one
//! `wimse` signature; parameters (no `alg` / `keyid`, the `tag`, `created` / `expires` / `nonce` / `wimse-aud`
//! present); times (`created` not ahead of now, not older than the maximum age, `expires` not passed, lifetime at most
//! the maximum) — `signature_stale`; `wimse-aud` one of the caller's audiences — `aud_mismatch`; the required
//! components covered and present — `component_missing`; the body against `Content-Digest` —
//! `content_digest_mismatch`; the signature under `cnf.jwk` — `signature_invalid`; and last the `nonce` in the
//! replay cache, per sender (WIT `sub`), until `expires` plus skew — `replayed`.
//!
//! No I/O and no clock: `now` is a parameter.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha512};

use crate::error::WimseError;
use crate::jwk::{Alg, PublicKey};
use crate::jws::JwsSigner;
use crate::replay::ReplayCache;
use crate::wit::{VerifiedWit, MAX_CLOCK_SKEW};

/// The signature label of the profile.
pub const LABEL: &str = "wimse";
/// The `tag` parameter of the profile.
pub const TAG: &str = "wimse-workload-to-workload";
/// `Signature-Input`.
pub const SIGNATURE_INPUT_HEADER: &str = "Signature-Input";
/// `Signature`.
pub const SIGNATURE_HEADER: &str = "Signature";
/// `Content-Digest` (RFC 9530).
pub const CONTENT_DIGEST_HEADER: &str = "Content-Digest";
/// Default longest signature lifetime (`expires` − `created`) and age (now − `created`), seconds.
pub const DEFAULT_MAX_LIFETIME: u64 = 300;
/// Header fields a request signature must cover when the request carries them.
pub const REQUEST_FIELDS_COVERED_WHEN_PRESENT: &[&str] = &[
    "content-type",
    "content-digest",
    "authorization",
    "txn-token",
    "workload-identity-token",
];
/// Header fields a response signature must cover when the response carries them.
pub const RESPONSE_FIELDS_COVERED_WHEN_PRESENT: &[&str] =
    &["workload-identity-token", "content-type", "content-digest"];
const WIT_FIELD: &str = "workload-identity-token";

fn params_invalid(detail: impl Into<String>) -> WimseError {
    WimseError::SignatureParamsInvalid {
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// RFC 8941 structured fields: the parts `Signature-Input` and `Signature` use.

/// A bare item (RFC 8941 §3.3; decimals are not used by RFC 9421 and are refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// sf-integer.
    Integer(i64),
    /// sf-string.
    String(String),
    /// sf-token.
    Token(String),
    /// sf-binary.
    Bytes(Vec<u8>),
    /// sf-boolean.
    Boolean(bool),
}

/// Parameters, in order.
pub type Params = Vec<(String, Item)>;

/// A dictionary member's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// An item with parameters.
    Item(Item, Params),
    /// An inner list of items with parameters, and the list's parameters.
    InnerList(Vec<(Item, Params)>, Params),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn key(&mut self) -> Result<String, WimseError> {
        let start = self.i;
        match self.peek() {
            Some(b) if b.is_ascii_lowercase() || b == b'*' => self.i += 1,
            _ => return Err(params_invalid("a key must start with a-z or *")),
        }
        while let Some(b) = self.peek() {
            if b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b) {
                self.i += 1;
            } else {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn bare_item(&mut self) -> Result<Item, WimseError> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                self.eat(b'-');
                let digits = self.i;
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.i += 1;
                }
                let n = self.i - digits;
                if n == 0 || n > 15 {
                    return Err(params_invalid("an integer needs 1 to 15 digits"));
                }
                if self.peek() == Some(b'.') {
                    return Err(params_invalid("decimals are not used"));
                }
                let text = std::str::from_utf8(&self.s[start..self.i])
                    .map_err(|_| params_invalid("integer"))?;
                text.parse()
                    .map(Item::Integer)
                    .map_err(|_| params_invalid("integer"))
            }
            Some(b'"') => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => return Err(params_invalid("unterminated string")),
                        Some(b'"') => {
                            self.i += 1;
                            return Ok(Item::String(out));
                        }
                        Some(b'\\') => {
                            self.i += 1;
                            match self.peek() {
                                Some(c @ (b'"' | b'\\')) => {
                                    out.push(char::from(c));
                                    self.i += 1;
                                }
                                _ => return Err(params_invalid("bad escape in a string")),
                            }
                        }
                        Some(c @ 0x20..=0x7e) => {
                            out.push(char::from(c));
                            self.i += 1;
                        }
                        Some(_) => return Err(params_invalid("a string holds visible ASCII only")),
                    }
                }
            }
            Some(b':') => {
                self.i += 1;
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                {
                    self.i += 1;
                }
                let text = &self.s[start..self.i];
                if !self.eat(b':') {
                    return Err(params_invalid("unterminated byte sequence"));
                }
                STANDARD
                    .decode(text)
                    .map(Item::Bytes)
                    .map_err(|_| params_invalid("a byte sequence is not base64"))
            }
            Some(b'?') => {
                self.i += 1;
                let v = match self.peek() {
                    Some(b'0') => false,
                    Some(b'1') => true,
                    _ => return Err(params_invalid("a boolean is ?0 or ?1")),
                };
                self.i += 1;
                Ok(Item::Boolean(v))
            }
            Some(b) if b.is_ascii_alphabetic() || b == b'*' => {
                let start = self.i;
                self.i += 1;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
                {
                    self.i += 1;
                }
                Ok(Item::Token(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            _ => Err(params_invalid("not a structured-field item")),
        }
    }

    fn params(&mut self) -> Result<Params, WimseError> {
        let mut out: Params = Vec::new();
        while self.eat(b';') {
            self.sp();
            let k = self.key()?;
            let v = if self.eat(b'=') {
                self.bare_item()?
            } else {
                Item::Boolean(true)
            };
            // A repeated key keeps its last value in its first position (RFC 8941 §4.2.3.2).
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        Ok(out)
    }

    fn inner_list(&mut self) -> Result<Member, WimseError> {
        let mut items = Vec::new();
        loop {
            self.sp();
            if self.eat(b')') {
                let params = self.params()?;
                return Ok(Member::InnerList(items, params));
            }
            let item = self.bare_item()?;
            let params = self.params()?;
            items.push((item, params));
            match self.peek() {
                Some(b' ' | b')') => {}
                _ => return Err(params_invalid("inner list items are separated by spaces")),
            }
        }
    }

    fn dictionary(&mut self) -> Result<Vec<(String, Member)>, WimseError> {
        let mut out: Vec<(String, Member)> = Vec::new();
        self.sp();
        if self.i == self.s.len() {
            return Ok(out);
        }
        loop {
            let k = self.key()?;
            let m = if self.eat(b'=') {
                if self.eat(b'(') {
                    self.inner_list()?
                } else {
                    let item = self.bare_item()?;
                    Member::Item(item, self.params()?)
                }
            } else {
                Member::Item(Item::Boolean(true), self.params()?)
            };
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = m,
                None => out.push((k, m)),
            }
            self.ows();
            if self.i == self.s.len() {
                return Ok(out);
            }
            if !self.eat(b',') {
                return Err(params_invalid("dictionary members are separated by commas"));
            }
            self.ows();
            if self.i == self.s.len() {
                return Err(params_invalid("trailing comma"));
            }
        }
    }
}

/// Parse an RFC 8941 dictionary (the value of `Signature-Input` or `Signature`).
pub fn parse_dictionary(value: &str) -> Result<Vec<(String, Member)>, WimseError> {
    Parser {
        s: value.as_bytes(),
        i: 0,
    }
    .dictionary()
}

fn serialize_item(item: &Item, out: &mut String) {
    match item {
        Item::Integer(n) => out.push_str(&n.to_string()),
        Item::String(s) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        Item::Token(t) => out.push_str(t),
        Item::Bytes(b) => {
            out.push(':');
            out.push_str(&STANDARD.encode(b));
            out.push(':');
        }
        Item::Boolean(true) => out.push_str("?1"),
        Item::Boolean(false) => out.push_str("?0"),
    }
}

fn serialize_params(params: &Params, out: &mut String) {
    for (k, v) in params {
        out.push(';');
        out.push_str(k);
        if *v != Item::Boolean(true) {
            out.push('=');
            serialize_item(v, out);
        }
    }
}

/// Serialize an inner list with its parameters (RFC 8941 §4.1.1.1): the `@signature-params` value.
pub fn serialize_inner_list(items: &[(Item, Params)], params: &Params) -> String {
    let mut out = String::from("(");
    for (i, (item, p)) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        serialize_item(item, &mut out);
        serialize_params(p, &mut out);
    }
    out.push(')');
    serialize_params(params, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Messages and components.

/// A covered component: a derived component (`@method`, …) or a header field name, lower case; `req` takes it from
/// the request a response answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The component name.
    pub name: String,
    /// The `req` parameter.
    pub req: bool,
}

impl Component {
    /// A component of the message itself.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_ascii_lowercase(),
            req: false,
        }
    }

    /// A component of the request, in a response's signature.
    pub fn of_request(name: &str) -> Self {
        Self {
            name: name.to_ascii_lowercase(),
            req: true,
        }
    }

    fn to_item(&self) -> (Item, Params) {
        let params = if self.req {
            vec![("req".to_string(), Item::Boolean(true))]
        } else {
            Vec::new()
        };
        (Item::String(self.name.clone()), params)
    }
}

/// A request as its signature sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target in origin form: path and query, e.g. `/orders?page=2`.
    pub target: String,
    /// Header fields as (name, value), names in any case; a repeated name is several field lines.
    pub headers: Vec<(String, String)>,
}

impl HttpRequest {
    /// A request without header fields.
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_string(),
            target: target.to_string(),
            headers: Vec::new(),
        }
    }

    /// Add a header field line.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A response as its signature sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header fields as (name, value).
    pub headers: Vec<(String, String)>,
}

impl HttpResponse {
    /// A response without header fields.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
        }
    }

    /// Add a header field line.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// The message a signature is over.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// A request.
    Request(&'a HttpRequest),
    /// A response, with the request it answers (for `;req` components).
    Response(&'a HttpResponse, &'a HttpRequest),
}

/// The value of header field `name` (lower case) in `headers`: every field line's value trimmed of surrounding
/// spaces and tabs, joined by `, ` (RFC 9421 §2.1). `None` when absent. A value with a control character other than
/// tab is refused: it could forge lines of the signature base.
fn field_value(headers: &[(String, String)], name: &str) -> Result<Option<String>, WimseError> {
    let mut values = Vec::new();
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(params_invalid(format!(
                    "header {name} holds a control character"
                )));
            }
            values.push(v.trim_matches([' ', '\t']).to_string());
        }
    }
    Ok((!values.is_empty()).then(|| values.join(", ")))
}

fn present(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

fn component_value(msg: Message<'_>, c: &Component) -> Result<String, WimseError> {
    let missing = |detail| WimseError::ComponentMissing {
        name: c.name.clone(),
        detail,
    };
    let (request, response) = match msg {
        Message::Request(r) => {
            if c.req {
                return Err(params_invalid(format!(
                    "{:?};req in a request signature",
                    c.name
                )));
            }
            (r, None)
        }
        Message::Response(resp, req) => (req, (!c.req).then_some(resp)),
    };
    match (c.name.as_str(), response) {
        ("@method", None) => Ok(request.method.clone()),
        ("@request-target", None) => Ok(request.target.clone()),
        ("@status", Some(resp)) => Ok(format!("{:03}", resp.status)),
        (name, _) if name.starts_with('@') => Err(params_invalid(format!(
            "component {name:?} is not supported here"
        ))),
        (name, Some(resp)) => {
            field_value(&resp.headers, name)?.ok_or_else(|| missing("absent from the response"))
        }
        (name, None) => {
            field_value(&request.headers, name)?.ok_or_else(|| missing("absent from the request"))
        }
    }
}

/// The signature base (RFC 9421 §2.5) of `covered` over `msg`, ending with the `@signature-params` line whose value
/// is `signature_params` (the serialized inner list). No trailing newline.
pub fn signature_base(
    msg: Message<'_>,
    covered: &[Component],
    signature_params: &str,
) -> Result<String, WimseError> {
    let mut base = String::new();
    for (i, c) in covered.iter().enumerate() {
        if covered[..i].contains(c) {
            return Err(params_invalid(format!("{:?} covered twice", c.name)));
        }
        let (item, params) = c.to_item();
        serialize_item(&item, &mut base);
        serialize_params(&params, &mut base);
        base.push_str(": ");
        base.push_str(&component_value(msg, c)?);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(signature_params);
    Ok(base)
}

// ---------------------------------------------------------------------------------------------------------------
// Signing.

/// What a signature says besides the covered components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    /// Covered components, in order.
    pub covered: Vec<Component>,
    /// `created`.
    pub created: u64,
    /// `expires`.
    pub expires: u64,
    /// `nonce`: unique per recipient.
    pub nonce: String,
    /// `tag` ([`TAG`]).
    pub tag: String,
    /// `wimse-aud` (requests).
    pub wimse_aud: Option<String>,
    /// `wimse-sign-response` (requests).
    pub wimse_sign_response: bool,
    /// `wimse-req-nonce` (responses).
    pub wimse_req_nonce: Option<String>,
}

fn int(v: u64) -> Result<Item, WimseError> {
    i64::try_from(v)
        .map(Item::Integer)
        .map_err(|_| params_invalid("time out of range"))
}

impl SignatureParams {
    /// The profile's parameters for a request: covers `@method`, `@request-target` and every field of
    /// [`REQUEST_FIELDS_COVERED_WHEN_PRESENT`] the request has, then `extra_fields` (lower case, not repeated).
    /// `wimse_aud` is the target URI without query and fragment.
    pub fn for_request(
        req: &HttpRequest,
        extra_fields: &[&str],
        wimse_aud: &str,
        created: u64,
        expires: u64,
        nonce: &str,
    ) -> Self {
        let mut covered = vec![Component::new("@method"), Component::new("@request-target")];
        for f in REQUEST_FIELDS_COVERED_WHEN_PRESENT
            .iter()
            .chain(extra_fields)
        {
            let c = Component::new(f);
            if present(&req.headers, f) && !covered.contains(&c) {
                covered.push(c);
            }
        }
        Self {
            covered,
            created,
            expires,
            nonce: nonce.to_string(),
            tag: TAG.to_string(),
            wimse_aud: Some(wimse_aud.to_string()),
            wimse_sign_response: false,
            wimse_req_nonce: None,
        }
    }

    /// The profile's parameters for a response to a request signed with nonce `req_nonce`: covers `@status`, the
    /// fields of [`RESPONSE_FIELDS_COVERED_WHEN_PRESENT`] the response has, `"@method";req` and
    /// `"@request-target";req`.
    pub fn for_response(
        resp: &HttpResponse,
        created: u64,
        expires: u64,
        nonce: &str,
        req_nonce: &str,
    ) -> Self {
        let mut covered = vec![Component::new("@status")];
        for f in RESPONSE_FIELDS_COVERED_WHEN_PRESENT {
            if present(&resp.headers, f) {
                covered.push(Component::new(f));
            }
        }
        covered.push(Component::of_request("@method"));
        covered.push(Component::of_request("@request-target"));
        Self {
            covered,
            created,
            expires,
            nonce: nonce.to_string(),
            tag: TAG.to_string(),
            wimse_aud: None,
            wimse_sign_response: false,
            wimse_req_nonce: Some(req_nonce.to_string()),
        }
    }

    /// The parameters as structured-field parameters, in the profile's order: `created`, `expires`, `nonce`, `tag`,
    /// `wimse-aud`, `wimse-sign-response`, `wimse-req-nonce`.
    fn sf_params(&self) -> Result<Params, WimseError> {
        let mut p: Params = vec![
            ("created".into(), int(self.created)?),
            ("expires".into(), int(self.expires)?),
            ("nonce".into(), Item::String(self.nonce.clone())),
            ("tag".into(), Item::String(self.tag.clone())),
        ];
        if let Some(a) = &self.wimse_aud {
            p.push(("wimse-aud".into(), Item::String(a.clone())));
        }
        if self.wimse_sign_response {
            p.push(("wimse-sign-response".into(), Item::Boolean(true)));
        }
        if let Some(n) = &self.wimse_req_nonce {
            p.push(("wimse-req-nonce".into(), Item::String(n.clone())));
        }
        Ok(p)
    }

    /// The serialized inner list: the value of the `Signature-Input` member and of `@signature-params`.
    pub fn serialize(&self) -> Result<String, WimseError> {
        let items: Vec<(Item, Params)> = self.covered.iter().map(Component::to_item).collect();
        Ok(serialize_inner_list(&items, &self.sf_params()?))
    }
}

/// The two header fields a signature travels in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Signature-Input` value, `wimse=(…);…`.
    pub signature_input: String,
    /// `Signature` value, `wimse=:…:`.
    pub signature: String,
}

/// Algorithms usable for the profile's signatures (RFC 9421 §3.3: `ecdsa-p256-sha256`, `ecdsa-p384-sha384`,
/// `ed25519`); the RSA JOSE algorithms have no RFC 9421 counterpart with the same hash and padding.
fn check_alg(alg: Alg) -> Result<(), WimseError> {
    match alg {
        Alg::Es256 | Alg::Es384 | Alg::EdDsa => Ok(()),
        other => Err(WimseError::AlgNotAllowed {
            alg: other.name().to_string(),
        }),
    }
}

/// Sign `msg` with `signer` (the WIT's `cnf` key) under `params`, labelled [`LABEL`].
pub fn sign(
    signer: &dyn JwsSigner,
    msg: Message<'_>,
    params: &SignatureParams,
) -> Result<SignatureHeaders, WimseError> {
    check_alg(signer.alg())?;
    let input = params.serialize()?;
    let base = signature_base(msg, &params.covered, &input)?;
    let sig = signer.sign(base.as_bytes())?;
    Ok(SignatureHeaders {
        signature_input: format!("{LABEL}={input}"),
        signature: format!("{LABEL}=:{}:", STANDARD.encode(sig)),
    })
}

/// `Content-Digest` for `body` (RFC 9530): `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// Check `body` against a `Content-Digest` value: every `sha-256` / `sha-512` member present must match, and at least
/// one must be present.
pub fn check_content_digest(value: &str, body: &[u8]) -> Result<(), WimseError> {
    let mismatch = |detail: &str| WimseError::ContentDigestMismatch {
        detail: detail.to_string(),
    };
    let dict = parse_dictionary(value).map_err(|_| mismatch("Content-Digest does not parse"))?;
    let mut checked = 0;
    for (alg, member) in &dict {
        let want: Vec<u8> = match alg.as_str() {
            "sha-256" => Sha256::digest(body).to_vec(),
            "sha-512" => Sha512::digest(body).to_vec(),
            _ => continue,
        };
        match member {
            Member::Item(Item::Bytes(got), _) if *got == want => checked += 1,
            _ => return Err(mismatch(&format!("{alg} does not match the body"))),
        }
    }
    if checked == 0 {
        return Err(mismatch("no sha-256 or sha-512 digest"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Verification.

/// A signature found in a message: its label's `Signature-Input` member and `Signature` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSignature {
    /// Covered components, in order.
    pub covered: Vec<Component>,
    /// The parameters as received, in order.
    pub params: Params,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl ReceivedSignature {
    fn int(&self, name: &'static str) -> Result<Option<u64>, WimseError> {
        match self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
            None => Ok(None),
            Some(Item::Integer(n)) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| params_invalid(format!("{name} is negative"))),
            Some(_) => Err(params_invalid(format!("{name} is not an integer"))),
        }
    }

    fn string(&self, name: &'static str) -> Result<Option<&str>, WimseError> {
        match self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
            None => Ok(None),
            Some(Item::String(s)) => Ok(Some(s)),
            Some(_) => Err(params_invalid(format!("{name} is not a string"))),
        }
    }

    /// The `@signature-params` value: the received member re-serialized.
    pub fn serialized_params(&self) -> String {
        let items: Vec<(Item, Params)> = self.covered.iter().map(Component::to_item).collect();
        serialize_inner_list(&items, &self.params)
    }

    /// The profile's parameters, checked for presence and type; `alg` and `keyid` refused, `tag` must be [`TAG`].
    pub fn profile_params(&self) -> Result<SignatureParams, WimseError> {
        for forbidden in ["alg", "keyid"] {
            if self.params.iter().any(|(k, _)| k == forbidden) {
                return Err(params_invalid(format!(
                    "the {forbidden} parameter must not be used"
                )));
            }
        }
        let need = |name: &'static str| params_invalid(format!("{name} missing"));
        let tag = self.string("tag")?.ok_or_else(|| need("tag"))?;
        if tag != TAG {
            return Err(params_invalid(format!("tag {tag:?} is not {TAG:?}")));
        }
        let sign_response = match self
            .params
            .iter()
            .find(|(k, _)| k == "wimse-sign-response")
            .map(|(_, v)| v)
        {
            None => false,
            Some(Item::Boolean(b)) => *b,
            Some(_) => return Err(params_invalid("wimse-sign-response is not a boolean")),
        };
        Ok(SignatureParams {
            covered: self.covered.clone(),
            created: self.int("created")?.ok_or_else(|| need("created"))?,
            expires: self.int("expires")?.ok_or_else(|| need("expires"))?,
            nonce: self
                .string("nonce")?
                .ok_or_else(|| need("nonce"))?
                .to_string(),
            tag: tag.to_string(),
            wimse_aud: self.string("wimse-aud")?.map(str::to_string),
            wimse_sign_response: sign_response,
            wimse_req_nonce: self.string("wimse-req-nonce")?.map(str::to_string),
        })
    }
}

fn single_field(headers: &[(String, String)], name: &'static str) -> Result<String, WimseError> {
    let mut it = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    match (it.next(), it.next()) {
        (Some((_, v)), None) => Ok(v.clone()),
        (None, _) => Err(WimseError::HeaderMissing { name }),
        (Some(_), Some(_)) => Err(WimseError::HeaderRepeated {
            name: name.to_ascii_lowercase(),
        }),
    }
}

/// The `wimse` signature of a message (or its only signature when it has one under another label).
pub fn received_signature(headers: &[(String, String)]) -> Result<ReceivedSignature, WimseError> {
    let inputs = parse_dictionary(&single_field(headers, SIGNATURE_INPUT_HEADER)?)?;
    let sigs = parse_dictionary(&single_field(headers, SIGNATURE_HEADER)?)?;
    let label = if inputs.iter().any(|(k, _)| k == LABEL) {
        LABEL.to_string()
    } else if inputs.len() == 1 {
        inputs[0].0.clone()
    } else {
        return Err(params_invalid("no signature labelled wimse"));
    };
    let (items, params) = match inputs.iter().find(|(k, _)| *k == label).map(|(_, m)| m) {
        Some(Member::InnerList(items, params)) => (items, params),
        _ => {
            return Err(params_invalid(
                "the Signature-Input member is not an inner list",
            ))
        }
    };
    let mut covered = Vec::with_capacity(items.len());
    for (item, p) in items {
        let Item::String(name) = item else {
            return Err(params_invalid("a covered component is not a string"));
        };
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(params_invalid(format!(
                "component {name:?} is not lower case"
            )));
        }
        let req = match p.as_slice() {
            [] => false,
            [(k, Item::Boolean(true))] if k == "req" => true,
            _ => {
                return Err(params_invalid(format!(
                    "component {name:?} has parameters other than req"
                )))
            }
        };
        covered.push(Component {
            name: name.clone(),
            req,
        });
    }
    let signature = match sigs.iter().find(|(k, _)| *k == label).map(|(_, m)| m) {
        Some(Member::Item(Item::Bytes(b), _)) => b.clone(),
        Some(_) => {
            return Err(params_invalid(
                "the Signature member is not a byte sequence",
            ))
        }
        None => return Err(params_invalid(format!("no Signature member {label}"))),
    };
    Ok(ReceivedSignature {
        covered,
        params: params.clone(),
        signature,
    })
}

/// Verify the signature bytes of `sig` over `msg` with `key` (algorithm `alg`, the WIT's `cnf.jwk.alg`). The
/// cryptographic check alone: the profile's checks are in [`verify_request`] / [`verify_response`].
pub fn verify_signature(
    msg: Message<'_>,
    sig: &ReceivedSignature,
    alg: Alg,
    key: &PublicKey,
) -> Result<(), WimseError> {
    check_alg(alg)?;
    let base = signature_base(msg, &sig.covered, &sig.serialized_params())?;
    key.verify(alg, base.as_bytes(), &sig.signature)
}

/// Time and lifetime rules.
#[derive(Debug, Clone)]
pub struct HttpSigPolicy {
    /// Longest `expires` − `created`, and oldest `created`, seconds.
    pub max_lifetime: u64,
    /// Clock skew tolerated on `created` and `expires` (capped at [`MAX_CLOCK_SKEW`]).
    pub clock_skew: u64,
}

impl Default for HttpSigPolicy {
    fn default() -> Self {
        Self {
            max_lifetime: DEFAULT_MAX_LIFETIME,
            clock_skew: crate::wit::DEFAULT_CLOCK_SKEW,
        }
    }
}

fn check_times(p: &SignatureParams, policy: &HttpSigPolicy, now: u64) -> Result<(), WimseError> {
    let skew = policy.clock_skew.min(MAX_CLOCK_SKEW);
    let stale = |detail: String| WimseError::SignatureStale { detail };
    if p.created > now.saturating_add(skew) {
        return Err(stale(format!(
            "created {} is ahead of now {now}",
            p.created
        )));
    }
    if now.saturating_sub(p.created) > policy.max_lifetime.saturating_add(skew) {
        return Err(stale(format!(
            "created {} is more than {} s before now {now}",
            p.created, policy.max_lifetime
        )));
    }
    if now >= p.expires.saturating_add(skew) {
        return Err(stale(format!("expires {} passed (now {now})", p.expires)));
    }
    if p.expires <= p.created || p.expires - p.created > policy.max_lifetime {
        return Err(stale(format!(
            "lifetime expires − created = {} s is not within 1..={} s",
            p.expires.saturating_sub(p.created),
            policy.max_lifetime
        )));
    }
    Ok(())
}

fn require_covered(
    covered: &[Component],
    headers: &[(String, String)],
    always: &[Component],
    when_present: &[&str],
) -> Result<(), WimseError> {
    for c in always {
        if !covered.contains(c) {
            return Err(WimseError::ComponentMissing {
                name: c.name.clone(),
                detail: "not covered by the signature",
            });
        }
    }
    for f in when_present {
        if present(headers, f) && !covered.contains(&Component::new(f)) {
            return Err(WimseError::ComponentMissing {
                name: (*f).to_string(),
                detail: "present in the message but not covered",
            });
        }
    }
    Ok(())
}

fn check_body(headers: &[(String, String)], body: Option<&[u8]>) -> Result<(), WimseError> {
    match (field_value(headers, "content-digest")?, body) {
        (Some(d), Some(b)) => check_content_digest(&d, b),
        (None, Some(b)) if !b.is_empty() => Err(WimseError::ComponentMissing {
            name: "content-digest".into(),
            detail: "a message with a body must carry Content-Digest",
        }),
        _ => Ok(()),
    }
}

fn wit_of_message(headers: &[(String, String)], wit: &VerifiedWit) -> Result<(), WimseError> {
    let sent = single_field(headers, crate::wit::WIT_HEADER)?;
    if sent.trim_matches([' ', '\t']) != wit.raw() {
        return Err(WimseError::RequestInvalid {
            detail: "the Workload-Identity-Token of the message is not the WIT verified".into(),
        });
    }
    Ok(())
}

/// Verify a request's `wimse` signature for the already verified `wit` (from its `Workload-Identity-Token`).
/// `body` is the request body when there is one; `audiences` the acceptable `wimse-aud` values, from configuration
/// (the target URI on a configured authority, without query and fragment); `replay` remembers `(sub, nonce)`.
pub fn verify_request(
    wit: &VerifiedWit,
    req: &HttpRequest,
    body: Option<&[u8]>,
    audiences: &[String],
    policy: &HttpSigPolicy,
    replay: &ReplayCache,
    now: u64,
) -> Result<SignatureParams, WimseError> {
    wit_of_message(&req.headers, wit)?;
    let sig = received_signature(&req.headers)?;
    let params = sig.profile_params()?;
    check_times(&params, policy, now)?;
    let aud = params
        .wimse_aud
        .as_deref()
        .ok_or_else(|| params_invalid("wimse-aud missing"))?;
    if !audiences.iter().any(|a| a == aud) {
        return Err(WimseError::AudMismatch {
            aud: aud.to_string(),
        });
    }
    require_covered(
        &sig.covered,
        &req.headers,
        &[
            Component::new("@method"),
            Component::new("@request-target"),
            Component::new(WIT_FIELD),
        ],
        REQUEST_FIELDS_COVERED_WHEN_PRESENT,
    )?;
    check_body(&req.headers, body)?;
    let (alg, key) = crate::wit::cnf_key(wit.claims())?;
    verify_signature(Message::Request(req), &sig, alg, key)?;
    let until = params
        .expires
        .saturating_add(policy.clock_skew.min(MAX_CLOCK_SKEW));
    replay.check_and_insert(wit.id().as_str(), &params.nonce, until, now)?;
    Ok(params)
}

/// Verify a response's `wimse` signature, made with the server's verified `wit`, answering `req` which was signed
/// with nonce `req_nonce`.
pub fn verify_response(
    wit: &VerifiedWit,
    resp: &HttpResponse,
    req: &HttpRequest,
    req_nonce: &str,
    body: Option<&[u8]>,
    policy: &HttpSigPolicy,
    now: u64,
) -> Result<SignatureParams, WimseError> {
    wit_of_message(&resp.headers, wit)?;
    let sig = received_signature(&resp.headers)?;
    let params = sig.profile_params()?;
    check_times(&params, policy, now)?;
    if params.wimse_req_nonce.as_deref() != Some(req_nonce) {
        return Err(params_invalid("wimse-req-nonce is not the request's nonce"));
    }
    require_covered(
        &sig.covered,
        &resp.headers,
        &[
            Component::new("@status"),
            Component::of_request("@method"),
            Component::of_request("@request-target"),
            Component::new(WIT_FIELD),
        ],
        RESPONSE_FIELDS_COVERED_WHEN_PRESENT,
    )?;
    check_body(&resp.headers, body)?;
    let (alg, key) = crate::wit::cnf_key(wit.claims())?;
    verify_signature(Message::Response(resp, req), &sig, alg, key)?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::WorkloadId;
    use crate::jwk::Jwks;
    use crate::jws::Es256SigningKey;
    use crate::wit::{TrustStore, WitIssuer, WitPolicy, WitVerifier};

    const NOW: u64 = 1_800_000_000;
    const AUD: &str = "https://orders.example/v1/orders";

    struct Fx {
        agent: Es256SigningKey,
        wit: VerifiedWit,
    }

    fn fx() -> Fx {
        let issuer =
            WitIssuer::new(Es256SigningKey::generate().unwrap().with_kid("k"), None).unwrap();
        let agent = Es256SigningKey::generate().unwrap();
        let sub = WorkloadId::parse("spiffe://locus.example/api").unwrap();
        let (token, _) = issuer
            .issue(
                &sub,
                &agent.public_jwk(),
                NOW - 10,
                NOW + 3600,
                &Default::default(),
            )
            .unwrap();
        let trust =
            TrustStore::new().with_keys(sub.trust_domain(), Jwks::new(vec![issuer.public_jwk()]));
        let wit = WitVerifier::new(trust, WitPolicy::default())
            .verify(&token, NOW)
            .unwrap();
        Fx { agent, wit }
    }

    fn unsigned(f: &Fx, body: Option<&[u8]>) -> HttpRequest {
        let mut r = HttpRequest::new("POST", "/v1/orders?page=2")
            .header("Workload-Identity-Token", f.wit.raw())
            .header("Authorization", "Bearer tok")
            .header("Content-Type", "application/json");
        if let Some(b) = body {
            r = r.header("Content-Digest", &content_digest(b));
        }
        r
    }

    fn signed_with(
        f: &Fx,
        req: HttpRequest,
        edit: impl FnOnce(&mut SignatureParams),
    ) -> HttpRequest {
        let mut p = SignatureParams::for_request(&req, &[], AUD, NOW, NOW + 60, "n-1");
        edit(&mut p);
        let h = sign(&f.agent, Message::Request(&req), &p).unwrap();
        req.header("Signature-Input", &h.signature_input)
            .header("Signature", &h.signature)
    }

    fn verify_at(
        f: &Fx,
        req: &HttpRequest,
        body: Option<&[u8]>,
        now: u64,
    ) -> Result<SignatureParams, WimseError> {
        verify_request(
            &f.wit,
            req,
            body,
            &[AUD.to_string()],
            &HttpSigPolicy::default(),
            &ReplayCache::default(),
            now,
        )
    }

    fn code(r: Result<SignatureParams, WimseError>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn a_signed_request_verifies_and_covers_what_the_draft_requires() {
        let f = fx();
        let body = br#"{"item":"ice cream"}"#;
        let req = signed_with(&f, unsigned(&f, Some(body)), |_| {});
        let p = verify_at(&f, &req, Some(body), NOW).unwrap();
        let names: Vec<&str> = p.covered.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "@method",
                "@request-target",
                "content-type",
                "content-digest",
                "authorization",
                "workload-identity-token"
            ]
        );
        assert_eq!(p.tag, TAG);
    }

    #[test]
    fn a_signature_by_another_key_is_signature_invalid() {
        let f = fx();
        let other = Fx {
            agent: Es256SigningKey::generate().unwrap(),
            wit: f.wit.clone(),
        };
        let req = signed_with(&other, unsigned(&f, None), |_| {});
        assert_eq!(code(verify_at(&f, &req, None, NOW)), "signature_invalid");
    }

    #[test]
    fn an_altered_component_is_signature_invalid() {
        let f = fx();
        let req = signed_with(&f, unsigned(&f, None), |_| {});
        let mut m = req.clone();
        m.method = "DELETE".into();
        assert_eq!(code(verify_at(&f, &m, None, NOW)), "signature_invalid");
        let mut t = req.clone();
        t.target = "/v1/orders?page=3".into();
        assert_eq!(code(verify_at(&f, &t, None, NOW)), "signature_invalid");
        let mut h = req.clone();
        for (n, v) in &mut h.headers {
            if n == "Authorization" {
                *v = "Bearer other".into();
            }
        }
        assert_eq!(code(verify_at(&f, &h, None, NOW)), "signature_invalid");
    }

    #[test]
    fn a_stale_future_or_expired_signature_is_signature_stale() {
        let f = fx();
        let req = signed_with(&f, unsigned(&f, None), |_| {});
        // Expired (expires NOW + 60, skew 60).
        assert_eq!(
            code(verify_at(&f, &req, None, NOW + 120)),
            "signature_stale"
        );
        // Created long ago, with an expiry still ahead.
        let old = signed_with(&f, unsigned(&f, None), |p| {
            p.created = NOW - 1000;
            p.expires = NOW + 60;
        });
        assert_eq!(code(verify_at(&f, &old, None, NOW)), "signature_stale");
        // Created in the future.
        let ahead = signed_with(&f, unsigned(&f, None), |p| {
            p.created = NOW + 200;
            p.expires = NOW + 260;
        });
        assert_eq!(code(verify_at(&f, &ahead, None, NOW)), "signature_stale");
        // A lifetime above the maximum.
        let long = signed_with(&f, unsigned(&f, None), |p| p.expires = NOW + 3600);
        assert_eq!(code(verify_at(&f, &long, None, NOW)), "signature_stale");
    }

    #[test]
    fn the_same_nonce_twice_is_replayed() {
        let f = fx();
        let req = signed_with(&f, unsigned(&f, None), |_| {});
        let replay = ReplayCache::default();
        let v = |now| {
            verify_request(
                &f.wit,
                &req,
                None,
                &[AUD.to_string()],
                &HttpSigPolicy::default(),
                &replay,
                now,
            )
        };
        v(NOW).unwrap();
        assert_eq!(code(v(NOW + 1)), "replayed");
    }

    #[test]
    fn uncovered_required_components_are_component_missing() {
        let f = fx();
        for drop in [
            "authorization",
            "content-type",
            "workload-identity-token",
            "@method",
        ] {
            let req = signed_with(&f, unsigned(&f, None), |p| {
                p.covered.retain(|c| c.name != drop);
            });
            let err = verify_at(&f, &req, None, NOW).unwrap_err();
            assert_eq!(err.code(), "component_missing", "{drop}");
        }
        // A body without Content-Digest.
        let req = signed_with(&f, unsigned(&f, None), |_| {});
        assert_eq!(
            code(verify_at(&f, &req, Some(b"x"), NOW)),
            "component_missing"
        );
    }

    #[test]
    fn a_body_that_does_not_match_its_digest_is_content_digest_mismatch() {
        let f = fx();
        let req = signed_with(&f, unsigned(&f, Some(b"original")), |_| {});
        assert_eq!(
            code(verify_at(&f, &req, Some(b"tampered"), NOW)),
            "content_digest_mismatch"
        );
    }

    #[test]
    fn alg_keyid_a_foreign_tag_or_no_aud_are_signature_params_invalid_and_another_aud_is_aud_mismatch(
    ) {
        let f = fx();
        let base = unsigned(&f, None);
        let p = SignatureParams::for_request(&base, &[], AUD, NOW, NOW + 60, "n");
        let input = p.serialize().unwrap();
        for extra in [";alg=\"ecdsa-p256-sha256\"", ";keyid=\"k\""] {
            let bad_input = format!("{input}{extra}");
            let sig_base = signature_base(Message::Request(&base), &p.covered, &bad_input).unwrap();
            let sig = f.agent.sign(sig_base.as_bytes()).unwrap();
            let req = base
                .clone()
                .header("Signature-Input", &format!("wimse={bad_input}"))
                .header("Signature", &format!("wimse=:{}:", STANDARD.encode(sig)));
            assert_eq!(
                code(verify_at(&f, &req, None, NOW)),
                "signature_params_invalid",
                "{extra}"
            );
        }
        let req = signed_with(&f, base.clone(), |p| p.tag = "other".into());
        assert_eq!(
            code(verify_at(&f, &req, None, NOW)),
            "signature_params_invalid"
        );
        let req = signed_with(&f, base.clone(), |p| p.wimse_aud = None);
        assert_eq!(
            code(verify_at(&f, &req, None, NOW)),
            "signature_params_invalid"
        );
        let req = signed_with(&f, base, |p| {
            p.wimse_aud = Some("https://evil.example/v1/orders".into())
        });
        assert_eq!(code(verify_at(&f, &req, None, NOW)), "aud_mismatch");
    }

    #[test]
    fn a_header_value_with_a_line_break_cannot_forge_base_lines() {
        let f = fx();
        let req = HttpRequest::new("GET", "/")
            .header("Workload-Identity-Token", f.wit.raw())
            .header("x-note", "a\n\"@method\": POST");
        let p = SignatureParams::for_request(&req, &["x-note"], AUD, NOW, NOW + 60, "n");
        assert_eq!(
            sign(&f.agent, Message::Request(&req), &p)
                .unwrap_err()
                .code(),
            "signature_params_invalid"
        );
    }

    #[test]
    fn a_missing_signature_or_another_wit_is_refused() {
        let f = fx();
        let req = unsigned(&f, None);
        assert_eq!(code(verify_at(&f, &req, None, NOW)), "header_missing");
        let g = fx();
        let req = signed_with(&f, unsigned(&f, None), |_| {});
        assert_eq!(code(verify_at(&g, &req, None, NOW)), "request_invalid");
    }

    #[test]
    fn structured_fields_round_trip_and_malformed_ones_are_refused() {
        let v = r#"wimse=("@method" "@status";req);created=1;nonce="a\"b";flag, sig=:AAE=:"#;
        let d = parse_dictionary(v).unwrap();
        assert_eq!(d.len(), 2);
        let Member::InnerList(items, params) = &d[0].1 else {
            panic!("inner list")
        };
        assert_eq!(
            serialize_inner_list(items, params),
            r#"("@method" "@status";req);created=1;nonce="a\"b";flag"#
        );
        assert_eq!(d[1].1, Member::Item(Item::Bytes(vec![0, 1]), vec![]));
        for bad in [
            "wimse=(\"a\"",
            "wimse=:AA",
            "Wimse=1",
            "wimse=1.5",
            "wimse=1,",
            "wimse=\"\u{1}\"",
            "wimse=(\"a\"\"b\")",
        ] {
            assert_eq!(
                parse_dictionary(bad).unwrap_err().code(),
                "signature_params_invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn content_digest_accepts_sha256_and_sha512_and_needs_one() {
        let body = b"hello";
        check_content_digest(&content_digest(body), body).unwrap();
        let sha512 = format!("sha-512=:{}:", STANDARD.encode(Sha512::digest(body)));
        check_content_digest(&sha512, body).unwrap();
        assert_eq!(
            check_content_digest("md5=:AAAA:", body).unwrap_err().code(),
            "content_digest_mismatch"
        );
    }
}
