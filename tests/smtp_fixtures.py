"""The real SMTP server fixtures of tests/test_email.py (aiosmtpd on loopback, STARTTLS + AUTH, a
certificate generated per run) for other test modules: ``pytest_plugins = ["tests.smtp_fixtures"]``."""

from __future__ import annotations

from tests.test_email import cert, starttls_server

__all__ = ["cert", "starttls_server"]
