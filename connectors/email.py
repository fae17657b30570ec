"""SMTP liaison target: escalations sent by mail to the NCB liaison mailbox (or a ticket queue's mail-in).

Each escalation is one ``multipart/alternative`` message (plain text + HTML, both rendered from the
dossier with case data escaped) carrying ``X-Casebridge-Dedupe-Key`` and a Message-ID derived from the
dedupe key, so the same escalation always has the same Message-ID.

Never lost, at most a duplicate the receiver can spot: a mailbox cannot be searched here (IMAP/Maildir
checks are out of scope), so ``find_escalation`` answers from a local sent-record (SQLite,
``sent_record``). An escalation counts as sent only once the server answered 250 to its DATA. The
record is written "sending" once the session is logged in, just before the message goes out, and
"sent" after the 250; a configuration or login error writes nothing. A crash (or a dropped connection)
between the end of DATA and the confirmation leaves "sending": the next run sends the message again,
with the same Message-ID, and reports it as resent, so a liaison officer may discard a duplicate but
never misses an emergency. A receiving queue that deduplicates on Message-ID (most ticket mail-ins do)
shows one item. ``forget`` drops a record (an operator's decision).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import smtplib
import sqlite3
import ssl
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from casebridge.connectors import LIAISON, Connector, ConnectorConfig, Escalation, Missing, PostedEscalation
from casebridge.connectors.secrets import SecretRef
from casebridge.errors import (
    AuthenticationFailed,
    ConfigError,
    RejectedError,
    TrackerError,
    TrackerUnreachable,
    TransientError,
    redact,
)
from casebridge.state.sqlite_file import private_file
from casebridge.workflows.model import Workflow
from casebridge.workflows.render import clean_text, html_document, to_plain

log = logging.getLogger(__name__)

ADDRESS = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$"
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
SENT, SENDING = "sent", "sending"
# Headers unfolded up to RFC 5322's 998: a folded Message-ID is read back with a leading space by some parsers
_POLICY = policy.SMTP.clone(max_line_length=998)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    dedupe_key TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,          -- 'sending' until the server's 250 is recorded, then 'sent'
    subject TEXT NOT NULL,
    recipients TEXT NOT NULL,
    attempted_at TEXT NOT NULL,
    sent_at TEXT
);
"""


class EmailConfig(ConnectorConfig):
    """``[liaison]`` with ``connector = "email"``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)  # default: 587 starttls, 465 tls, 25 none
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    from_address: str = Field(alias="from", pattern=ADDRESS)
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[casebridge]"
    sent_record: str = "casebridge-mail.sqlite"  # the local record find_escalation answers from
    ca_file: str | None = None  # extra CA bundle for a server with a private certificate
    message_id_domain: str | None = None  # default: the domain of `from`
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> EmailConfig:
        for address in self.to:
            if not _is_address(address):
                raise ValueError(f"to: {address!r} is not an e-mail address")
        if (self.username is None) != (self.password is None):
            raise ValueError('give both username and password (a pointer: {env = "VAR"}), or neither')
        if self.password is not None and self.security == "none" and not _is_loopback(self.host):
            raise ValueError('a password would cross the network unencrypted; use security = "starttls" or "tls"')
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


def _is_address(text: str) -> bool:
    return re.match(ADDRESS, text) is not None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def message_id_for(dedupe_key: str, domain: str) -> str:
    """Deterministic: the same escalation always gets the same Message-ID (receivers can dedupe)."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:40]
    return f"<casebridge.{digest}@{domain}>"


def header_text(value: object, *, limit: int = 250) -> str:
    """Case data as a header value that reads back as exactly itself, on one line.

    The email library decodes RFC 2047 encoded words (``=?UTF-8?B?...?=``) when a header is set, so
    cleaning the raw text is not enough: a decoded CR/LF would end the header and start the body. The
    text is therefore decoded the way the library decodes it and cleaned (control characters, CR/LF,
    U+2028, U+0085 gone) until nothing changes; an encoded word still left (nested too deep) is broken
    up so the library has nothing more to decode."""
    text = clean_text(value, limit=limit)
    for _ in range(8):
        decoded = clean_text(_library_reads(text), limit=limit)
        if decoded == text:
            return text
        text = decoded
    text = clean_text(text.replace("=?", "= ?"), limit=limit)
    if _library_reads(text) != text:  # not reachable: no "=?" is left to decode
        raise RejectedError("a mail header could not be made safe from the case data")
    return text


def _library_reads(text: str) -> str:
    return str(_POLICY.header_factory("X-Casebridge-Probe", text))


class EmailConnector(Connector):
    """Liaison queue reached by SMTP (STARTTLS or implicit TLS; password from a secret pointer)."""

    name: ClassVar[str] = "email"
    config_model: ClassVar[type[ConnectorConfig]] = EmailConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({LIAISON})

    def __init__(self, config: EmailConfig, workflow: Workflow) -> None:
        super().__init__(config, workflow)
        self.config: EmailConfig = config
        self._db: sqlite3.Connection | None = None

    # -- the sent-record ----------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            path = Path(self.config.sent_record).expanduser()
            try:
                db = sqlite3.connect(private_file(path), isolation_level=None, timeout=30)
                db.executescript(_SCHEMA)
                db.execute("PRAGMA user_version = 1")
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"[liaison] sent_record <- cannot open {path}: {exc}") from None
            db.row_factory = sqlite3.Row
            self._db = db
        return self._db

    def find_escalation(self, dedupe_key: str) -> PostedEscalation | None:
        """From the sent-record: only a send the server confirmed (its 250 to DATA) counts."""
        row = self._row(dedupe_key)
        if row is None or row["status"] != SENT:
            return None
        return PostedEscalation(dedupe_key, row["message_id"], None, _parse(row["sent_at"] or row["attempted_at"]))

    def _row(self, dedupe_key: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute("SELECT * FROM sent WHERE dedupe_key = ?", (dedupe_key,)).fetchone()
        return row

    def forget(self, dedupe_key: str) -> bool:
        """Drop the record of ``dedupe_key`` so the next run sends it again (an operator's decision)."""
        return self.db.execute("DELETE FROM sent WHERE dedupe_key = ?", (dedupe_key,)).rowcount > 0

    # -- posting ------------------------------------------------------------------------------------
    def build_message(self, escalation: Escalation, *, at: datetime) -> EmailMessage:
        domain = self.config.message_id_domain or self.config.from_address.rsplit("@", 1)[1]
        title = header_text(f"{self.config.subject_prefix} {escalation.title}".strip(), limit=250)
        msg = EmailMessage(policy=_POLICY)
        msg["Subject"] = title
        msg["From"] = self.config.from_address
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = format_datetime(at.astimezone(UTC))
        msg["Message-ID"] = message_id_for(escalation.dedupe_key, domain)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to the tool
        msg["X-Casebridge-Dedupe-Key"] = header_text(escalation.dedupe_key)
        msg["X-Casebridge-Case"] = header_text(escalation.case_reference)
        msg["X-Casebridge-Level"] = str(escalation.level)
        msg.set_content(to_plain(escalation.markdown), cte="quoted-printable")
        msg.add_alternative(html_document(escalation.markdown, title), subtype="html", cte="quoted-printable")
        return msg

    def post_escalation(self, escalation: Escalation) -> PostedEscalation:
        """Send one message; it counts as posted only once the server answered 250 to its DATA.

        A send that was started and never confirmed (the process died, or the connection dropped after
        the data went out) is sent again with the same Message-ID and reported as ``resent``: the NCB
        may receive it twice and can discard one; it never loses it. Configuration errors (no password,
        a password SMTP cannot carry) are raised before any record is written.
        Raises ConfigError, AuthenticationFailed, TrackerUnreachable, RejectedError, TransientError."""
        existing = self.find_escalation(escalation.dedupe_key)
        if existing is not None:
            return existing
        unconfirmed = self._row(escalation.dedupe_key)
        now = datetime.now(UTC)
        msg = self.build_message(escalation, at=now)
        try:
            with self._session() as smtp:
                self._record_intent(escalation.dedupe_key, msg, now)  # logged in: only DATA is left
                self._send(smtp, msg)
        except _Undelivered as exc:
            if unconfirmed is None:
                self.forget(escalation.dedupe_key)  # the server certainly did not accept it
            raise exc.error from None
        self.db.execute(
            "UPDATE sent SET status = ?, sent_at = ? WHERE dedupe_key = ?", (SENT, _iso(now), escalation.dedupe_key)
        )
        if unconfirmed is not None:
            log.warning(
                "escalation %s: a send started at %s was never confirmed; sent again as %s (the NCB may "
                "receive it twice with the same Message-ID)",
                escalation.dedupe_key,
                unconfirmed["attempted_at"],
                msg["Message-ID"],
            )
        log.info("escalation %s mailed to %s as %s", escalation.dedupe_key, msg["To"], msg["Message-ID"])
        return PostedEscalation(escalation.dedupe_key, msg["Message-ID"], None, now, resent=unconfirmed is not None)

    def _record_intent(self, dedupe_key: str, msg: EmailMessage, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO sent (dedupe_key, message_id, status, subject, recipients, attempted_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO UPDATE SET status = excluded.status",
            (dedupe_key, msg["Message-ID"], SENDING, msg["Subject"], ", ".join(self.config.to), _iso(now)),
        )

    def check_schema(self) -> list[Missing]:
        """Connect, negotiate TLS and log in without sending. Raises AuthenticationFailed, TrackerUnreachable."""
        try:
            with self._session():
                pass
        except _Undelivered as exc:
            raise exc.error from None
        return []

    # -- SMTP -------------------------------------------------------------------------------------
    def _session(self) -> _Session:
        return _Session(self.config)

    def _send(self, smtp: smtplib.SMTP, msg: EmailMessage) -> None:
        try:
            refused = smtp.send_message(msg, self.config.from_address, self.config.to)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _Undelivered(RejectedError(f"{self._where()}: every recipient was refused: {_codes(exc)}")) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _Undelivered(_reply_error(self._where(), exc)) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise TransientError(
                f"{self._where()}: connection lost while sending ({type(exc).__name__}); the message may have "
                "been accepted: the next run sends it again with the same Message-ID"
            ) from None
        if refused:
            log.warning("%s refused some recipients: %s", self._where(), ", ".join(sorted(refused)))

    def _where(self) -> str:
        return f"SMTP {self.config.host}:{self.config.effective_port}"

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class _Undelivered(Exception):
    """The server certainly did not take the message (so the intent record can be dropped)."""

    def __init__(self, error: TrackerError) -> None:
        super().__init__(str(error))
        self.error = error


class _Session:
    """An authenticated SMTP connection; every failure before DATA is ``_Undelivered``."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.where = f"SMTP {config.host}:{config.effective_port}"
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> smtplib.SMTP:
        cfg = self.config
        password = self._password()  # a configuration error is raised before any connection or record
        context = ssl.create_default_context(cafile=cfg.ca_file)
        smtp: smtplib.SMTP
        try:
            if cfg.security == "tls":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.effective_port, timeout=cfg.timeout, context=context)
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.effective_port, timeout=cfg.timeout)
            self.smtp = smtp
            smtp.ehlo()
            if cfg.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise _Undelivered(
                        RejectedError(
                            f'{self.where} does not offer STARTTLS; set security = "tls" '
                            "if it speaks TLS on connect, or fix the server"
                        )
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.username and password is not None:
                smtp.login(cfg.username, password)
        except _Undelivered:
            self._quit()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self._quit()
            raise _Undelivered(
                AuthenticationFailed(
                    f"{self.where} refused the login of {cfg.username!r} "
                    f"({exc.smtp_code}); check [liaison] username and password"
                )
            ) from None
        except ssl.SSLCertVerificationError as exc:
            self._quit()
            raise _Undelivered(
                TrackerUnreachable(
                    f"{self.where}: TLS certificate not trusted ({exc.verify_message}); "
                    "set [liaison] ca_file to the server's CA"
                )
            ) from None
        except smtplib.SMTPResponseException as exc:
            self._quit()
            raise _Undelivered(_reply_error(self.where, exc)) from None
        except smtplib.SMTPNotSupportedError as exc:
            self._quit()
            raise _Undelivered(RejectedError(f"{self.where}: {exc}; check [liaison] security and username")) from None
        except (OSError, smtplib.SMTPException) as exc:  # refused, DNS, timeout, TLS handshake, dropped
            self._quit()
            detail = redact(str(exc)) or type(exc).__name__
            raise _Undelivered(TrackerUnreachable(f"{self.where} could not be reached: {detail}")) from None
        return smtp

    def _password(self) -> str | None:
        if not (self.config.username and self.config.password):
            return None
        password = self.config.password.resolve(field="[liaison] password")
        if not password.isascii() or not (self.config.username or "").isascii():
            raise ConfigError(
                "[liaison] password <- SMTP AUTH can only carry ASCII user names and passwords; "
                "set an ASCII password for the mail account"
            )
        return password

    def __exit__(self, *exc: object) -> None:
        self._quit()

    def _quit(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None


def _reply_error(where: str, exc: smtplib.SMTPResponseException) -> TrackerError:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    message = f"{where} answered {exc.smtp_code}: {redact(clean_text(text, limit=200))}"
    return TransientError(message) if 400 <= exc.smtp_code < 500 else RejectedError(message)


def _codes(exc: smtplib.SMTPRecipientsRefused) -> str:
    return ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in sorted(exc.recipients.items()))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


__all__ = ["EmailConfig", "EmailConnector", "message_id_for"]
