//! Security headers of every response, set in one middleware so no handler can forget them.
//!
//! Invariants: every response says `X-Content-Type-Options: nosniff` (a task log served as
//! text is never run as HTML or script), and none may be framed by another site
//! (`frame-ancestors 'none'` plus `X-Frame-Options: DENY` for older browsers). HTML pages get a
//! policy that allows only this origin's script and styles — the pages load one script file and
//! have no inline script; inline `style` attributes (bar widths) are allowed. Everything else
//! gets `default-src 'none'`: JSON and text load nothing. A handler that sets a header itself
//! keeps its value.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;

/// The policy of HTML pages.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of everything that is not a page.
pub const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the headers to `resp`.
pub async fn secure(mut resp: Response) -> Response {
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let h = resp.headers_mut();
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CONTENT_SECURITY_POLICY, if html { PAGE_POLICY } else { DATA_POLICY });
    set(h, header::REFERRER_POLICY, "same-origin");
    resp
}

fn set(h: &mut HeaderMap, name: HeaderName, value: &'static str) {
    h.entry(name).or_insert(HeaderValue::from_static(value));
}
