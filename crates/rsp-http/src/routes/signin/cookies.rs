//! The sign-in cookies: the session and the pre-session the login form's CSRF token is bound to.
//!
//! Both are `HttpOnly; SameSite=Lax; Path=/` and, served over HTTPS, `Secure` with the `__Host-` prefix
//! (bound to this exact host, never set by a sibling domain). An issuer on plain `http` is only usable on
//! loopback during development; browsers drop `Secure` cookies and refuse `__Host-` without `Secure`
//! there, so those cookies go without both.

use axum::http::{HeaderMap, HeaderValue, header};

/// The two cookies, named for the issuer's scheme.
#[derive(Clone, Copy, Debug)]
pub struct CookieNames {
    secure: bool,
}

impl CookieNames {
    /// `secure` unless the issuer is plain `http` (loopback development).
    pub fn for_issuer(issuer_base: &str) -> Self {
        Self { secure: !issuer_base.starts_with("http://") }
    }

    pub fn session(self) -> &'static str {
        if self.secure { "__Host-rsp_session" } else { "rsp_session" }
    }

    pub fn pre_session(self) -> &'static str {
        if self.secure { "__Host-rsp_presession" } else { "rsp_presession" }
    }

    /// A `Set-Cookie` value for `name=value` (values are base64url tokens: nothing to quote).
    pub fn set(self, name: &str, value: &str, max_age_secs: i64) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; HttpOnly{secure}; SameSite=Lax; Path=/; Max-Age={max_age_secs}"
        ))
        .ok()
    }

    /// A `Set-Cookie` value that removes `name`.
    pub fn clear(self, name: &str) -> Option<HeaderValue> {
        self.set(name, "", 0)
    }
}

/// The value of cookie `name` in the request, if sent exactly once (two values would mean a cookie
/// planted beside ours; neither is trusted).
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned());
    let first = found.next()?;
    if found.next().is_some() || first.is_empty() {
        return None;
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_sent_twice_is_not_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; rsp_session=abc; b=2"));
        assert_eq!(read(&headers, "rsp_session").as_deref(), Some("abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("rsp_session=evil"));
        assert_eq!(read(&headers, "rsp_session"), None);
    }

    #[test]
    fn https_issuers_get_host_prefixed_secure_cookies() {
        let names = CookieNames::for_issuer("https://id.example");
        let set = names.set(names.session(), "v", 60).unwrap();
        assert_eq!(set.to_str().unwrap(), "__Host-rsp_session=v; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=60");
        let local = CookieNames::for_issuer("http://127.0.0.1:8080");
        assert_eq!(local.session(), "rsp_session");
    }
}
