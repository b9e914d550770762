//! Delivering one notification to its notifier, as the notifier's connection URI says:
//!
//! - a webhook: the URL itself (`https://hooks.example.com/updraft`); a JSON body with the
//!   event, DAG, run, task, try, state, error and links, or the connection's `body` template;
//!   with `secret=...` an HMAC-SHA256 signature of `<timestamp>.<body>` in
//!   `X-Updraft-Signature: sha256=<hex>` beside `X-Updraft-Timestamp`; every request carries
//!   `Idempotency-Key`, so a receiver can drop a repeat (a delivery whose answer was lost);
//! - Slack-compatible (`https://hooks.slack.com/...?format=slack`): message blocks (a header, the
//!   facts, a button to the log);
//! - email (`smtp://user:pass@host:587?from=...&to=a@x,b@y`, `smtps://` for TLS from the
//!   start; `security=starttls|tls|none`): STARTTLS by default, AUTH with the URI's user, the
//!   connection's `subject` and `body` templates, the idempotency key in the `Message-ID`.
//!
//! Updraft's own parameters (`format`, `secret`, `body`, `subject`) are taken off a webhook's
//! URL before it is called. Invariants: every delivery is bounded in time ([`TIMEOUT`]); an
//! error says whether another attempt can help (a 5xx, a 429, the network) or not (a 4xx, a
//! bad URI); no secret reaches an error or a log.

mod email;
mod message;
mod webhook;

use std::time::Duration;

use crate::store::NotificationRow;

pub use message::{Message, TEST_EVENT, test_notification};

/// The longest one delivery may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct DeliveryError {
    /// What went wrong, for the run page and the audit log.
    pub error: String,
    /// The receiver's answer (status and the start of its body), when it answered.
    pub answer: Option<String>,
    /// Whether another attempt may succeed.
    pub retryable: bool,
}

impl DeliveryError {
    pub(crate) fn fatal(error: impl Into<String>) -> DeliveryError {
        DeliveryError { error: error.into(), answer: None, retryable: false }
    }
}

/// Delivers `n` to the notifier whose connection URI is `uri`; the answer of the receiver on
/// success. `base_url` is the web UI's, for links.
pub async fn deliver(
    uri: &str,
    n: &NotificationRow,
    base_url: &str,
) -> Result<Option<String>, DeliveryError> {
    let url = reqwest::Url::parse(uri.trim()).map_err(|e| {
        DeliveryError::fatal(format!("connection `{}` is not a URI ({e})", n.conn_id))
    })?;
    let msg = Message::of(n, base_url);
    let run = async {
        match url.scheme() {
            "http" | "https" => webhook::send(url, &msg).await,
            "smtp" | "smtps" => email::send(&url, &msg).await,
            other => Err(DeliveryError::fatal(format!(
                "connection `{}` is a `{other}` URI; a notifier is a webhook (http, https, \
                 `?format=slack` for Slack) or email (smtp, smtps)",
                n.conn_id
            ))),
        }
    };
    match tokio::time::timeout(TIMEOUT, run).await {
        Ok(r) => r,
        Err(_) => Err(DeliveryError {
            error: format!("no answer within {}s", TIMEOUT.as_secs()),
            answer: None,
            retryable: true,
        }),
    }
}

/// The value of Updraft's parameter `name` in a notifier URL, percent-decoded as a URI is
/// (RFC 3986): a `+` is a plus, as in `alerts+ops@example.com` or a base64 secret, never the
/// space of an HTML form (write a space as `%20`).
fn param(url: &reqwest::Url, name: &str) -> Option<String> {
    let query = url.query()?.replace('+', "%2B");
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::param;

    #[test]
    fn a_plus_in_a_parameter_is_a_plus() {
        let url = reqwest::Url::parse(
            "smtp://h?from=alerts+ops@example.com&secret=a+b/c%3D&subject=Disk%20full&to=",
        )
        .unwrap();
        assert_eq!(param(&url, "from").as_deref(), Some("alerts+ops@example.com"));
        assert_eq!(param(&url, "secret").as_deref(), Some("a+b/c="));
        assert_eq!(param(&url, "subject").as_deref(), Some("Disk full"));
        assert_eq!(param(&url, "to").as_deref(), Some(""));
        assert_eq!(param(&url, "body"), None);
    }
}
