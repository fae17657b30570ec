"""casebridge.toml: find it, validate it in one place, build the workflow and connectors it names.

Lookup order: ``--config PATH``, else ``$CASEBRIDGE_CONFIG``, else ``./casebridge.toml``, else the
embedded defaults (the embedded SQLite tracker in the current directory). Relative paths in the file
are relative to the file's directory. Errors read ``FILE: [section] key <- problem``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casebridge.connectors import CASES, LIAISON, Connector, make_connector
from casebridge.errors import ConfigError
from casebridge.workflows import DEFAULT_WORKFLOW, load_workflow, read_toml, resolve_workflow_path
from casebridge.workflows.directory import Directory, load_directory
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)

ENV_VAR = "CASEBRIDGE_CONFIG"
DEFAULT_FILE = "casebridge.toml"
PATH_KEYS = ("path", "state", "audit", "sent_record")


class SyncSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap: str = "2m"  # re-read cases updated this long before the watermark (clock skew, paging races)
    safety_valve: int = Field(default=20, ge=1)  # refuse an empty fetch when the store knows this many cases
    escalate: bool = False  # `sync` also runs `escalate --yes` (same as `sync --escalate`)


class ProviderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    extra: list[str] = Field(default_factory=list)  # agency directory files: add or override shipped entries


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    """The loaded configuration: validated app config plus where it came from."""

    app: AppConfig
    source: str  # file path, or "(embedded defaults)"
    base_dir: Path
    _workflow: Workflow | None = field(default=None, repr=False)
    _directory: Directory | None = field(default=None, repr=False)

    @property
    def state_path(self) -> Path:
        return self.base_dir / self.app.state

    def workflow(self) -> Workflow:
        if self._workflow is None:
            name = self.app.workflow
            if name not in ("", DEFAULT_WORKFLOW) and not Path(name).is_absolute():
                candidate = self.base_dir / name
                if candidate.is_file():
                    name = str(candidate)
            resolve_workflow_path(name)
            self._workflow = load_workflow(name)
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

    def _connector(self, section: str, raw: dict[str, Any], capability: str) -> Connector:
        name = raw.pop("connector", None)
        if not name:
            raise ConfigError(f'{self.source}: [{section}] connector <- required (e.g. "local", "redmine", "jira")')
        for key in PATH_KEYS:
            if isinstance(raw.get(key), str):
                raw[key] = str(self.base_dir / Path(raw[key]).expanduser())
        try:
            connector = make_connector(name, raw, self.workflow(), section=section)
        except ConfigError as exc:
            raise ConfigError(f"{self.source}: {exc}") from None
        if capability not in connector.capabilities:
            raise ConfigError(f"{self.source}: [{section}] connector <- {name!r} cannot act as {capability} target")
        return connector


def find_config_file(explicit: str | None) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file (see config.example.toml)")
        return path
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file (named by ${ENV_VAR})")
        return path
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else None


def load_settings(explicit: str | None = None) -> Settings:
    """Raises ConfigError with the file and ``[section] key <- problem``."""
    path = find_config_file(explicit)
    if path is None:
        return Settings(app=AppConfig(), source="(embedded defaults)", base_dir=Path.cwd())
    data = read_toml(path, str(path), ConfigError)
    try:
        app = AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None
    return Settings(app=app, source=str(path), base_dir=path.resolve().parent)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    where = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else (loc[0] if loc else "(top level)")
    message = "unknown key (see config.example.toml)" if first["type"] == "extra_forbidden" else first["msg"]
    return f"{where} <- {message}"
