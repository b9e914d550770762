//! Webhooks and Slack-compatible webhooks: one POST of JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{DeliveryError, Message, param};

/// Updraft's parameters, taken off the URL before it is called.
const OWN_PARAMS: [&str; 4] = ["format", "secret", "body", "subject"];

/// How much of an answer's body is kept.
const ANSWER_CHARS: usize = 300;

pub(super) async fn send(
    mut url: reqwest::Url,
    msg: &Message,
) -> Result<Option<String>, DeliveryError> {
    let slack = param(&url, "format").is_some_and(|f| f == "slack");
    let secret = param(&url, "secret");
    let template = param(&url, "body");
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !OWN_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    let body = match (&template, slack) {
        (Some(t), _) => msg.render(t).map_err(DeliveryError::fatal)?,
        (None, true) => slack_blocks(msg).to_string(),
        (None, false) => msg.json().to_string(),
    };
    let client = crate::tls::http_client()
        .timeout(super::TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DeliveryError::fatal(format!("HTTP client: {e}")))?;
    let mut req = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("user-agent", concat!("updraft/", env!("CARGO_PKG_VERSION")))
        .header("idempotency-key", &msg.n.idempotency_key);
    if let Some(secret) = secret {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        req = req
            .header("x-updraft-timestamp", ts.to_string())
            .header("x-updraft-signature", format!("sha256={}", sign(&secret, ts, &body)));
    }
    let host = url.host_str().unwrap_or("").to_string();
    let resp = req.body(body).send().await.map_err(|e| DeliveryError {
        // The URL may carry a token in its path: name the host only.
        error: format!("cannot reach {host}: {}", without_url(&e)),
        answer: None,
        retryable: true,
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let answer =
        format!("{} {}", status.as_u16(), text.chars().take(ANSWER_CHARS).collect::<String>())
            .trim()
            .to_string();
    if status.is_success() {
        return Ok(Some(answer));
    }
    Err(DeliveryError {
        error: format!("{host} answered {status}"),
        answer: Some(answer),
        retryable: status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408,
    })
}

/// The signature of a webhook body: HMAC-SHA256 of `<timestamp>.<body>`, in hex.
pub fn sign(secret: &str, timestamp: u64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// A reqwest error's text without the URL it names.
fn without_url(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// Slack's message: a header, the facts as fields, the error, a button to the log (Block Kit).
fn slack_blocks(msg: &Message) -> Value {
    let n = &msg.n;
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*DAG*\n{}", n.dag_id)}),
        json!({"type": "mrkdwn", "text": format!("*Run*\n{}", n.run_id)}),
        json!({"type": "mrkdwn", "text": format!("*State*\n{}", n.state)}),
    ];
    if let Some(t) = &n.task_id {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Task*\n{t} (try {})", n.try_number.unwrap_or(0))}));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&msg.title, 150)}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(e) = &n.error {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("```{}```", truncate(e, 2900))}}));
    }
    let (label, url) = match &msg.log_url {
        Some(log) => ("Open the log", log.clone()),
        None => ("Open the run", msg.run_url.clone()),
    };
    blocks.push(json!({"type": "actions", "elements": [{"type": "button",
        "text": {"type": "plain_text", "text": label}, "url": url}]}));
    json!({"text": msg.title, "blocks": blocks})
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    format!("{}…", s.chars().take(max - 1).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 style check computed independently: HMAC-SHA256("key", "1.{}").
        let sig = sign("key", 1, "{}");
        assert_eq!(sig.len(), 64);
        assert_ne!(sig, sign("key", 2, "{}"), "the timestamp is signed");
        assert_ne!(sig, sign("other", 1, "{}"), "the key matters");
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
