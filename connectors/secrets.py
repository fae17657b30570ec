"""Secrets as pointers: config names an environment variable, a command, a file or a systemd credential,
never the secret itself.

Every resolved secret is registered with ``casebridge.errors.remember`` so that log records and error messages that
happen to contain it are masked at every verbosity.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from casebridge.errors import SecretError, redact, remember

log = logging.getLogger(__name__)


CREDENTIALS_DIR = "CREDENTIALS_DIRECTORY"  # set by systemd for a unit with LoadCredential=


class SecretRef(BaseModel):
    """Where a secret is, never the secret: exactly one of
    ``{env = "VAR"}``, ``{command = "pass show casebridge/redmine"}``, ``{file = "/run/secrets/key"}`` or
    ``{credential = "redmine-key"}`` (systemd ``LoadCredential=``: ``$CREDENTIALS_DIRECTORY/NAME``).

    A secret is one line: the first line of what the pointer yields (``pass`` stores the password on
    the first line and notes after it), surrounding whitespace stripped."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    env: str | None = None
    command: str | None = None
    file: str | None = None
    credential: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [v for v in (self.env, self.command, self.file, self.credential) if v is not None]
        if len(given) != 1:
            raise ValueError(
                'give exactly one of env = "VAR", command = "...", file = "PATH" or credential = "NAME" '
                "(never the secret itself)"
            )
        if self.credential is not None and ("/" in self.credential or self.credential in ("", ".", "..")):
            raise ValueError("credential is a systemd credential NAME, not a path")
        return self

    def describe(self) -> str:
        if self.env is not None:
            return f"environment variable {self.env}"
        if self.command is not None:
            return f"command `{self.command}`"
        if self.file is not None:
            return f"file {self.file}"
        return f"systemd credential {self.credential}"

    def resolve(self, *, field: str) -> str:
        """The secret's value. Raises SecretError naming ``field`` and the pointer, never the value."""
        if self.env is not None:
            raw = os.environ.get(self.env, "")
            if not raw.strip():
                raise SecretError(
                    f"{field}: environment variable {self.env} is not set; export it or use another pointer"
                )
        elif self.command is not None:
            raw = _run_command(self.command, field)
        else:
            raw = _read_file(self._path(field), field, self.describe())
        value = first_line(raw)
        if not value:
            raise SecretError(f"{field}: {self.describe()} gave an empty first line; the secret goes on the first line")
        remember(value)
        return value

    def _path(self, field: str) -> Path:
        if self.file is not None:
            return Path(self.file).expanduser()
        folder = os.environ.get(CREDENTIALS_DIR)
        if not folder:
            raise SecretError(
                f"{field}: systemd credential {self.credential}: ${CREDENTIALS_DIR} is not set "
                "(run under a unit with LoadCredential=, or use env/file/command)"
            )
        return Path(folder) / str(self.credential)


def first_line(raw: str) -> str:
    """The secret in ``raw``: its first line, stripped (the rest never leaves this function)."""
    return raw.strip().splitlines()[0].strip() if raw.strip() else ""


def _read_file(path: Path, field: str, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(f"{field}: {what} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"{field}: {what} could not be read ({type(exc).__name__})") from None


def _run_command(command: str, field: str) -> str:
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise SecretError(f"{field}: secret command `{command}` could not run ({type(exc).__name__})") from None
    if done.returncode != 0 or not done.stdout.strip():
        # stderr is not shown: a password manager may echo the secret on failure
        raise SecretError(f"{field}: secret command `{command}` exited {done.returncode} with no secret on stdout")
    return done.stdout


class RedactingFilter(logging.Filter):
    """Masks known secrets in every record passing through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def _no_credentials(url: str) -> str:
    """A tracker URL carries no user name or password: those would be printed with every message,
    link and audit record that names the URL. (The error never repeats the URL.)"""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL with a host, e.g. https://redmine.agency.example")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(
            "holds a user name or password; remove them and name the secret with a pointer "
            '(api_key = { env = "..." }, see `casebridge config example`)'
        )
    return url.rstrip("/")


# A tracker's base URL: http(s), a host, no credentials inside.
TrackerUrl = Annotated[str, AfterValidator(_no_credentials)]
