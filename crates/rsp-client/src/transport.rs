//! The HTTP calls to the decision endpoints, and the one place their answers are classified into
//! decisions and [`ClientError`]s.

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use url::Url;

use crate::ClientError;
use crate::model::{
    AuthorizeRequest, Decision, WireBatchRequest, WireBatchResponse, WireDecision, WireError, WireItem,
};
use crate::token::{ClientCredentials, TokenSource};

/// The batch endpoint's limit on requests per call.
pub const MAX_BATCH: usize = 1000;

/// The endpoints of one tenant, and the token to call them with.
#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    authorize_url: Url,
    batch_url: Url,
    tokens: TokenSource,
}

impl Transport {
    pub fn new(
        http: reqwest::Client,
        base: &Url,
        tenant: &str,
        credentials: ClientCredentials,
        scope: String,
    ) -> Result<Self, ClientError> {
        let token_url = endpoint(base, &["t", tenant, "oauth2", "token"])?;
        Ok(Self {
            authorize_url: endpoint(base, &["t", tenant, "v1", "authorize"])?,
            batch_url: endpoint(base, &["t", tenant, "v1", "authorize", "batch"])?,
            tokens: TokenSource::new(http.clone(), token_url, credentials, scope),
            http,
        })
    }

    /// One decision from `POST …/v1/authorize`.
    pub async fn authorize(&self, request: &AuthorizeRequest) -> Result<Decision, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        let response = self.post(&self.authorize_url, body.into()).await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(response).await);
        }
        let decision: WireDecision = response.json().await?;
        Ok(decision.into())
    }

    /// Up to [`MAX_BATCH`] decisions from `POST …/v1/authorize/batch`, in request order. The outer
    /// error is the whole call's; an inner one belongs to that item alone.
    pub async fn authorize_batch(
        &self,
        requests: &[&AuthorizeRequest],
    ) -> Result<Vec<Result<Decision, ClientError>>, ClientError> {
        let body = serde_json::to_vec(&WireBatchRequest { requests })
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        let response = self.post(&self.batch_url, body.into()).await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(response).await);
        }
        let answer: WireBatchResponse = response.json().await?;
        if answer.results.len() != requests.len() {
            return Err(ClientError::Protocol(format!(
                "{} results for {} requests",
                answer.results.len(),
                requests.len()
            )));
        }
        Ok(answer
            .results
            .into_iter()
            .map(|item| match item {
                WireItem::Decision(decision) => Ok(decision.into()),
                WireItem::Error(error) => Err(ClientError::InvalidRequest(error.describe())),
            })
            .collect())
    }

    /// POSTs JSON with the bearer token. On a 401 `invalid_token` (revoked, or expired early by a clock
    /// skew) it fetches a fresh token and tries once more; a second 401 is final.
    async fn post(&self, url: &Url, body: Bytes) -> Result<Response, ClientError> {
        let token = self.tokens.get().await?;
        let response = self.send(url, body.clone(), token.as_str()).await?;
        if !is_invalid_token(&response) {
            return Ok(response);
        }
        tracing::debug!("access token refused; fetching a new one");
        self.tokens.invalidate(&token).await;
        let token = self.tokens.get().await?;
        let response = self.send(url, body, token.as_str()).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized);
        }
        Ok(response)
    }

    async fn send(&self, url: &Url, body: Bytes, token: &str) -> Result<Response, ClientError> {
        Ok(self
            .http
            .post(url.clone())
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await?)
    }
}

/// `{base}/seg/seg/…`, each segment percent-encoded, whatever trailing slash `base` has.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, ClientError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| ClientError::Config(format!("{base} cannot be a base URL")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

fn is_invalid_token(response: &Response) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .any(|value| value.to_str().is_ok_and(|v| v.contains("invalid_token")))
}

/// The error of a non-200 answer.
async fn status_error(response: Response) -> ClientError {
    let status = response.status();
    let code = status.as_u16();
    match code {
        400 => {
            let described = response.json::<WireError>().await.map_or_else(|_| status.to_string(), |e| e.describe());
            ClientError::InvalidRequest(described)
        }
        401 => ClientError::Unauthorized,
        403 => {
            let challenge = response.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            ClientError::Forbidden(challenge.unwrap_or_else(|| status.to_string()))
        }
        429 | 500..=599 => ClientError::Server(code),
        _ => ClientError::Status(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_encode_segments_and_ignore_trailing_slashes() {
        for base in ["http://pdp:8080", "http://pdp:8080/", "http://pdp:8080/rsp/"] {
            let base = Url::parse(base).unwrap();
            let url = endpoint(&base, &["t", "acme corp", "v1", "authorize"]).unwrap();
            assert!(url.as_str().ends_with("/t/acme%20corp/v1/authorize"), "{url}");
            assert!(!url.as_str().contains("//t/"), "{url}");
        }
    }
}
