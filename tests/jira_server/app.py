"""The fake Jira HTTP server: routing, authentication, fault injection and OpenAPI checks.

``JiraServer(mode="cloud"|"datacenter").start()`` serves on 127.0.0.1 on a free port in a thread.
Every request and response is checked against Atlassian's document for the mode (see validate.py);
mismatches are collected in ``server.mismatches`` (the test fixture fails the test when it is not
empty). A request that does not match is answered 400, as a strict Jira would.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.jira_server import attachments, routes, validate
from tests.jira_server.faults import FaultPlan, RequestCounter
from tests.jira_server.render import Renderer
from tests.jira_server.routes import ApiError, Ctx
from tests.jira_server.state import JiraState

log = logging.getLogger(__name__)
Handler = Callable[[Ctx], tuple[int, Any]]
GATEWAY_STATUSES = frozenset({429, 500, 502, 503, 504})
ENVELOPE_STATUSES = frozenset({400, 401, 403, 404, 410})
HOLD_LIMIT = 300.0  # seconds a hold_after_write answer waits for the test's release at most

# (method, path template with {v} for the API version, handler, modes)
ROUTES: list[tuple[str, str, Handler, frozenset[str]]] = []
BOTH, CLOUD, DC = frozenset({"cloud", "datacenter"}), frozenset({"cloud"}), frozenset({"datacenter"})


def _route(method: str, template: str, handler: Handler, modes: frozenset[str] = BOTH) -> None:
    ROUTES.append((method, template, handler, modes))


_route("GET", "serverInfo", routes.server_info)
_route("GET", "myself", routes.myself)
_route("GET", "field", routes.list_fields)
_route("POST", "field", routes.create_field)
_route("GET", "project/{projectIdOrKey}", routes.get_project)
_route("GET", "project/{projectIdOrKey}/statuses", routes.project_statuses)
_route("GET", "issueLinkType", routes.link_types)
_route("POST", "issue", routes.create_issue)
_route("POST", "issue/bulk", routes.create_issues)
_route("GET", "issue/{issueIdOrKey}", routes.get_issue)
_route("PUT", "issue/{issueIdOrKey}", routes.edit_issue)
_route("GET", "issue/{issueIdOrKey}/transitions", routes.get_transitions)
_route("POST", "issue/{issueIdOrKey}/transitions", routes.do_transition)
_route("GET", "issue/{issueIdOrKey}/changelog", routes.get_changelog, CLOUD)
_route("GET", "issue/{issueIdOrKey}/comment", routes.get_comments)
_route("POST", "issue/{issueIdOrKey}/comment", routes.add_comment)
_route("POST", "issue/{issueIdOrKey}/attachments", attachments.add_attachments)
_route("POST", "issueLink", routes.create_link)
_route("GET", "search/jql", routes.search, CLOUD)
_route("POST", "search/jql", routes.search, CLOUD)
_route("GET", "search", routes.search_gone, CLOUD)
_route("POST", "search", routes.search_gone, CLOUD)
_route("GET", "search", routes.search, DC)
_route("POST", "search", routes.search, DC)

_API = re.compile(r"^/rest/api/(2|3|latest)/(.+)$")


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


_COMPILED = [(m, _compile(t), t, h, modes) for m, t, h, modes in ROUTES]


class JiraServer:
    """A stateful fake Jira site. ``mode``: "cloud" (API 2 and 3, Basic email:token) or "datacenter"
    (API 2 only, Bearer personal access token)."""

    def __init__(
        self,
        mode: str = "cloud",
        *,
        email: str = "bot@agency.example",
        api_token: str = "cloud-api-token-7f3a",
        pat: str = "dc-personal-access-token-91b2",
        admin: bool = True,
        validate_every: int = 1,
        user_tz: str = "UTC",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if mode not in ("cloud", "datacenter"):
            raise ValueError("mode is 'cloud' or 'datacenter'")
        self.mode = mode
        self.state = JiraState(now=now)
        self.state.admin = admin  # type: ignore[attr-defined]
        self.faults = FaultPlan()
        self.counter = RequestCounter()
        self.mismatches: list[str] = []
        self.validate_every = validate_every  # 0 = never (benchmarks may thin it out; tests keep 1)
        self.user_tz = user_tz
        self.rate_headers: dict[str, str] = {}  # added to every answer (tests of X-RateLimit-* handling)
        self._credentials = {
            "cloud": "Basic " + base64.b64encode(f"{email}:{api_token}".encode()).decode(),
            "datacenter": f"Bearer {pat}",
        }[mode]
        self._snapshots: dict[str, list[int]] = {}
        self._seen = 0
        self._httpd: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> JiraServer:
        validate.openapi_for(self.mode)  # parse the document before the first request (cached)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns test output
        self._httpd = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        # a short poll interval: stop() waits for the loop to notice (0.5 s by default, per server)
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="fake-jira", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> JiraServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- WSGI -----------------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._handle(request, environ)
        return response(environ, start_response)

    def _match(self, method: str, path: str) -> tuple[str, str, Handler, dict[str, str]] | None:
        api = _API.match(path)
        if not api:
            return None
        version, rest = api.group(1), api.group(2)
        version = "2" if version == "latest" else version
        if version == "3" and self.mode != "cloud":
            return None
        for r_method, regex, template, handler, modes in _COMPILED:
            if r_method == method and self.mode in modes and (found := regex.match(rest)):
                return version, f"/rest/api/{version}/{template}", handler, found.groupdict()
        return None

    def _handle(self, request: Request, environ: dict[str, Any]) -> Response:
        method = request.method.upper()
        matched = self._match(method, request.path)
        if matched is None:
            self.counter.count(method, request.path)
            return _json(404, {"errorMessages": ["null for uri: " + request.url], "errors": {}})
        version, pattern, handler, path_params = matched
        self.counter.count(method, pattern)
        if request.headers.get("Authorization") != self._credentials:
            return _json(401, {"errorMessages": ["You are not authenticated. Authentication required."], "errors": {}})
        fault = self.faults.take(method, request.path)
        if fault is not None and fault.kind in ("429", "500", "503"):
            return self._fault_response(fault)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        self._seen += 1
        checking = self.validate_every > 0 and self._seen % self.validate_every == 0
        body_bytes = request.get_data()
        spec_request = validate.make_request(
            self.mode,
            method,
            request.path,
            pattern,
            path_params,
            request.args,
            Headers(request.headers),
            body_bytes,
            request.content_type or "",
        )
        if checking and (problem := validate.check_request(self.mode, spec_request)):
            self.mismatches.append(f"request {method} {request.full_path}: {problem}")
            return _json(400, {"errorMessages": [f"Request does not match the API: {problem[:300]}"], "errors": {}})
        status, payload = self._dispatch(handler, version, path_params, request, body_bytes)
        response = _json(status, payload)
        for name, value in self.rate_headers.items():
            response.headers[name] = value
        if checking:
            self._check_response(method, pattern, spec_request, response)
        if fault is not None and fault.kind == "drop_after_write":
            _drop(environ)
        if fault is not None and fault.kind == "hold_after_write":
            fault.applied.set()
            fault.release.wait(timeout=HOLD_LIMIT)  # a bound, so a test that forgets to release ends
        return response

    def _dispatch(
        self, handler: Handler, version: str, params: dict[str, str], request: Request, body: bytes
    ) -> tuple[int, Any]:
        multipart = (request.mimetype or "") == "multipart/form-data"
        try:
            parsed = json.loads(body) if body and not multipart else None
        except ValueError:
            return 400, {
                "errorMessages": ["Unexpected character in the request body: not JSON."],
                "errors": {},
            }
        ctx = Ctx(
            state=self.state,
            render=Renderer(self.state, self.url, version),
            mode=self.mode,
            api=version,
            params=params,
            query=request.args,
            body=parsed,
            user_tz=self.user_tz,
            snapshots=self._snapshots,
            headers=request.headers,
            files=request.files if multipart else None,
        )
        with self.state.lock:
            try:
                return handler(ctx)
            except ApiError as exc:
                return exc.status, exc.body

    def _check_response(self, method: str, pattern: str, spec_request: Any, response: Response) -> None:
        documented = validate.documented_statuses(self.mode, pattern, method)
        status = response.status_code
        if str(status) not in documented and "default" not in documented:
            # Jira answers these for every operation although many operations do not list them
            if status in ENVELOPE_STATUSES and _is_envelope(response):
                return
            self.mismatches.append(f"response {method} {pattern}: status {status} is not documented")
            return
        spec_response = validate.SpecResponse(
            status_code=status,
            data=response.get_data(),
            headers=Headers(response.headers),
            content_type=response.content_type or "application/json",
        )
        if problem := validate.check_response(self.mode, spec_request, spec_response):
            self.mismatches.append(f"response {method} {pattern} {status}: {problem}")

    def _fault_response(self, fault: Any) -> Response:
        status = int(fault.kind)
        response = _json(status, {"errorMessages": [f"Injected {status}"], "errors": {}})
        if status == 429:
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(fault.retry_after)
            response.headers["X-RateLimit-Limit"] = "100"
            response.headers["X-RateLimit-Remaining"] = "0"
            response.headers["X-RateLimit-NearLimit"] = "true"
            response.headers["RateLimit-Reason"] = "jira-burst-based"
        return response


def _json(status: int, payload: Any) -> Response:
    if payload is None:
        return Response(status=status)
    return Response(json.dumps(payload), status=status, content_type="application/json;charset=UTF-8")


def _is_envelope(response: Response) -> bool:
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return False
    return (
        isinstance(body, dict) and isinstance(body.get("errorMessages"), list) and isinstance(body.get("errors"), dict)
    )


def _drop(environ: dict[str, Any]) -> None:
    """Close the client's connection without an answer (the write above was applied)."""
    sock: socket.socket | None = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("fake Jira dropped the connection after applying the write")
