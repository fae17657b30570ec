"""The casebridge command line. This is the only place errors become messages and exit codes.

A ``UserError`` is one line with no traceback unless ``-v``; every message passes through
``connectors.secrets.redact`` so no token reaches the terminal or the logs.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import click

from casebridge.connectors.secrets import RedactingFilter
from casebridge.errors import EXIT_CASES_FAILED, EXIT_USAGE, CasebridgeError, UserError, redact

log = logging.getLogger(__name__)


class Context:
    """Shared options: where the config is and how chatty to be."""

    def __init__(self, config_path: str | None, verbose: int, quiet: bool) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self.quiet = quiet
        self._settings = None

    @property
    def settings(self):
        if self._settings is None:
            from casebridge.cli.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings


pass_ctx = click.make_pass_decorator(Context)


def parse_now(value: str | None) -> datetime:
    """``--now`` for replays: an ISO 8601 timestamp with an offset (default: the real time)."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not ISO 8601 (e.g. 2026-12-01T09:00:00Z)", param_hint="--now") from None
    if moment.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no offset; add Z or +05:00", param_hint="--now")
    return moment


def now_option(func):
    return click.option("--now", "now", metavar="ISO", help="Evaluate at this time (replays); default: now.")(func)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # python-redmine/jira/urllib3 log request details at DEBUG; keep them one level quieter than ours
    for noisy in ("urllib3", "requests_oauthlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_path", metavar="PATH", help="Config file (else $CASEBRIDGE_CONFIG, ./casebridge.toml)."
)
@click.option("-v", "--verbose", count=True, help="More log output; -v also shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="casebridge")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, quiet: bool) -> None:
    """casebridge: deadlines of cross-border data requests, tracked inside Jira and Redmine."""
    _setup_logging(verbose, quiet)
    ctx.obj = Context(config_path, verbose, quiet)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn errors into one-line messages and exit codes."""
    verbose = any(a in ("-v", "-vv", "--verbose") for a in (argv if argv is not None else sys.argv[1:]))
    try:
        code = cli.main(args=argv, prog_name="casebridge", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = EXIT_CASES_FAILED
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if exc.exit_code == 1 else exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except UserError as exc:
        _show_error(exc, verbose)
        code = exc.exit_code
    except CasebridgeError as exc:
        _show_error(exc, verbose)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = 130
    except Exception as exc:
        if verbose:
            raise
        click.echo(
            f"casebridge: internal error: {redact(type(exc).__name__ + ': ' + str(exc))} (run with -v)", err=True
        )
        code = EXIT_CASES_FAILED
    sys.exit(code or 0)


def _show_error(exc: CasebridgeError, verbose: bool) -> None:
    if verbose:
        import traceback

        click.echo(redact("".join(traceback.format_exception(exc))), err=True)
    click.echo(f"casebridge: {redact(str(exc))}", err=True)


def _register() -> None:
    from casebridge.cli import (
        audit_cmds,
        cases_cmds,
        escalate_cmds,
        find_cmds,
        provider_cmds,
        sync_cmds,
        workflow_cmds,
    )

    for module in (cases_cmds, workflow_cmds, sync_cmds, escalate_cmds, audit_cmds, provider_cmds, find_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
