//! Parsing at the edge: each extractor turns a raw request into typed values or an RFC-shaped error.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsp_core::Secret;
use rsp_oauth::{ClientCredentials, FormParams};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest body an OAuth endpoint accepts. Real requests are a few hundred bytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// The largest JSON body the admin API accepts.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", format!("request body exceeds {limit} bytes"))
    })
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// An `application/x-www-form-urlencoded` OAuth request: its parameters and the client credentials it
/// carries. Refuses what RFC 6749 forbids: repeated parameters, secrets in the query string, and more
/// than one authentication method in one request.
#[derive(Debug)]
pub struct OAuthForm {
    pub params: FormParams,
    pub credentials: ClientCredentials,
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let secret_in_query = parts
            .uri
            .query()
            .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(name, _)| name == "client_secret"));
        if secret_in_query {
            return Err(ApiError::invalid_request("client credentials must not be sent in the URL"));
        }
        if !content_type_is(&parts.headers, "application/x-www-form-urlencoded") {
            return Err(ApiError::invalid_request("content type must be application/x-www-form-urlencoded"));
        }
        let bytes = read_body(body, MAX_FORM_BYTES).await?;
        let params = FormParams::from_pairs(form_pairs(&bytes))?;
        let credentials = client_credentials(&parts.headers, &params)?;
        Ok(Self { params, credentials })
    }
}

/// The pairs of an `application/x-www-form-urlencoded` body, exactly as `form_urlencoded::parse` reads them
/// (empty pieces skipped, a missing `=` an empty value, invalid UTF-8 replaced). A pair with nothing to
/// decode (no `%`, no `+`: a JWT, an id, a grant type) is copied as it is: the byte-at-a-time percent
/// decoder and the lossy UTF-8 pass were 4–5% of an introspection's CPU time for a ~600-byte token. The
/// separators are found with `memchr` (whole words at a time): scanning the token a byte at a time, three
/// times over, was still 2% of an introspection.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'&', body).chain(std::iter::once(body.len())) {
        let pair = body.get(start..end).unwrap_or_default();
        start = end + 1;
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(at) => (pair.get(..at).unwrap_or_default(), pair.get(at + 1..).unwrap_or_default()),
            None => (pair, &[][..]),
        };
        let plain = memchr::memchr2(b'%', b'+', pair).is_none();
        if plain && let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(value)) {
            pairs.push((name.to_owned(), value.to_owned()));
        } else if let Some((name, value)) = form_urlencoded::parse(pair).next() {
            pairs.push((name.into_owned(), value.into_owned()));
        }
    }
    pairs
}

/// Builds the client credentials from the `Authorization` header or the form (RFC 6749 §2.3.1).
fn client_credentials(headers: &HeaderMap, params: &FormParams) -> Result<ClientCredentials, ApiError> {
    let form_id = params.get("client_id");
    let form_secret = params.get("client_secret");
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return Ok(match (form_id, form_secret) {
            (Some(id), Some(secret)) => {
                ClientCredentials::Post { client_id: id.to_owned(), secret: Secret::new(secret) }
            }
            (id, None) => ClientCredentials::None { client_id: id.map(str::to_owned) },
            (None, Some(_)) => {
                return Err(ApiError::invalid_request("client_secret without client_id"));
            }
        });
    };
    if form_secret.is_some() {
        return Err(ApiError::invalid_request("use exactly one client authentication method"));
    }
    let basic_failure = || ApiError::from(rsp_oauth::OAuthError::InvalidClient { via_basic: true });
    let (client_id, secret) =
        parse_basic(authorization.to_str().map_err(|_| basic_failure())?).ok_or_else(basic_failure)?;
    if form_id.is_some_and(|id| id != client_id) {
        return Err(ApiError::invalid_request("client_id differs from the Authorization header"));
    }
    Ok(ClientCredentials::Basic { client_id, secret: Secret::new(secret) })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, RFC 6749 §2.3.1 with RFC 7617.
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |part: &str| -> Option<String> {
        if !part.contains(['%', '+']) {
            return Some(part.to_owned());
        }
        let encoded = format!("v={part}");
        form_urlencoded::parse(encoded.as_bytes()).next().map(|(_, v)| v.into_owned())
    };
    let (id, secret) = (decode(id)?, decode(secret)?);
    if id.is_empty() {
        return None;
    }
    Some((id, secret))
}

/// The largest batch-decision body: 1,000 requests of about a kilobyte each.
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// A JSON body of at most `LIMIT` bytes; every rejection is an RFC-shaped 400 (or 413) naming the problem.
#[derive(Debug)]
pub struct JsonBody<T, const LIMIT: usize = MAX_JSON_BYTES>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S> for JsonBody<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        if !content_type_is(&parts.headers, "application/json") {
            return Err(ApiError::invalid_request("content type must be application/json"));
        }
        let bytes = read_body(body, LIMIT).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))
    }
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1), or an `invalid_token` error.
#[derive(Debug)]
pub struct BearerToken(pub Secret);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        match token {
            Some(token) => Ok(Self(Secret::new(token))),
            None => Err(rsp_oauth::bearer::BearerError::InvalidToken.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_read_as_form_urlencoded_does() {
        for body in [
            &b"grant_type=client_credentials&scope=api%3Aread+api%3Awrite"[..],
            b"token=eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_x&token_type_hint=access_token",
            b"&&a=&=b&c&d=1=2&&",
            b"e=%zz%4&f=%C3%A9&g=\xff\xfe&h=\xc3\xa9",
            b"",
            b"a+b=c%2Bd&a%26=%3D",
            b"=",
            b"&",
            b"a==",
            b"x=1&",
        ] {
            let expected: Vec<(String, String)> =
                form_urlencoded::parse(body).map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
            assert_eq!(form_pairs(body), expected, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded_after_base64() {
        // id "a b", secret "x:y%z" encoded as RFC 6749 §2.3.1 asks.
        let header = format!("Basic {}", STANDARD.encode("a+b:x%3Ay%25z"));
        assert_eq!(parse_basic(&header), Some(("a b".into(), "x:y%z".into())));
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic(&format!("Basic {}", STANDARD.encode("no-colon"))), None);
        assert_eq!(parse_basic(&format!("Bearer {}", STANDARD.encode("a:b"))), None);
    }
}
