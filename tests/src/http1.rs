//! A deliberately small, blocking HTTP/1.1 client for tests: one request per connection (`Connection: close`),
//! over TCP to `127.0.0.1` or over a Unix socket (the agent's Workload API). Reads and writes time out; bodies are
//! capped; `Content-Length`, chunked and read-to-close bodies are understood.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Largest response accepted (headers and body).
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields as received (names lowercased).
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Malformed(format!("JSON body: {e}")))
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connect, read or write failed (or timed out).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The answer is not HTTP/1.1 as expected.
    #[error("malformed response: {0}")]
    Malformed(String),
}

/// A request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// Origin-form target, e.g. `/v1/wit`.
    pub path: &'a str,
    /// Extra header fields.
    pub headers: Vec<(&'a str, &'a str)>,
    /// JSON body, if any.
    pub json: Option<&'a serde_json::Value>,
}

impl<'a> Request<'a> {
    /// `GET path`.
    pub fn get(path: &'a str) -> Self {
        Self {
            method: "GET",
            path,
            headers: Vec::new(),
            json: None,
        }
    }

    /// `POST path` with a JSON body.
    pub fn post_json(path: &'a str, body: &'a serde_json::Value) -> Self {
        Self {
            method: "POST",
            path,
            headers: Vec::new(),
            json: Some(body),
        }
    }
}

/// Send `req` to `addr` over TCP.
pub fn tcp(addr: SocketAddr, req: &Request<'_>, timeout: Duration) -> Result<Response, HttpError> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    exchange(stream, &addr.to_string(), req)
}

/// Send `req` over the Unix socket at `path`.
pub fn unix(path: &Path, req: &Request<'_>, timeout: Duration) -> Result<Response, HttpError> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    exchange(stream, "localhost", req)
}

/// `http://127.0.0.1:PORT` → its socket address (loopback only).
pub fn loopback_addr(base_url: &str) -> Result<SocketAddr, HttpError> {
    let rest = base_url
        .strip_prefix("http://")
        .ok_or_else(|| HttpError::Malformed(format!("{base_url:?} is not http://")))?;
    let hostport = rest.trim_end_matches('/');
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|e| HttpError::Malformed(format!("{base_url:?}: {e}")))?;
    if !addr.ip().is_loopback() {
        return Err(HttpError::Malformed(format!(
            "{base_url:?} is not loopback"
        )));
    }
    Ok(addr)
}

fn exchange<S: Read + Write>(
    mut stream: S,
    host: &str,
    req: &Request<'_>,
) -> Result<Response, HttpError> {
    let body = match req.json {
        Some(v) => {
            serde_json::to_vec(v).map_err(|e| HttpError::Malformed(format!("request body: {e}")))?
        }
        None => Vec::new(),
    };
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n",
        req.method, req.path
    );
    for (name, value) in &req.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if req.json.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if req.json.is_some() || req.method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_RESPONSE {
            return Err(HttpError::Malformed(format!(
                "response over {MAX_RESPONSE} bytes"
            )));
        }
    }
    parse_response(&raw)
}

/// Parse a complete HTTP/1.1 response (the connection was closed after it).
pub fn parse_response(raw: &[u8]) -> Result<Response, HttpError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| HttpError::Malformed("no end of header section".into()))?;
    let head = std::str::from_utf8(&raw[..end])
        .map_err(|_| HttpError::Malformed("header section is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed(format!("status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::Malformed(format!("status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::Malformed(format!("header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let rest = &raw[end + 4..];
    let resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let body = if resp
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::Malformed(format!("content-length {len:?}")))?;
        if rest.len() < len {
            return Err(HttpError::Malformed(format!(
                "body has {} of {len} bytes",
                rest.len()
            )));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { body, ..resp })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| HttpError::Malformed("chunk size line".into()))?;
        let size_text = std::str::from_utf8(&data[..line_end])
            .map_err(|_| HttpError::Malformed("chunk size is not UTF-8".into()))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed(format!("chunk size {size_text:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(HttpError::Malformed("truncated chunk".into()));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_and_chunked_bodies_decode() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}")
            .expect("parse");
        assert_eq!(
            (r.status, r.body.as_slice(), r.header("x-a")),
            (200, &b"{}"[..], Some("b"))
        );
        let r = parse_response(b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .expect("parse");
        assert_eq!((r.status, r.body.as_slice()), (403, &b"abcde"[..]));
    }

    #[test]
    fn truncated_or_garbled_answers_are_errors() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").is_err());
        assert!(parse_response(b"SMTP 220 hi\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn only_loopback_http_urls_are_accepted() {
        assert!(loopback_addr("http://127.0.0.1:8443").is_ok());
        assert!(loopback_addr("http://10.0.0.1:8443").is_err());
        assert!(loopback_addr("https://127.0.0.1:8443").is_err());
    }
}
