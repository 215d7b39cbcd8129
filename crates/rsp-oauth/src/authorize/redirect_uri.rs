//! Redirect URIs: what a client may register, and the exact matching RFC 9700 §2.1 requires.

/// The longest redirect URI a client may register.
pub const MAX_LEN: usize = 512;

/// Loopback IP literals whose port may vary at request time (RFC 8252 §7.3). `localhost` is not one of
/// them: a name can resolve elsewhere (RFC 8252 §8.3).
const LOOPBACK_PREFIXES: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];

/// Why a URI cannot be registered as a redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect URI {0:?} must be an absolute URI of at most 512 characters without fragment")]
    Malformed(String),
    #[error("redirect URI {0:?} must use https, http on a loopback IP address, or a private-use scheme")]
    Insecure(String),
}

/// Checks a URI a client registers: absolute, no fragment, and `https`, `http` only on a loopback IP
/// (RFC 9700 §2.6 via RFC 8252 §7.3), or a reverse-domain private-use scheme of a native app (§7.1).
pub fn validate_registration(uri: &str) -> Result<(), RedirectUriError> {
    let malformed = || RedirectUriError::Malformed(uri.to_owned());
    if uri.len() > MAX_LEN || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(malformed());
    }
    let parsed = url::Url::parse(uri).map_err(|_| malformed())?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(malformed());
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if LOOPBACK_PREFIXES.iter().any(|p| uri.starts_with(p)) => {
            let host_ok = parsed.host_str().is_some_and(|h| h == "127.0.0.1" || h == "[::1]");
            if host_ok { Ok(()) } else { Err(RedirectUriError::Insecure(uri.to_owned())) }
        }
        "http" | "https" | "javascript" | "data" | "file" | "vbscript" => {
            Err(RedirectUriError::Insecure(uri.to_owned()))
        }
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(RedirectUriError::Insecure(uri.to_owned())),
    }
}

/// Whether `requested` names `registered`: the same string, byte for byte, or, for a loopback URI
/// registered without a port, the same string with any port inserted after the host (RFC 8252 §7.3).
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    LOOPBACK_PREFIXES.iter().any(|prefix| {
        let (Some(reg_rest), Some(req_rest)) = (registered.strip_prefix(prefix), requested.strip_prefix(prefix)) else {
            return false;
        };
        let Some(after_colon) = req_rest.strip_prefix(':') else {
            return false;
        };
        let digits = after_colon.bytes().take_while(u8::is_ascii_digit).count();
        let (port, rest) = after_colon.split_at(digits);
        // The registered URI carries no port of its own, and the request's port is a plain number.
        !reg_rest.starts_with(':')
            && (1..=5).contains(&port.len())
            && port.parse::<u16>().is_ok_and(|p| p != 0)
            && rest == reg_rest
            && (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_string_matches() {
        let registered = "https://c.example/cb";
        assert!(matches(registered, "https://c.example/cb"));
        for tampered in [
            "https://c.example/cb/",
            "https://c.example/cb?x=1",
            "https://c.example/CB",
            "http://c.example/cb",
            "https://c.example/c",
            "https://c.example/cbx",
            "https://c.example:443/cb",
            "https://C.example/cb",
            "https://c.example/cb#x",
            "https://c.example.evil.example/cb",
        ] {
            assert!(!matches(registered, tampered), "{tampered} matched");
        }
    }

    #[test]
    fn a_loopback_uri_matches_with_any_port_and_nothing_else_varies() {
        let registered = "http://127.0.0.1/cb";
        assert!(matches(registered, "http://127.0.0.1:51004/cb"));
        assert!(matches("http://[::1]/cb", "http://[::1]:8080/cb"));
        for tampered in [
            "http://127.0.0.1:51004/cb/",
            "http://127.0.0.1:51004/CB",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:99999/cb",
            "http://127.0.0.1:80@evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
        ] {
            assert!(!matches(registered, tampered), "{tampered} matched");
        }
        assert!(!matches("http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb"), "a registered port is exact");
    }

    #[test]
    fn registration_takes_https_loopback_http_and_private_schemes_only() {
        for ok in ["https://c.example/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb", "com.example.app:/cb"] {
            assert_eq!(validate_registration(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://c.example/cb",
            "http://localhost/cb",
            "https://c.example/cb#frag",
            "javascript:alert(1)",
            "myapp:/cb",
            "/relative",
            "https://c.example/ cb",
        ] {
            assert!(validate_registration(bad).is_err(), "{bad} accepted");
        }
    }
}
