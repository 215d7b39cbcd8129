//! The sign-in pages' HTML: a tiny builder that escapes every value it is given, and the headers every
//! page carries. No template engine: three small forms do not justify one, and building the markup in
//! Rust keeps every interpolation visibly escaped.
//!
//! The pages need no JavaScript. The stylesheet is served from this origin ([`STYLESHEET`]) so the CSP
//! allows no inline code at all. `form-action` is left out of the CSP on purpose: Chrome applies it to
//! the redirects that follow a form post, which would block the 303 to the client's redirect URI.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where the pages' stylesheet is served.
pub const STYLESHEET_PATH: &str = "/oauth2/signin.css";

/// High-contrast colours (text #1a1a1a on #ffffff, 17:1; button text white on #0b57d0, 6.3:1) and an
/// always-visible focus ring.
pub const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;color:#1a1a1a;background:#fff;margin:0}\
main{max-width:26rem;margin:3rem auto;padding:0 1rem}\
label{display:block;margin-top:1rem;font-weight:600}\
input[type=text],input[type=password]{display:block;width:100%;box-sizing:border-box;padding:.5rem;\
font-size:1rem;border:1px solid #555;border-radius:4px}\
button{margin-top:1.25rem;margin-right:.5rem;padding:.6rem 1.2rem;font-size:1rem;border-radius:4px;\
border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#0b57d0}\
:focus-visible{outline:3px solid #b3261e;outline-offset:2px}\
.error{color:#b3261e;font-weight:600}\
ul{padding-left:1.25rem}";

/// Escapes text for an HTML element or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A page under construction: its body is appended piece by piece, text always through [`escape`].
#[derive(Debug, Default)]
pub struct Page {
    body: String,
}

impl Page {
    pub fn heading(mut self, text: &str) -> Self {
        self.body.push_str(&format!("<h1>{}</h1>", escape(text)));
        self
    }

    pub fn paragraph(mut self, text: &str) -> Self {
        self.body.push_str(&format!("<p>{}</p>", escape(text)));
        self
    }

    /// A message announced to assistive technology when the page loads.
    pub fn error(mut self, text: &str) -> Self {
        self.body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text)));
        self
    }

    pub fn list(mut self, items: &[String]) -> Self {
        self.body.push_str("<ul>");
        for item in items {
            self.body.push_str(&format!("<li>{}</li>", escape(item)));
        }
        self.body.push_str("</ul>");
        self
    }

    /// A list whose element has `id` (so tests and assistive tools can find it).
    pub fn list_with_id(mut self, id: &str, items: &[String]) -> Self {
        self.body.push_str(&format!("<ul id=\"{}\">", escape(id)));
        for item in items {
            self.body.push_str(&format!("<li>{}</li>", escape(item)));
        }
        self.body.push_str("</ul>");
        self
    }

    /// Text to copy exactly (a key), in a `<code>` element with `id`.
    pub fn code(mut self, id: &str, text: &str) -> Self {
        self.body.push_str(&format!("<p><code id=\"{}\">{}</code></p>", escape(id), escape(text)));
        self
    }

    /// Markup the server generated itself from no user input (the QR code's SVG). Inline `<svg>` needs no
    /// CSP source, so `default-src 'none'` still holds.
    pub fn generated_markup(mut self, markup: &str) -> Self {
        self.body.push_str(markup);
        self
    }

    /// A POST form to `action` with hidden fields, and raw inner markup built with the helpers below.
    pub fn form(mut self, action: &str, hidden: &[(&str, &str)], inner: &str) -> Self {
        self.body.push_str(&format!("<form method=\"post\" action=\"{}\">", escape(action)));
        for (name, value) in hidden {
            self.body.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            ));
        }
        self.body.push_str(inner);
        self.body.push_str("</form>");
        self
    }

    pub fn render(self, title: &str, status: StatusCode) -> Response {
        let html = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{}</title><link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\"></head>\
             <body><main>{}</main></body></html>",
            escape(title),
            self.body
        );
        with_page_headers((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
    }
}

/// A labelled text or password input; `autofocus` on the first field a person must fill in.
pub fn input(name: &str, label: &str, kind: &str, value: &str, autocomplete: &str, autofocus: bool) -> String {
    format!(
        "<label for=\"{n}\">{l}</label><input id=\"{n}\" name=\"{n}\" type=\"{k}\" value=\"{v}\" \
         autocomplete=\"{a}\" required{f}>",
        n = escape(name),
        l = escape(label),
        k = escape(kind),
        v = escape(value),
        a = escape(autocomplete),
        f = if autofocus { " autofocus" } else { "" },
    )
}

/// A labelled input for a one-time code: digits by default on phones (`inputmode`), filled from the
/// platform's one-time-code suggestions (`autocomplete`); a recovery code (letters) can still be typed.
pub fn code_input(name: &str, label: &str) -> String {
    format!(
        "<label for=\"{n}\">{l}</label><input id=\"{n}\" name=\"{n}\" type=\"text\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" maxlength=\"32\" required autofocus>",
        n = escape(name),
        l = escape(label),
    )
}

/// A labelled checkbox.
pub fn checkbox(name: &str, label: &str) -> String {
    format!(
        "<label><input type=\"checkbox\" name=\"{n}\" value=\"yes\"> {l}</label>",
        n = escape(name),
        l = escape(label)
    )
}

/// A submit button that sends `name=value`.
pub fn button(name: &str, value: &str, label: &str, primary: bool, autofocus: bool) -> String {
    format!(
        "<button type=\"submit\" name=\"{}\" value=\"{}\"{}{}>{}</button>",
        escape(name),
        escape(value),
        if primary { "" } else { " class=\"secondary\"" },
        if autofocus { " autofocus" } else { "" },
        escape(label)
    )
}

/// The headers of every page and of every redirect the pages send: no framing (BCP 4.16), no `Referer`
/// beyond our own origin (so the pending id and codes never reach another site, BCP 4.2.4), no caching,
/// and a CSP that allows only our stylesheet. The referrer policy is `same-origin`, not `no-referrer`:
/// under `no-referrer` browsers send `Origin: null` with our own form posts, which the `Origin` check
/// (rightly) refuses.
pub fn with_page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    response
}

/// An error that must not be sent to the client's redirect URI (RFC 6749 §4.1.2.1): shown here instead.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    Page::default().heading("Sign-in request refused").error(message).render("Error", status)
}

/// Reads a posted form into named fields: a field not named is ignored, a repeated one keeps its last
/// value (so a page's forms parse the same way and never fail on extra input).
pub fn read_fields(body: &[u8], fields: &mut [(&str, &mut String)]) {
    for (name, value) in form_urlencoded::parse(body) {
        if let Some((_, slot)) = fields.iter_mut().find(|(field, _)| *field == name.as_ref()) {
            **slot = value.into_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interpolated_value_is_escaped() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        let field = input("u\"", "<b>", "text", "\"><script>", "username", true);
        assert!(!field.contains("<script>") && !field.contains("<b>"), "{field}");
    }
}
