"""The test SMTP server that scripts/smtp.sh runs: aiosmtpd, plain SMTP on one address, every
message saved to a folder. Run by scripts/smtp.sh in its virtualenv, not by hand:

    python smtp_server.py --host=127.0.0.1 --port=11025 --maildir=DIR

What it accepts: plain SMTP (no TLS, no STARTTLS), ESMTP with SMTPUTF8 and 8BITMIME, and AUTH
PLAIN or LOGIN with any user and any password over that plain connection (aiosmtpd refuses AUTH
without TLS unless told: auth_require_tls=False). AUTH is optional: unauthenticated mail is
accepted too. Every sender and every recipient is accepted; nothing is relayed anywhere.

What it saves, for each message (each DATA), in DIR:
    NAME.json   the envelope, written first:
                {"mail_from": "a@x", "rcpt_tos": ["b@y", ...], "auth_user": "u" or null,
                 "mail_options": [...], "rcpt_options": [...], "helo": "client name",
                 "peer": "127.0.0.1:port", "received_at": "2026-01-01T00:00:00.000000Z",
                 "size": bytes of NAME.eml, "message": "NAME.eml"}
    NAME.eml    the message exactly as received (RFC 5322 headers and body, CRLF line ends,
                SMTP's dot-stuffing undone, no header added), written last
NAME is <nanoseconds since the epoch, 20 digits>-<6-digit counter>: names sort by arrival. Both
files are written under DIR/.tmp/ and renamed into DIR, so a reader never sees half a file, and
a NAME.eml that exists always has its NAME.json beside it (a reader should look for *.eml).

Invariant: only the given address is listened on; SIGTERM or SIGINT closes the server cleanly.
"""

import argparse
import asyncio
import datetime
import json
import logging
import os
import signal
import sys
import time

import aiosmtpd
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def text(value):
    """bytes from the wire as text (the envelope's JSON), keeping any invalid byte visible."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


class Maildir:
    """Saves each message as NAME.json (envelope) then NAME.eml (raw), both atomically."""

    def __init__(self, path):
        self.path = path
        self.tmp = os.path.join(path, ".tmp")
        os.makedirs(self.tmp, exist_ok=True)
        self.last_ns = 0
        self.counter = 0

    def next_name(self):
        # Strictly increasing even if the wall clock steps back while the server runs.
        now = max(time.time_ns(), self.last_ns + 1)
        self.last_ns = now
        self.counter += 1
        return "%020d-%06d" % (now, self.counter % 1000000)

    def write(self, name, data):
        tmp = os.path.join(self.tmp, name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.path, name))

    def save(self, envelope, meta):
        name = self.next_name()
        raw = envelope.original_content or b""
        meta = dict(meta, size=len(raw), message=name + ".eml")
        body = json.dumps(meta, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        self.write(name + ".json", body)
        self.write(name + ".eml", raw)
        return name


class Handler:
    def __init__(self, maildir):
        self.maildir = maildir

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        user = text(auth.login) if isinstance(auth, LoginPassword) else None
        peer = session.peer
        meta = {
            "mail_from": text(envelope.mail_from),
            "rcpt_tos": [text(r) for r in envelope.rcpt_tos],
            "auth_user": user,
            "mail_options": [text(o) for o in envelope.mail_options],
            "rcpt_options": [text(o) for o in envelope.rcpt_options],
            "helo": text(session.host_name),
            "peer": "%s:%s" % tuple(peer[:2]) if isinstance(peer, tuple) else str(peer),
            "received_at": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
        }
        try:
            name = self.maildir.save(envelope, meta)
        except OSError as e:
            print("could not save a message: %s" % e, flush=True)
            return "451 Requested action aborted: could not save the message"
        rcpts = ",".join(meta["rcpt_tos"])
        size = len(envelope.original_content or b"")
        print(
            "saved %s: from %s to %s, user %s, %d bytes" % (name, meta["mail_from"], rcpts, user, size),
            flush=True,
        )
        return "250 OK: saved as %s" % name


def accept_anyone(server, session, envelope, mechanism, auth_data):
    """Any user, any password, for PLAIN and LOGIN (the two mechanisms aiosmtpd has)."""
    return AuthResult(success=True, auth_data=auth_data)


async def serve(args):
    maildir = Maildir(args.maildir)
    handler = Handler(maildir)

    def factory():
        return SMTP(
            handler,
            hostname="updraft-test-smtp",
            ident="Updraft test SMTP (aiosmtpd %s)" % aiosmtpd.__version__,
            decode_data=False,
            enable_SMTPUTF8=True,
            authenticator=accept_anyone,
            auth_required=False,
            auth_require_tls=False,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=args.host, port=args.port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        "listening on %s:%d (aiosmtpd %s), saving to %s"
        % (args.host, args.port, aiosmtpd.__version__, args.maildir),
        flush=True,
    )
    await stop.wait()
    print("shutting down", flush=True)
    server.close()
    try:
        # Python 3.12+ waits here for open connections too: do not hang on an idle client.
        await asyncio.wait_for(server.wait_closed(), 5)
    except asyncio.TimeoutError:
        pass


def quiet_logging():
    """aiosmtpd's warnings go to the log (stdout), less the one it logs on every AUTH: it sets
    its own deprecated Session.login_data itself."""
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stdout,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage()
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    args = p.parse_args()
    args.maildir = os.path.abspath(args.maildir)
    quiet_logging()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
