"""The wheel as a user installs it: one top-level name, the default workflow inside, and a working CLI
next to PyPI's namesakes of the old top-level packages (``workflows``, ``connectors``, ``state``, ``sync``).

The wheel is built offline from a copy of the checkout (``--no-build-isolation``: the test extra pins a
setuptools that builds wheels) and installed NON-editable into a target directory beside dummy packages
with those names. A fresh ``--without-pip`` venv sees that directory first and this venv's site-packages
(for click, pydantic, ...) as plain paths: a plain path line in a ``.pth`` file does not run the
editable install's finder, which would map ``casebridge`` back to the checkout. The test asserts that the
modules really come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMESAKES = ("workflows", "connectors", "state", "sync")
NOW = "--now=2026-12-01T09:00:00Z"


def _build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    junk = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(REPO, source, ignore=junk)
    dist = tmp / "dist"
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run([*pip, "-w", str(dist), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("casebridge-*.whl")
    return wheel


def _install(wheel: Path, tmp: Path) -> tuple[Path, Path]:
    """(target directory with the wheel and the namesakes, the python that sees it)."""
    target = tmp / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target)]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=300)
    for name in NAMESAKES:  # what `pip install workflows connectors state sync` would put beside it
        (target / name).mkdir()
        (target / name / "__init__.py").write_text(f'"""Not casebridge: PyPI\'s {name}."""\nNAMESAKE = True\n')
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")  # click, pydantic, ... of the test venv (plain path: no finder)
    Path(site, "casebridge-test.pth").write_text(f"{target}\n{ours}\n")
    return target, python


def _run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CASEBRIDGE"))}
    return subprocess.run(
        [str(python), "-I", *args],
        cwd=cwd,
        env=env | {"HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_wheel_has_one_top_level_name_and_works_beside_pypi_namesakes(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"casebridge"}, top
    assert "casebridge/workflows/lawful-access.toml" in names
    assert "casebridge/workflows/providers/meta.toml" in names  # the provider directory ships
    assert not [n for n in names if n.startswith(("casebridge/tests/", "casebridge/bench/", "casebridge/.ci"))]
    record = next(n for n in names if n.endswith(".dist-info/RECORD"))
    recorded = {line.split(",")[0] for line in zipfile.ZipFile(wheel).read(record).decode().splitlines()}
    assert {r.split("/")[0] for r in recorded if ".dist-info/" not in r} == {"casebridge"}

    target, python = _install(wheel, tmp_path)
    work = tmp_path / "elsewhere"  # outside the repository: nothing importable from the checkout
    work.mkdir()
    shutil.copy(REPO / "examples" / "cases.json", work / "cases.json")
    where = _run(
        python,
        work,
        "-c",
        "import casebridge, casebridge.sync, workflows; print(*casebridge.__path__); "
        "print(casebridge.sync.__file__); print(workflows.NAMESAKE)",
    )
    assert where.returncode == 0, where.stderr
    package, sync_file, namesake = where.stdout.split("\n")[:3]
    assert Path(package) == target / "casebridge"
    assert Path(sync_file).is_relative_to(target / "casebridge")
    assert namesake == "True"

    cli = ("-m", "casebridge.cli")
    check = _run(python, work, *cli, "workflow", "check")
    assert check.returncode == 0, check.stderr
    intake = _run(python, work, *cli, "intake", "cases.json", "--now=2026-12-01T02:00:00Z")
    assert intake.returncode == 0, intake.stderr
    assert "created 14, updated 0, unchanged 0" in intake.stdout
    status = _run(python, work, *cli, "status", NOW)
    assert status.returncode == 0, status.stderr
    assert "FIA-CCW-2026-0151  [submitted]" in status.stdout
