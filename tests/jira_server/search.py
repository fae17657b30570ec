"""Evaluate parsed JQL against the fake's issues (field-aware, with Jira's operator rules)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.jira_server import jql
from tests.jira_server.state import CF, TEXT_TYPES, FieldDef, Issue, JiraState, adf_text

Pred = Callable[[Issue], bool]
DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
ALIASES = {"type": "issuetype", "issuekey": "key", "issue": "key"}


def compile_query(state: JiraState, text: str, user_tz: str = "UTC") -> tuple[Pred, Callable[[Issue], Any], bool]:
    """(predicate, sort key, reverse) for ``text``; raises jql.JqlError for what Jira would refuse."""
    query = jql.parse(text)
    pred = _compile(state, query.where, ZoneInfo(user_tz)) if query.where else (lambda issue: True)
    order = query.order_by or (("key", False),)
    keys = [(_sort_value(state, name), desc) for name, desc in order]

    # multi-key sort with per-key direction: sort by a tuple, invert numbers/strings by a wrapper
    def sort_key(issue: Issue) -> tuple[Any, ...]:
        return tuple(_Rev(get(issue)) if desc else get(issue) for get, desc in keys)

    return pred, sort_key, False


class _Rev:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and other.v == self.v


def _sort_value(state: JiraState, name: str) -> Callable[[Issue], Any]:
    name = ALIASES.get(name.lower(), name)
    if name.lower() == "key":
        return lambda issue: (issue.project, int(issue.key.rsplit("-", 1)[1]))
    if name.lower() in ("id", "created", "updated"):
        attr = name.lower()
        return lambda issue: getattr(issue, attr)
    fdef = _field(state, name)
    return lambda issue: (issue.values.get(fdef.id) is None, str(issue.values.get(fdef.id) or ""))


def _field(state: JiraState, name: str) -> FieldDef:
    fdef = state.field_by_name(ALIASES.get(name.lower(), name))
    if fdef is None:
        raise jql.JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
    return fdef


def _compile(state: JiraState, node: jql.Node, tz: ZoneInfo) -> Pred:
    if isinstance(node, jql.BoolOp):
        parts = [_compile(state, arg, tz) for arg in node.args]
        if node.op == "and":
            return lambda issue: all(p(issue) for p in parts)
        if node.op == "or":
            return lambda issue: any(p(issue) for p in parts)
        return lambda issue: not parts[0](issue)
    return _clause(state, node, tz)


def _clause(state: JiraState, clause: jql.Clause, tz: ZoneInfo) -> Pred:
    name = ALIASES.get(clause.field.lower(), clause.field)
    if name.lower() in ("key", "id"):
        return _key_clause(state, clause)
    fdef = _field(state, name)
    get = _getter(state, fdef)
    op = clause.op
    if op in ("is", "is not"):
        want_empty = op == "is"
        return lambda issue: (get(issue) in (None, "", [])) == want_empty
    if fdef.id in ("project", "issuetype", "status"):
        return _named_clause(state, fdef, clause, get)
    if fdef.custom_type in TEXT_TYPES or fdef.id in ("summary", "description"):
        if op not in ("~", "!~"):
            raise jql.JqlError(f"The operator '{op}' is not supported by the '{clause.field}' field.")
        needle = str(clause.value)
        positive = op == "~"
        return lambda issue: jql.text_matches(adf_text(get(issue) or ""), needle) == positive
    if fdef.schema_type == "datetime":
        return _compare(op, _parse_date(clause, tz), lambda issue: _as_dt(get(issue)), clause)
    if fdef.custom_type == CF + "float":
        try:
            bound = float(str(clause.value))
        except ValueError:
            raise jql.JqlError(f"The value '{clause.value}' is not a number for field '{clause.field}'.") from None
        return _compare(op, bound, get, clause)
    raise jql.JqlError(f"The operator '{op}' is not supported by the '{clause.field}' field.")


def _getter(state: JiraState, fdef: FieldDef) -> Callable[[Issue], Any]:
    if fdef.id in ("created", "updated"):
        return lambda issue: getattr(issue, fdef.id)
    if fdef.id == "status":
        return lambda issue: issue.status
    if fdef.id == "issuetype":
        return lambda issue: issue.issuetype
    if fdef.id == "project":
        return lambda issue: issue.project
    return lambda issue: issue.values.get(fdef.id)


def _named_clause(state: JiraState, fdef: FieldDef, clause: jql.Clause, get: Callable[[Issue], Any]) -> Pred:
    if clause.op not in ("=", "!=", "in", "not in"):
        raise jql.JqlError(f"The operator '{clause.op}' is not supported by the '{clause.field}' field.")
    values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    wanted: set[str] = set()
    for value in values:
        name = _resolve_name(state, fdef.id, str(value))
        if name is None:
            raise jql.JqlError(f"The value '{value}' does not exist for the field '{clause.field}'.")
        wanted.add(name.casefold())
    positive = clause.op in ("=", "in")
    return lambda issue: (str(get(issue)).casefold() in wanted) == positive


def _resolve_name(state: JiraState, field_id: str, value: str) -> str | None:
    folded = value.casefold()
    for project in state.projects.values():
        if field_id == "project" and folded in (project.key.casefold(), project.name.casefold(), project.id):
            return project.key
        if field_id == "issuetype":
            for name, type_id in project.issuetypes.items():
                if folded in (name.casefold(), type_id):
                    return name
        if field_id == "status":
            for status in project.statuses:
                if folded in (status.name.casefold(), status.id):
                    return status.name
    return None


def _key_clause(state: JiraState, clause: jql.Clause) -> Pred:
    if clause.op not in ("=", "!=", "in", "not in"):
        raise jql.JqlError(f"The operator '{clause.op}' is not supported by the 'key' field.")
    values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    wanted = {str(v).upper() for v in values}
    positive = clause.op in ("=", "in")
    return lambda issue: (issue.key in wanted or str(issue.id) in wanted) == positive


def _parse_date(clause: jql.Clause, tz: ZoneInfo) -> datetime:
    text = str(clause.value)
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise jql.JqlError(
        f"Date value '{text}' for field '{clause.field}' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d'."
    )


def _as_dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")


def _compare(op: str, bound: Any, get: Callable[[Issue], Any], clause: jql.Clause) -> Pred:
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    if op not in ops:
        raise jql.JqlError(f"The operator '{op}' is not supported by the '{clause.field}' field.")
    fn = ops[op]

    def pred(issue: Issue) -> bool:
        value = get(issue)
        return value is not None and fn(value, bound)

    return pred


def run(state: JiraState, text: str, user_tz: str = "UTC") -> list[Issue]:
    """All matching issues in JQL order. Raises jql.JqlError."""
    pred, sort_key, _ = compile_query(state, text, user_tz)
    return sorted((i for i in state.issues.values() if pred(i)), key=sort_key)
