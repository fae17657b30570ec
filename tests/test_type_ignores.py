"""The type checker's silences are few and explained: every ``# type: ignore`` in library code names its
error code and says why (issue 19; ``.ci/typecheck`` runs mypy --strict in CI)."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from tests.test_library_errors import ROOT, library_modules

# "# type: ignore[code]  # reason": a code in brackets, then a comment of at least a few words
EXPLAINED = re.compile(r"#\s*type:\s*ignore\[[a-z-]+(,\s*[a-z-]+)*\]\s+#\s*\S+(\s+\S+){2,}")


def type_ignores(path: Path) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return [(t.start[0], t.line.strip()) for t in tokens if t.type == tokenize.COMMENT and "type: ignore" in t.string]


def test_every_type_ignore_names_its_error_code_and_why() -> None:
    found = [(path, line, text) for path in library_modules() for line, text in type_ignores(path)]
    unexplained = [f"{p.relative_to(ROOT)}:{n}: {t}" for p, n, t in found if not EXPLAINED.search(t)]
    assert unexplained == [], "write `# type: ignore[code]  # why`: " + "; ".join(unexplained)


def test_a_bare_or_unexplained_type_ignore_is_caught(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "a = 1  # type: ignore\n"
        "b = 2  # type: ignore[misc]\n"
        "c = 3  # type: ignore[misc]  # python-redmine ships no type hints\n"
        "d = '# type: ignore'\n",
        encoding="utf-8",
    )
    lines = {n: bool(EXPLAINED.search(t)) for n, t in type_ignores(sample)}
    assert lines == {1: False, 2: False, 3: True}
