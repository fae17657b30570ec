"""Secrets as pointers: config names an environment variable or a command, never the secret itself.

Every resolved secret is registered with ``casebridge.errors.remember`` so that log records and error messages that
happen to contain it are masked at every verbosity.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess

from pydantic import BaseModel, ConfigDict, model_validator

from casebridge.errors import SecretError, redact, remember

log = logging.getLogger(__name__)


class SecretRef(BaseModel):
    """``{env = "REDMINE_KEY"}`` or ``{command = "pass show casebridge/redmine"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    command: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.command is None):
            raise ValueError('give exactly one of env = "VAR" or command = "..." (never the secret itself)')
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"command `{self.command}`"

    def resolve(self, *, field: str) -> str:
        """The secret's value. Raises SecretError naming ``field`` and the pointer, never the value."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
            if not value:
                raise SecretError(
                    f"{field}: environment variable {self.env} is not set; export it or use command = ..."
                )
        else:
            value = _run_command(self.command or "", field)
        remember(value)
        return value


def _run_command(command: str, field: str) -> str:
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SecretError(f"{field}: secret command `{command}` could not run ({type(exc).__name__})") from None
    value = done.stdout.strip()
    if done.returncode != 0 or not value:
        # stderr is not shown: a password manager may echo the secret on failure
        raise SecretError(f"{field}: secret command `{command}` exited {done.returncode} with no secret on stdout")
    return value


class RedactingFilter(logging.Filter):
    """Masks known secrets in every record passing through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
