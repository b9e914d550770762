//! Email notifications over SMTP with lettre: STARTTLS (default), TLS from the start
//! (`smtps://` or `security=tls`) or none (`security=none`, for a relay on the same host).

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{DeliveryError, Message, param};

pub(super) async fn send(
    url: &reqwest::Url,
    msg: &Message,
) -> Result<Option<String>, DeliveryError> {
    crate::tls::install_provider();
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        DeliveryError::fatal(
            "an smtp:// notifier names no host: smtp://user:pass@host:587?from=...&to=...",
        )
    })?;
    let security = param(url, "security")
        .unwrap_or_else(|| if url.scheme() == "smtps" { "tls".into() } else { "starttls".into() });
    let mut builder = match security.as_str() {
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)),
        other => {
            return Err(DeliveryError::fatal(format!(
                "`security={other}`: write starttls, tls or none"
            )));
        }
    }
    .map_err(|e| DeliveryError::fatal(format!("SMTP settings: {e}")))?;
    if let Some(port) = url.port() {
        builder = builder.port(port);
    }
    let conn = crate::operators::Connection::parse("notifier", url.as_str())
        .map_err(DeliveryError::fatal)?;
    if let Some(user) = conn.login.filter(|u| !u.is_empty()) {
        builder = builder.credentials(Credentials::new(user, conn.password.unwrap_or_default()));
    }
    let mailer = builder.timeout(Some(super::TIMEOUT)).build();
    let from = param(url, "from").unwrap_or_else(|| format!("updraft@{host}"));
    let to = param(url, "to").ok_or_else(|| {
        DeliveryError::fatal("an smtp:// notifier needs `to=` (addresses separated by commas)")
    })?;
    let subject = match param(url, "subject") {
        Some(t) => msg.render(&t).map_err(DeliveryError::fatal)?,
        None => msg.title.clone(),
    };
    let body = match param(url, "body") {
        Some(t) => msg.render(&t).map_err(DeliveryError::fatal)?,
        None => plain_body(msg),
    };
    let mailbox = |a: &str| {
        a.trim()
            .parse::<Mailbox>()
            .map_err(|e| DeliveryError::fatal(format!("address `{}`: {e}", a.trim())))
    };
    let mut email = lettre::Message::builder()
        .from(mailbox(&from)?)
        .subject(subject)
        .message_id(Some(message_id(&msg.n.idempotency_key)))
        .header(ContentType::TEXT_PLAIN);
    for a in to.split(',').filter(|a| !a.trim().is_empty()) {
        email = email.to(mailbox(a)?);
    }
    let email = email.body(body).map_err(|e| DeliveryError::fatal(format!("the mail: {e}")))?;
    match mailer.send(email).await {
        Ok(answer) => Ok(Some(format!(
            "{} {}",
            answer.code(),
            answer.message().collect::<Vec<_>>().join(" ")
        ))),
        Err(e) => Err(DeliveryError {
            error: format!("SMTP {host}: {e}"),
            answer: None,
            // A permanent (5xx) answer will not change; the rest (connection, 4xx) may.
            retryable: !e.is_permanent(),
        }),
    }
}

fn plain_body(msg: &Message) -> String {
    let n = &msg.n;
    let mut out =
        format!("{}\n\nDAG: {}\nRun: {}\nState: {}\n", msg.title, n.dag_id, n.run_id, n.state);
    if let Some(t) = &n.task_id {
        out.push_str(&format!("Task: {t} (try {})\n", n.try_number.unwrap_or(0)));
    }
    if let Some(e) = &n.error {
        out.push_str(&format!("Error: {e}\n"));
    }
    out.push_str(&format!("\nRun: {}\n", msg.run_url));
    if let Some(log) = &msg.log_url {
        out.push_str(&format!("Log: {log}\n"));
    }
    out
}

/// The `Message-ID` of the mail of idempotency key `key`: `<key@updraft>`, each character the
/// left part of an RFC 5322 msg-id may not hold (a dot-atom: `:`, a space, `<`, ...) as `.`,
/// so that a mail client or a relay dropping repeats by Message-ID sees one id per event.
fn message_id(key: &str) -> String {
    const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~";
    let mut left = String::with_capacity(key.len());
    for c in key.chars() {
        let c = if c.is_ascii_alphanumeric() || ATEXT.contains(c) { c } else { '.' };
        // A dot-atom has no empty atom: no leading, doubled or trailing dot.
        if c != '.' || !(left.is_empty() || left.ends_with('.')) {
            left.push(c);
        }
    }
    let left = left.trim_end_matches('.');
    format!("<{}@updraft>", if left.is_empty() { "notification" } else { left })
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn a_line_break_in_a_subject_adds_no_header() {
        // The subject is a template over the try's error, which a task controls.
        let m = lettre::Message::builder()
            .from("updraft@example.test".parse().unwrap())
            .to("ops@example.test".parse().unwrap())
            .subject("disk full\r\nBcc: thief@example.test\r\n\r\nfake body")
            .body(String::from("the body"))
            .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(!head.lines().any(|l| l.to_lowercase().starts_with("bcc:")), "{text}");
        assert_eq!(body, "the body", "{text}");
        assert!(m.envelope().to().len() == 1, "no recipient added");
    }

    #[test]
    fn message_ids_are_dot_atoms() {
        assert_eq!(
            message_id("task_failure:ti2:try1:1796:mail_ops"),
            "<task_failure.ti2.try1.1796.mail_ops@updraft>"
        );
        assert_eq!(message_id("a::b <c>"), "<a.b.c@updraft>");
        assert_eq!(message_id(":x:"), "<x@updraft>");
        assert_eq!(message_id("::"), "<notification@updraft>");
    }
}
