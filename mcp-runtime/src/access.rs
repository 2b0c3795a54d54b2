//! Who may talk to the server over the network: the `Origin` check (a web
//! page from elsewhere must not reach a server on localhost), the `Host`
//! check against DNS rebinding when bound to a loopback address, and the
//! optional bearer token. One tower layer in front of every HTTP request,
//! the WebSocket upgrade included: browsers apply no CORS to WebSocket, so
//! the server must.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};

use crate::protocol::{self, error_code};
use crate::service::Service;

/// The access rules, resolved once at start-up.
#[derive(Debug, Default)]
pub(crate) struct Access {
    /// Origins allowed besides loopback ones (`MCP_ALLOWED_ORIGINS`), lower
    /// case, without a trailing slash.
    allowed_origins: Vec<String>,
    any_origin: bool,
    /// `MCP_AUTH_TOKEN`.
    token: Option<Vec<u8>>,
    /// Bound to a loopback address: a `Host` naming anything else is refused.
    loopback_only: AtomicBool,
}

impl Access {
    pub(crate) fn new(allowed_origins: &[String], token: Option<String>) -> Access {
        let mut access = Access { token: token.map(String::into_bytes), ..Access::default() };
        for origin in allowed_origins {
            let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            match origin.as_str() {
                "" => {}
                "*" => access.any_origin = true,
                _ => access.allowed_origins.push(origin),
            }
        }
        access
    }

    pub(crate) fn set_loopback_only(&self, loopback: bool) {
        self.loopback_only.store(loopback, Ordering::Relaxed);
    }

    pub(crate) fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    /// Why a request with these headers is refused, if it is.
    pub(crate) fn check(&self, headers: &HeaderMap, health_check: bool) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("").trim().trim_end_matches('/').to_ascii_lowercase();
            let allowed = self.any_origin || is_loopback_origin(&origin) || self.allowed_origins.contains(&origin);
            if !allowed {
                return Err(Refusal::Origin(origin));
            }
        }
        if self.loopback_only.load(Ordering::Relaxed)
            && let Some(host) = headers.get(header::HOST)
        {
            let host = host.to_str().unwrap_or("");
            if !host_of(host).is_some_and(is_loopback_host) {
                return Err(Refusal::Host(host.to_owned()));
            }
        }
        // Container health checks rarely carry credentials, and /healthz
        // reveals only whether the server is serving.
        if let Some(token) = &self.token
            && !health_check
        {
            let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_token);
            match given {
                None => return Err(Refusal::NoToken),
                Some(given) if !constant_time_eq(given.as_bytes(), token) => return Err(Refusal::BadToken),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Why a request was refused; each says what to change.
#[derive(Debug)]
pub(crate) enum Refusal {
    Origin(String),
    Host(String),
    NoToken,
    BadToken,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Refusal::Origin(origin) => (
                StatusCode::FORBIDDEN,
                format!(
                    "forbidden: requests from origin {origin:?} are not allowed; only loopback origins \
                     (localhost, 127.0.0.1, [::1]) and those listed in MCP_ALLOWED_ORIGINS may call this server"
                ),
            ),
            Refusal::Host(host) => (
                StatusCode::FORBIDDEN,
                format!(
                    "forbidden: Host {host:?} does not name this server; it listens on a loopback address and \
                     answers only requests for localhost, 127.0.0.1 or [::1] (DNS rebinding protection)"
                ),
            ),
            Refusal::NoToken => (
                StatusCode::UNAUTHORIZED,
                "unauthorized: this server requires `Authorization: Bearer <token>` (the MCP_AUTH_TOKEN it was \
                 started with)"
                    .to_owned(),
            ),
            Refusal::BadToken => {
                (StatusCode::UNAUTHORIZED, "unauthorized: the bearer token is not this server's token".to_owned())
            }
        };
        let body = protocol::error_response(None, error_code::INVALID_REQUEST, &message, None);
        let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        match self {
            Refusal::NoToken => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="mcp""#));
            }
            Refusal::BadToken => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="mcp", error="invalid_token""#),
                );
            }
            Refusal::Origin(_) | Refusal::Host(_) => {}
        }
        response
    }
}

/// The tower layer in front of every route: refuses, or passes the request
/// on untouched (no boxing on the way through).
#[derive(Clone)]
pub(crate) struct AccessLayer(pub(crate) Arc<Service>);

impl<S> tower::Layer<S> for AccessLayer {
    type Service = AccessCheck<S>;

    fn layer(&self, inner: S) -> AccessCheck<S> {
        AccessCheck { service: self.0.clone(), inner }
    }
}

#[derive(Clone)]
pub(crate) struct AccessCheck<S> {
    service: Arc<Service>,
    inner: S,
}

impl<S> tower::Service<Request> for AccessCheck<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let health_check = request.uri().path() == "/healthz";
        match self.service.access.check(request.headers(), health_check) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(refusal) => {
                tracing::warn!(refusal = ?refusal, path = %request.uri().path(), "refused a request");
                Either::Left(ready(Ok(refusal.into_response())))
            }
        }
    }
}

/// The credentials of `Authorization: Bearer <token>`; the scheme name is
/// case-insensitive (RFC 7235 section 2.1), so `BEARER` and `bearer` count.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim_start().split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else { return false };
    matches!(scheme, "http" | "https") && host_of(rest).is_some_and(is_loopback_host)
}

fn is_loopback_host(host: &str) -> bool {
    ["localhost", "127.0.0.1", "[::1]"].iter().any(|loopback| host.eq_ignore_ascii_case(loopback))
}

/// The host of an authority: `host` or `host:port` → `host`, `[v6]` or
/// `[v6]:port` → `[v6]`. `None` for anything else (a path, trailing junk
/// after `]`, a port that is not digits): the whole value must parse.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|port| port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()));
    (port_ok && !host.is_empty()).then_some(host)
}

/// Compares in time that depends only on the lengths, so the token cannot be
/// guessed a byte at a time from response times.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, &e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= usize::from(g ^ e);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn loopback_origins_pass_and_others_are_refused_unless_listed() {
        let access = Access::new(&["https://App.Example.com/".to_owned()], None);
        for ok in ["http://localhost", "http://localhost:3000", "http://127.0.0.1:9000", "https://[::1]:8443"] {
            assert!(access.check(&headers(&[(header::ORIGIN, ok)]), false).is_ok(), "{ok}");
        }
        assert!(access.check(&headers(&[(header::ORIGIN, "https://app.example.com")]), false).is_ok());
        for bad in ["http://evil.example", "http://localhost.evil.example", "null", "http://127.0.0.2", "file://"] {
            assert!(
                matches!(access.check(&headers(&[(header::ORIGIN, bad)]), false), Err(Refusal::Origin(_))),
                "{bad}"
            );
        }
        assert!(access.check(&HeaderMap::new(), false).is_ok(), "no Origin: not a browser");
    }

    #[test]
    fn a_loopback_server_answers_only_loopback_host_names() {
        let access = Access::new(&[], None);
        access.set_loopback_only(true);
        assert!(access.check(&headers(&[(header::HOST, "127.0.0.1:9000")]), false).is_ok());
        assert!(access.check(&headers(&[(header::HOST, "[::1]:9000")]), false).is_ok());
        assert!(access.check(&headers(&[(header::HOST, "localhost")]), false).is_ok());
        assert!(matches!(access.check(&headers(&[(header::HOST, "evil.example:9000")]), false), Err(Refusal::Host(_))));
        // The whole value must parse: nothing may trail the host or port.
        for junk in ["[::1]junk", "[::1]:80x", "localhost:9000:1", "127.0.0.1:", "[::1", "localhost/", ""] {
            let refused = access.check(&headers(&[(header::HOST, junk)]), false);
            if junk == "127.0.0.1:" {
                // An empty port is allowed by RFC 3986 (`port = *DIGIT`).
                assert!(refused.is_ok(), "{junk}");
                continue;
            }
            assert!(matches!(refused, Err(Refusal::Host(_))), "{junk:?}");
        }
        for junk in ["http://[::1]junk", "http://[::1]:80/x", "http://localhost:abc", "http://localhost@evil.example"] {
            assert!(
                matches!(access.check(&headers(&[(header::ORIGIN, junk)]), false), Err(Refusal::Origin(_))),
                "{junk}"
            );
        }
    }

    #[test]
    fn the_token_is_required_except_for_health_checks() {
        let access = Access::new(&[], Some("s3cret".to_owned()));
        assert!(matches!(access.check(&HeaderMap::new(), false), Err(Refusal::NoToken)));
        assert!(access.check(&HeaderMap::new(), true).is_ok());
        let wrong = headers(&[(header::AUTHORIZATION, "Bearer s3cre")]);
        assert!(matches!(access.check(&wrong, false), Err(Refusal::BadToken)));
        assert!(access.check(&headers(&[(header::AUTHORIZATION, "Bearer s3cret")]), false).is_ok());
        // The scheme name is case-insensitive (RFC 7235); the token is not.
        for scheme in ["BEARER", "bearer", "bEaReR"] {
            let given = headers(&[(header::AUTHORIZATION, &format!("{scheme} s3cret"))]);
            assert!(access.check(&given, false).is_ok(), "{scheme}");
        }
        assert!(matches!(
            access.check(&headers(&[(header::AUTHORIZATION, "Bearer S3CRET")]), false),
            Err(Refusal::BadToken)
        ));
        assert!(matches!(
            access.check(&headers(&[(header::AUTHORIZATION, "Basic s3cret")]), false),
            Err(Refusal::NoToken)
        ));
        assert!(!constant_time_eq(b"s3cret1", b"s3cret"));
    }
}
