"""casebridge.toml: find it, validate all of it in one place, say where every file lives.

Lookup order: ``--config PATH``, else ``$CASEBRIDGE_CONFIG``, else ``./casebridge.toml``, else the
embedded defaults. With a config file, relative paths in it resolve against the file's directory, never
the working directory. Without one, the embedded tracker lives in the per-user data directory and the
state store, audit log and lock in the per-user state directory (platformdirs: ``~/.local/share`` and
``~/.local/state`` on Linux, ``$XDG_DATA_HOME``/``$XDG_STATE_HOME`` when set), so every working directory
sees the same cases. Errors read ``FILE: dotted.key <- problem``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casebridge.connectors import CASES, LIAISON, Connector, connector_class, make_connector
from casebridge.errors import ConfigError, validation_problem
from casebridge.state.sqlite_file import private_dirs
from casebridge.workflows import DEFAULT_WORKFLOW, load_workflow, read_toml, resolve_workflow_path
from casebridge.workflows.counting import attach_establishments
from casebridge.workflows.directory import Directory, load_directory
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)

ENV_VAR = "CASEBRIDGE_CONFIG"
DEFAULT_FILE = "casebridge.toml"
PATH_KEYS = ("path", "state", "audit", "sent_record")
APP_NAME = "casebridge"
EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"  # shipped inside the package
SEE_EXAMPLE = "`casebridge config example` prints every key, commented"


class SyncSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    overlap: str = "2m"  # re-read cases updated this long before the watermark (clock skew, paging races)
    safety_valve: int = Field(default=20, ge=1)  # refuse an empty fetch when the store knows this many cases
    escalate: bool = False  # `sync` also runs `escalate --yes` (same as `sync --escalate`)


class ProviderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    extra: list[str] = Field(default_factory=list)  # agency directory files: add or override shipped entries


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    workflow: str = DEFAULT_WORKFLOW
    state: str = "casebridge-state.db"
    audit: str | None = None  # default: <state stem>.audit.db beside the state store
    tracker: dict[str, Any] = Field(default_factory=lambda: {"connector": "local"})
    liaison: dict[str, Any] | None = None
    escalation: dict[str, Any] = Field(default_factory=dict)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)


@dataclass
class Settings:
    """The loaded configuration: validated app config, where it came from and where its files live."""

    app: AppConfig
    source: Path | None  # the config file, or None for the embedded defaults
    data_dir: Path  # relative tracker paths (the embedded tracker's file) resolve here
    state_dir: Path  # the state store, audit log and run lock
    _workflow: Workflow | None = field(default=None, repr=False)
    _directory: Directory | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return str(self.source) if self.source is not None else "(embedded defaults)"

    @property
    def state_path(self) -> Path:
        return self.state_dir / Path(self.app.state).expanduser()

    @property
    def audit_path(self) -> Path:
        """``audit`` when configured, else ``<state file stem>.audit.db`` next to the state store."""
        if self.app.audit:
            return self.state_dir / Path(self.app.audit).expanduser()
        return self.state_path.with_name(self.state_path.stem + ".audit.db")

    @property
    def lock_path(self) -> Path:
        return self.state_path.with_name(self.state_path.name + ".lock")

    def tracker_label(self) -> str:
        """The tracker as a person recognises it: the embedded tracker's file, or the connector's URL."""
        raw = self.app.tracker
        where = self.connector_paths("tracker").get("path") or raw.get("url") or ""
        return f"the {raw.get('connector', '?')} tracker {where}".rstrip()

    def workflow(self) -> Workflow:
        if self._workflow is None:
            name = self.app.workflow
            if name not in ("", DEFAULT_WORKFLOW) and not Path(name).is_absolute():
                candidate = (self.source.parent if self.source else Path.cwd()) / name
                if candidate.is_file():
                    name = str(candidate)
            resolve_workflow_path(name)
            # law-counted periods are counted on the provider's EU establishment's calendar: the
            # directory is read only when such a clock first asks (start-up stays fast)
            self._workflow = attach_establishments(load_workflow(name), self.directory)
        return self._workflow

    def directory(self) -> Directory:
        """The provider directory: shipped entries plus ``[providers] extra`` (relative to this file)."""
        if self._directory is None:
            extra = [self.base_dir / Path(p).expanduser() for p in self.app.providers.extra]
            self._directory = load_directory(extra)
        return self._directory

    def tracker(self) -> Connector:
        return self._connector("tracker", dict(self.app.tracker), CASES)

    def liaison(self) -> Connector:
        """The liaison queue: ``[liaison]`` if configured, else the tracker itself."""
        if self.app.liaison is None:
            return self._connector("tracker", dict(self.app.tracker), LIAISON)
        return self._connector("liaison", dict(self.app.liaison), LIAISON)

    def connector_paths(self, section: str) -> dict[str, Path]:
        """The files a connector section names (the embedded tracker's, the mail sent-record), resolved
        against the data folder; a file the section leaves at its connector's default too."""
        raw = self.app.tracker if section == "tracker" else (self.app.liaison or {})
        fields = connector_class(raw["connector"]).config_model.model_fields if raw.get("connector") else {}
        paths = {}
        for key in PATH_KEYS:
            value = raw.get(key, fields[key].default if key in fields else None)
            if isinstance(value, str):
                paths[key] = self.data_dir / Path(value).expanduser()
        return paths

    def prepare_dirs(self) -> None:
        """Create the folders of every file a writing command may create, private (0700)."""
        paths = [self.state_path, self.audit_path, *self.connector_paths("tracker").values()]
        if self.app.liaison is not None:
            paths += self.connector_paths("liaison").values()
        for folder in {p.parent for p in paths}:
            private_dirs(folder)

    def validate(self) -> None:
        """Build everything the file names (workflow, connectors without network, escalation and sync
        settings), so a bad section fails before any command writes. Raises ConfigError/WorkflowError."""
        from casebridge.workflows.escalation import EscalationConfig
        from casebridge.workflows.schema import parse_duration

        self.workflow()
        self.tracker().close()
        if self.app.liaison is not None:
            self.liaison().close()
        try:
            parse_duration(self.app.sync.overlap)
        except ValueError as exc:
            raise ConfigError(f"{self.label}: sync.overlap <- {exc}") from None
        try:
            EscalationConfig.from_raw(self.app.escalation)
        except ConfigError as exc:
            raise ConfigError(f"{self.label}: {exc}") from None

    def _connector(self, section: str, raw: dict[str, Any], capability: str) -> Connector:
        name = raw.pop("connector", None)
        if not name:
            raise ConfigError(f'{self.label}: {section}.connector <- required (e.g. "local", "redmine", "jira")')
        raw.update({key: str(path) for key, path in self.connector_paths(section).items()})
        try:
            connector = make_connector(name, raw, self.workflow(), section=section)
        except ConfigError as exc:
            raise ConfigError(f"{self.label}: {exc}") from None
        if capability not in connector.capabilities:
            raise ConfigError(f"{self.label}: {section}.connector <- {name!r} cannot act as {capability} target")
        return connector


def find_config_file(explicit: str | None) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file ({SEE_EXAMPLE})")
        return path
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file (named by ${ENV_VAR})")
        return path
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else None


def user_dirs() -> tuple[Path, Path]:
    """(data dir, state dir) of the embedded defaults."""
    import platformdirs

    return platformdirs.user_data_path(APP_NAME), platformdirs.user_state_path(APP_NAME)


def load_settings(explicit: str | None = None) -> Settings:
    """Raises ConfigError with the file and ``dotted.key <- problem``."""
    path = find_config_file(explicit)
    if path is None:
        data_dir, state_dir = user_dirs()
        return Settings(app=AppConfig(), source=None, data_dir=data_dir, state_dir=state_dir)
    data = read_toml(path, str(path), ConfigError)
    try:
        app = AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problem(exc, AppConfig)} ({SEE_EXAMPLE})") from None
    folder = path.resolve().parent
    return Settings(app=app, source=path, data_dir=folder, state_dir=folder)
