"""The team's own stations page: the stored base stations, the last sync and a "Sync now" button.

This is an ordinary web app of the team's, not part of Stepline. It reads its own stations table
(`db.py`) and talks to Stepline only through `stepline.Client`, as any app would:

* `GET /` lists the stations and the latest run of `stations-sync`: status, start, duration,
  counters, progress with an ETA, the error if it failed, and a link to the run in the Stepline
  dashboard. It is plain HTML (readable without JavaScript); a few lines of script poll
  `/status` every second to keep the sync panel live.
* `GET /status` is that latest sync as JSON.
* `POST /sync` ("Sync now"; form fields or JSON `dry_run`, `delete_stale`) starts a run of
  `stations-sync` (`Client.invoke`) and answers with the new run's id (JSON 202, or a redirect
  to the page). The function is a singleton: while a sync is queued or running, Stepline
  refuses the run (409 with that run's id), and so does this page.

Run it next to `stepline dev` (`scripts/dev` starts both):

    python -m examples.base_stations.web --port 8290 --stepline-url http://127.0.0.1:8288
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import uvicorn
from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

import stepline
from examples.base_stations import db

FUNCTION_ID = "stations-sync"
ACTIVE = ("QUEUED", "RUNNING")
COUNTERS = ("fetched", "inserted", "updated", "unchanged", "deleted", "invalid")
MAX_BODY_BYTES = 4096
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True
)


@dataclass(frozen=True)
class Started:
    """The "Sync now" event was sent; this is the run it started."""

    run_id: str
    event_id: str


@dataclass(frozen=True)
class Busy:
    """Nothing was sent: this sync is still queued or running."""

    run_id: str


class Syncs:
    """The sync as this app sees it, through `stepline.Client` (blocking calls)."""

    def __init__(self, client: stepline.Client, stepline_url: str) -> None:
        self.client = client
        self.stepline_url = stepline_url.rstrip("/")

    def start(self, *, dry_run: bool, delete_stale: bool) -> Started | Busy:
        """Start a sync now; the function's singleton refuses it while one is active."""
        try:
            run_id = self.client.invoke(
                FUNCTION_ID, {"delete_stale": delete_stale}, dry_run=dry_run
            )
        except stepline.errors.Conflict as exc:
            if exc.run_id is None:
                raise  # refused for another reason (the function is paused)
            return Busy(exc.run_id)
        return Started(run_id=run_id, event_id=self.client.get_run(run_id)["trigger"]["event_id"])

    def latest(self) -> dict[str, Any] | None:
        """The newest sync, as shown on the page and by `/status` (None if there is none)."""
        runs = self.client.list_runs(function_id=FUNCTION_ID, limit=1)
        if not runs:
            return None
        run = self.client.get_run(runs[0]["id"])
        return sync_view(run, self.options(run), self.stepline_url)

    def options(self, run: dict[str, Any]) -> dict[str, Any]:
        """The data of the event that started the run (a cron tick has none)."""
        event_id = run["trigger"]["event_id"]
        if not event_id:
            return {}
        try:
            data: dict[str, Any] = self.client.get_event(event_id)["data"]
        except stepline.SteplineError:
            return {}
        return data


def sync_view(run: dict[str, Any], options: dict[str, Any], stepline_url: str) -> dict[str, Any]:
    """A run of `stations-sync` as the page shows it: raw figures plus `display` strings."""
    progress = run["progress"] or {}
    error = run["error"]["message"] if run["error"] else None
    view = {
        "id": run["id"],
        "status": run["status"],
        "detail": run["detail"],
        "active": run["status"] in ACTIVE,
        "dry_run": run.get("dry_run") is True or options.get("dry_run") is True,
        "delete_stale": options.get("delete_stale") is True,
        "started_at": run["started_at"] or run["created_at"],
        "ended_at": run["ended_at"],
        "duration_seconds": run["duration_seconds"],
        "percent": progress.get("percent"),
        "eta_seconds": progress.get("eta_seconds"),
        "message": progress.get("message"),
        "counters": {name: int(run["counters"].get(name, 0)) for name in COUNTERS},
        "error": error,
        "url": f"{stepline_url}/runs/{run['id']}",
    }
    view["display"] = _display(view)
    return view


def _display(view: dict[str, Any]) -> dict[str, str]:
    """The text of each live field of the page, so that the page and its script agree."""
    status = view["status"] + (f" ({view['detail'].lower()})" if view["detail"] else "")
    if view["dry_run"]:
        status += ", dry run"
    if view["delete_stale"]:
        status += ", deleting stale stations"
    percent, eta = view["percent"], view["eta_seconds"]
    progress = "" if percent is None else f"{percent:g} %"
    if view["message"]:
        progress += f" — {view['message']}" if progress else view["message"]
    if view["active"] and eta is not None:
        progress += f", about {_duration(eta)} left"
    return {
        "status": status,
        "started": _when(view["started_at"]),
        "duration": _duration(view["duration_seconds"]) if not view["active"] else "running",
        "progress": progress or "starting",
        "error": view["error"] or "",
        **{name: str(count) for name, count in view["counters"].items()},
    }


def _when(iso: str | None) -> str:
    """A moment in UTC, which the page shows without JavaScript (its script shows local time)."""
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


TEMPLATES.filters["utc"] = _when


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


# -- HTTP -------------------------------------------------------------------------------------


def create_app(stepline_url: str, *, client: stepline.Client | None = None) -> Starlette:
    """The stations page for the Stepline server at `stepline_url`.

    Args:
        stepline_url: The server, e.g. "http://127.0.0.1:8288" (also used for dashboard links).
        client: The client to use (default: `stepline.Client(stepline_url)` with the keys in
            `STEPLINE_EVENT_KEY` and `STEPLINE_API_TOKEN`, if any); closed on shutdown.
    """
    if client is None:
        # Keys are needed only when Stepline runs with them (`stepline server`), not `dev`.
        event_key = (os.environ.get("STEPLINE_EVENT_KEY") or "").split()
        token = os.environ.get("STEPLINE_API_TOKEN")
        client = stepline.Client(
            stepline_url, event_key=next(iter(event_key), None), token=token, timeout=10
        )
    handlers = Handlers(Syncs(client, stepline_url))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        handlers.syncs.client.close()

    routes = [
        Route("/", handlers.page, methods=["GET"]),
        Route("/status", handlers.status, methods=["GET"]),
        Route("/sync", handlers.sync_now, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class Handlers:
    """The page's endpoints. Client calls block, so they run in Starlette's thread pool."""

    def __init__(self, syncs: Syncs) -> None:
        self.syncs = syncs

    async def page(self, request: Request) -> Response:
        """GET /: the stations and the latest sync."""
        try:
            latest, problem = await run_in_threadpool(self.syncs.latest), ""
        except stepline.SteplineError as exc:
            latest, problem = None, str(exc)
        html = TEMPLATES.get_template("stations.html").render(
            stations=await run_in_threadpool(db.stored_stations),
            sync=latest,
            problem=problem,
            stepline_url=self.syncs.stepline_url,
        )
        return HTMLResponse(html)

    async def status(self, request: Request) -> Response:
        """GET /status: `{"sync": <the latest sync or null>}`."""
        try:
            latest = await run_in_threadpool(self.syncs.latest)
        except stepline.SteplineError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"sync": latest})

    async def sync_now(self, request: Request) -> Response:
        """POST /sync: start a sync, or answer 409 with the one already queued or running."""
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return _answer(request, 403, "Sync now is only accepted from this page.")
        try:
            options = _options(request.headers.get("content-type", ""), await _body(request))
        except ValueError as exc:
            return _answer(request, 400, str(exc))
        try:
            outcome = await run_in_threadpool(self.syncs.start, **options)
        except stepline.SteplineError as exc:
            return _answer(request, 503, f"Could not start the sync: {exc}")
        url = f"{self.syncs.stepline_url}/runs/{outcome.run_id}"
        if isinstance(outcome, Busy):
            message = "A sync is already running; wait for it to finish."
            return _answer(request, 409, message, run_id=outcome.run_id, url=url)
        if not _wants_json(request):
            return RedirectResponse("/", status_code=303)
        started = {"run_id": outcome.run_id, "event_id": outcome.event_id, "url": url}
        return JSONResponse(started, status_code=202)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _answer(request: Request, status_code: int, message: str, **extra: str) -> Response:
    """An error or refusal: JSON for `Accept: application/json`, else a short HTML page."""
    if _wants_json(request):
        return JSONResponse({"error": message, **extra}, status_code=status_code)
    html = TEMPLATES.get_template("message.html").render(message=message, **extra)
    return HTMLResponse(html, status_code=status_code)


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ValueError("request body too large")
    return body


def _options(content_type: str, body: bytes) -> dict[str, bool]:
    """`dry_run` and `delete_stale` from a JSON object or a form (a ticked checkbox is "on")."""
    if content_type.startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ValueError("the body is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
    else:
        form = dict(parse_qsl(body.decode(errors="replace")))
        data = {name: value in ("on", "true", "1") for name, value in form.items()}
    options = {}
    for name in ("dry_run", "delete_stale"):
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        options[name] = value
    return options


def main(argv: list[str] | None = None) -> None:
    """Serve the page: `python -m examples.base_stations.web [--port N] [--stepline-url URL]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="address (default: loopback only)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("STATIONS_WEB_PORT", "8290")),
        help="port (env STATIONS_WEB_PORT, default 8290)",
    )
    parser.add_argument(
        "--stepline-url",
        default=os.environ.get("STEPLINE_URL", "http://127.0.0.1:8288"),
        help="the Stepline server (env STEPLINE_URL, default http://127.0.0.1:8288)",
    )
    args = parser.parse_args(argv)
    print(
        f"Stations page: http://{args.host}:{args.port}  (press Sync now; Stepline: "
        f"{args.stepline_url})",
        flush=True,
    )
    uvicorn.run(create_app(args.stepline_url), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
