"""The casebridge command line. This is the only place errors become messages and exit codes.

A ``UserError`` is one line with no traceback unless ``-v``; every message passes through
``casebridge.errors.redact`` so no token reaches the terminal or the logs.

Exit codes (one meaning each, README "Exit codes"): 0 ok; 1 some cases failed or were blocked; 2 usage,
config or input error; 3 tracker unreachable or refused. A closed pipe (``status | head``) exits quietly.
"""

from __future__ import annotations

import errno
import gc
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from casebridge.errors import EXIT_CASES_FAILED, EXIT_USAGE, CasebridgeError, UserError, redact

if TYPE_CHECKING:
    from casebridge.cli.config import Settings
    from casebridge.connectors import Connector
    from casebridge.state.audit import AuditLog

log = logging.getLogger(__name__)


class Context:
    """Shared options: where the config is and how chatty to be."""

    def __init__(self, config_path: str | None, verbose: int, quiet: bool) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self.quiet = quiet
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The configuration, validated as a whole (every section) before any command uses it."""
        if self._settings is None:
            from casebridge.cli.config import load_settings

            settings = load_settings(self.config_path)
            log.info("config: %s; state: %s", settings.label, settings.state_path)
            settings.validate()
            self._settings = settings
        return self._settings

    def audit_log(self, *, check: bool = True) -> AuditLog:
        """The audit log, its head anchored in the state store. Raises AuditAnchorMismatch (unless
        ``check=False``: verify, export, reset) when the log no longer holds the anchored head."""
        from casebridge.state.audit import AuditLog
        from casebridge.state.audit_anchor import AuditAnchor

        self.settings.prepare_dirs()
        key = self.settings.audit_seal_key()
        return AuditLog(self.settings.audit_path, AuditAnchor(self.settings.state_path), check=check, seal_key=key)

    def say(self, text: str) -> None:
        """Progress and results for a person: silent under -q (cron mails only what -q lets through)."""
        if not self.quiet:
            click.echo(text)


F = TypeVar("F", bound=Callable[..., Any])
pass_ctx = click.make_pass_decorator(Context)


def empty_tracker_hint(settings: Settings) -> str:
    return (
        f"no cases yet in {settings.tracker_label()} (config: {settings.label}); "
        "import some with `casebridge intake FILE` (see examples/cases.json)"
    )


def parse_now(value: str | None, option: str = "--now") -> datetime:
    """``--now`` (or ``option``) for replays: an ISO 8601 timestamp with an offset (default: the real time)."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not ISO 8601 (e.g. 2026-12-01T09:00:00Z)", param_hint=option) from None
    if moment.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no offset; add Z or +05:00", param_hint=option)
    return moment


def with_clock(connector: Connector, now: datetime) -> Connector:
    """The connector, stamping its writes with ``now``: the embedded tracker then records --now, so a
    replay produces the same history (remote trackers stamp their own time and ignore it)."""
    connector.use_clock(lambda: now)
    return connector


@contextmanager
def no_collection() -> Iterator[None]:
    """The cyclic garbage collector off: 100,000 stored cases are millions of objects that live until the
    command has printed them and form no cycles, and each collection only walked them (about 0.2 s of
    ``status`` at 100,000 cases). On again after, if it was on: by then the cases are freed (what was
    allocated meanwhile and is still alive is what the next collection walks)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def now_option(func: F) -> F:
    return click.option("--now", "now", metavar="ISO", help="Evaluate at this time (replays); default: now.")(func)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    from casebridge.connectors.secrets import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # python-redmine/jira/urllib3 log request details at DEBUG; keep them one level quieter than ours
    for noisy in ("urllib3", "requests_oauthlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


class ClosedPipe(Exception):
    """stdout's reader went away. Raised past click, whose own handling would exit 1."""


# Each command's module and the first paragraph of its help. Commands are imported when they run, so
# `casebridge --help` lists them from here without importing pydantic models, connectors or Markdown
# (tests/test_cli.py checks this table against the commands themselves).
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("audit_cmds", "The audit log of every write (intake, SLA fields, transitions, comments, escalations)."),
    "check": (
        "sync_cmds",
        "Check that the tracker (and the liaison queue) has every field, status and transition needed.",
    ),
    "config": ("info_cmds", "The configuration file."),
    "escalate": (
        "escalate_cmds",
        "Post every breached clock whose policy escalates to the NCB liaison queue, exactly once.",
    ),
    "extend": (
        "change_cmds",
        "Record an extension of CLOCK (e.g. preservation) that the case's policy allows.",
    ),
    "find": (
        "find_cmds",
        'List every case naming IDENTIFIER (phone, e-mail, URL, IP, username...), normalised: "+92 300\n    '
        '1234567" finds "0092-300-1234567". Reads the sync job\'s cache (one listing when it is empty).',
    ),
    "info": (
        "info_cmds",
        "Which config file is in force (or the embedded defaults), the tracker, the workflow and every file "
        "casebridge reads or writes.",
    ),
    "intake": (
        "intake_cmds",
        "Import cases from CSV or JSON files (the reference is the key: re-importing changes nothing).",
    ),
    "providers": ("provider_cmds", "The provider directory: legal entities, request channels, sources."),
    "report": (
        "report_cmds",
        "Which providers answer, how fast, and why they refuse: per provider, legal basis, request type, "
        "agency or month. Compliance % = met / (met + breached) over legal deadlines (printed with the report).",
    ),
    "setup": (
        "sync_cmds",
        "Print (or with --apply, perform) what makes a configured tracker or liaison TARGET ready.",
    ),
    "status": ("cases_cmds", "Show every case's clocks (or only REFERENCES), evaluated at --now."),
    "sync": ("sync_cmds", "Evaluate every open case's clocks and write the SLA fields that changed."),
    "transition": (
        "change_cmds",
        "Move a case to STATE (embedded tracker; in Jira and Redmine people move cases in the tracker).",
    ),
    "workflow": ("workflow_cmds", "Validate and draw workflow definitions."),
}


class CasebridgeGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            load_commands(COMMANDS[cmd_name][0])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a command not imported yet is listed with its help from ``COMMANDS``."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None:
                rows.append((name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise ClosedPipe() from None
            raise


GLOBAL_FLAGS = {"-v": 1, "-vv": 2, "-vvv": 3, "--verbose": 1, "-q": 0, "--quiet": 0}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Global options are accepted after the subcommand too (`casebridge sync -q`): move them in front.
    Only before a ``--``; values of ``--config`` travel with it."""
    front: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest += [arg, *args]
            break
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif arg == "--config":
            front += [arg, next(args, "")]
        elif arg.startswith("--config="):
            front.append(arg)
        else:
            rest.append(arg)
    return front + rest


@click.group(cls=CasebridgeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (else $CASEBRIDGE_CONFIG, ./casebridge.toml, else embedded defaults in the user's folders).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v: also the config used, and tracebacks).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings (for cron): a healthy run prints nothing.")
@click.version_option(None, "-V", "--version", package_name="casebridge")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, quiet: bool) -> None:
    """casebridge: deadlines of cross-border data requests, tracked inside Jira and Redmine.

    Exit codes: 0 ok, 1 some cases failed or were blocked, 2 usage/config/input error,
    3 tracker unreachable or refused.
    """
    _setup_logging(verbose, quiet)
    ctx.obj = Context(config_path, verbose, quiet)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn errors into one-line messages and exit codes."""
    # A pass over 100,000 cases holds millions of objects until it ends; with the default thresholds the
    # collector re-scans them again and again (1.3-1.7x the pass). Few of them form cycles.
    gc.set_threshold(100_000, 50, 100)
    args = hoist_global_options(list(argv if argv is not None else sys.argv[1:]))
    verbose = any(a in ("-v", "-vv", "-vvv", "--verbose") for a in args)
    try:
        code = cli.main(args=args, prog_name="casebridge", standalone_mode=False)
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
    except ClosedPipe:
        code = _closed_pipe()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            code = _closed_pipe()
        else:
            _show_error(UserError(_os_problem(exc)), verbose)
            code = EXIT_USAGE
    except Exception as exc:
        if verbose:
            raise
        click.echo(
            f"casebridge: internal error: {redact(type(exc).__name__ + ': ' + str(exc))} (run with -v)", err=True
        )
        code = EXIT_CASES_FAILED
    sys.exit(code or 0)


def _closed_pipe() -> int:
    """The reader went away (`status | head`): not an error. Point stdout at /dev/null so the
    interpreter's final flush does not print a second complaint."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ is not None else 1)
    return 0


def _os_problem(exc: OSError) -> str:
    """A disk full, read-only or permission problem as one line naming the file."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}; check the disk and the folder's permissions"


def _show_error(exc: CasebridgeError, verbose: bool) -> None:
    if verbose:
        import traceback

        click.echo(redact("".join(traceback.format_exception(exc))), err=True)
    click.echo(f"casebridge: {redact(str(exc))}", err=True)


def load_commands(module_name: str) -> None:
    """Import ``casebridge.cli.MODULE`` and add its commands to the group."""
    module = importlib.import_module(f"casebridge.cli.{module_name}")
    for command in module.COMMANDS:
        cli.add_command(command)
