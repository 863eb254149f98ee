"""A vendor-portal simulator: the paged base-station API the sync pulls from.

Real vendor portals are slow, rate-limited and occasionally broken. This one is a small local
HTTP server (stdlib `http.server` on a daemon thread) that behaves the same way on demand:

* `GET /api/stations?page=N&per_page=M` with `Authorization: Bearer <token>` returns
  `{"data": [...], "page", "per_page", "total", "total_pages"}`;
* the data set is deterministic (generated from a seed) and a few records are invalid: some lack
  a serial number, some lack coordinates;
* latency, random failures and scripted failures (429 with `Retry-After`, 500, a stalled
  response) are configurable by constructor arguments or `STATIONS_PORTAL_*` variables.

Read from the environment, as the demo does, the portal takes `DEMO_LATENCY` seconds per answer
unless `STATIONS_FAST=1` (`scripts/dev --fast`, the tests): slow enough that a sync lasts a few
seconds, so its live progress, ETA and counters can be watched.

`portal_url()` is what the app calls: it returns `STATIONS_PORTAL_URL` when that is set, and
otherwise starts one simulator for the whole process, on a free port, the first time it is needed.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, urlsplit

Fault = Literal["ok", "429", "500", "slow"]
FAULTS: tuple[Fault, ...] = get_args(Fault)
DEFAULT_TOKEN = "dev-token"  # noqa: S105  (a simulator's well-known token, not a secret)
MAX_PER_PAGE = 500
# Every INVALID_EVERY-th record is broken, cycling through these defects.
INVALID_EVERY = 25
DEFECTS = ("no-serial", "no-location", "blank-serial", "no-lon")
TOWNS = (
    "Soweto",
    "Tembisa",
    "Umlazi",
    "Khayelitsha",
    "Mamelodi",
    "Polokwane",
    "Mbombela",
    "Kimberley",
    "Mthatha",
    "Rustenburg",
)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
DEMO_LATENCY = 1.5  # seconds per answer in the demo: a default sync of 3 pages takes about 5 s


@dataclass(kw_only=True)
class PortalSettings:
    """How the simulator behaves.

    Attributes:
        stations: Number of records served.
        seed: Seed of the generated data set and of random failures.
        token: The bearer token requests must carry.
        latency: Seconds added to every response.
        failure_rate: Probability that a request meets a random fault (429, 500 or slow).
        faults: Scripted outcomes for the next requests, in order (then normal service).
        retry_after: Seconds announced in the `Retry-After` header of a 429.
        slow_seconds: How long a "slow" response stalls before answering.
    """

    stations: int = 250
    seed: int = 2026
    token: str = DEFAULT_TOKEN
    latency: float = 0.0
    failure_rate: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    retry_after: int = 2
    slow_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PortalSettings:
        """Read `STATIONS_PORTAL_{STATIONS,SEED,TOKEN,LATENCY,FAILURE_RATE,FAULTS,...}`.

        `STATIONS_PORTAL_FAULTS` is a comma-separated script such as "429,ok,500,slow". The
        latency defaults to `DEMO_LATENCY`, or to none with `STATIONS_FAST=1`.
        """
        env = os.environ if env is None else env
        fast = env.get("STATIONS_FAST", "").lower() in ("1", "true", "yes", "on")
        defaults = cls(latency=0.0 if fast else DEMO_LATENCY)

        def number(name: str, default: float) -> float:
            return float(env.get(f"STATIONS_PORTAL_{name}", default))

        return cls(
            stations=int(number("STATIONS", defaults.stations)),
            seed=int(number("SEED", defaults.seed)),
            token=env.get("STATIONS_PORTAL_TOKEN", defaults.token),
            latency=number("LATENCY", defaults.latency),
            failure_rate=number("FAILURE_RATE", defaults.failure_rate),
            faults=parse_faults(env.get("STATIONS_PORTAL_FAULTS", "")),
            retry_after=int(number("RETRY_AFTER", defaults.retry_after)),
            slow_seconds=number("SLOW_SECONDS", defaults.slow_seconds),
        )


def parse_faults(script: str) -> list[Fault]:
    """Parse "429,ok,500" into a fault script; raises `ValueError` naming a bad entry."""
    faults: list[Fault] = []
    for entry in filter(None, (part.strip() for part in script.split(","))):
        if entry not in FAULTS:
            raise ValueError(f"unknown portal fault {entry!r}; use one of {', '.join(FAULTS)}")
        faults.append(entry)
    return faults


def generate_stations(count: int, seed: int) -> list[dict[str, Any]]:
    """The vendor's records: deterministic for a seed, every 25th one defective."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        town = TOWNS[rng.randrange(len(TOWNS))]
        record: dict[str, Any] = {
            "id": 10_000 + i,
            "serial_number": f"TBN-{seed % 100:02d}{i:05d}",
            "name": f"{town} {i:03d}",
            "location": {
                "lat": round(rng.uniform(-34.8, -22.2), 6),
                "lon": round(rng.uniform(16.5, 32.8), 6),
            },
            "updated_at": (EPOCH + timedelta(minutes=rng.randrange(60 * 24 * 30))).isoformat(),
        }
        if i % INVALID_EVERY == INVALID_EVERY // 2:
            _break(record, DEFECTS[(i // INVALID_EVERY) % len(DEFECTS)])
        records.append(record)
    return records


def _break(record: dict[str, Any], defect: str) -> None:
    if defect == "no-serial":
        record["serial_number"] = None
    elif defect == "blank-serial":
        record["serial_number"] = "  "
    elif defect == "no-location":
        record["location"] = None
    else:
        del record["location"]["lon"]


class Portal:
    """A running simulator. Use as a context manager, or `start()` and `close()`.

    Tests steer it with `inject` (scripted faults), `update` and `remove` (upstream changes),
    and read `requests` to see what the sync asked for.
    """

    def __init__(self, settings: PortalSettings | None = None, *, port: int = 0) -> None:
        self.settings = settings or PortalSettings()
        self.records = generate_stations(self.settings.stations, self.settings.seed)
        self.requests: list[tuple[int, Fault]] = []
        self._faults: dict[int | None, deque[Fault]] = {None: deque(self.settings.faults)}
        self._rng = random.Random(self.settings.seed + 1)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.portal = self  # type: ignore[attr-defined]  # read back by _Handler
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="stations-portal",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The base URL, e.g. "http://127.0.0.1:54321"."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Portal:
        """Start serving on the background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving (stalled responses are released at once)."""
        self._closing.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Portal:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- steering (tests and demos) -------------------------------------------------------------

    def inject(self, *faults: Fault, page: int | None = None) -> None:
        """Script the outcomes of the next requests (for `page` only, when given)."""
        with self._lock:
            self._faults.setdefault(page, deque()).extend(faults)

    def update(self, serial: str, **changes: Any) -> None:
        """Change a record upstream (name, location, ...) and bump its `updated_at`."""
        with self._lock:
            record = self._find(serial)
            record.update(changes)
            stamp = datetime.fromisoformat(record["updated_at"]) + timedelta(days=1)
            record["updated_at"] = stamp.isoformat()

    def remove(self, serial: str) -> None:
        """Delete a record upstream (the station was decommissioned)."""
        with self._lock:
            self.records.remove(self._find(serial))

    def _find(self, serial: str) -> dict[str, Any]:
        for record in self.records:
            if record["serial_number"] == serial:
                return record
        raise KeyError(serial)

    # -- serving --------------------------------------------------------------------------------

    def next_fault(self, page: int) -> Fault:
        """The outcome of this request: scripted for the page, scripted, random, or "ok"."""
        with self._lock:
            for key in (page, None):
                queue = self._faults.get(key)
                if queue:
                    fault = queue.popleft()
                    break
            else:
                fault = "ok"
                if self._rng.random() < self.settings.failure_rate:
                    fault = self._rng.choice(("429", "500", "slow"))
            self.requests.append((page, fault))
            return fault

    def page(self, page: int, per_page: int) -> dict[str, Any]:
        """One page of records with the paging totals."""
        with self._lock:
            total = len(self.records)
            start = (page - 1) * per_page
            data = json.loads(json.dumps(self.records[start : start + per_page]))
        return {
            "data": data,
            "page": page,
            "per_page": per_page,
            "total": total,
            "total_pages": -(-total // per_page),
        }

    def stall(self, seconds: float) -> None:
        """Sleep up to `seconds`, or less if the portal is closing."""
        self._closing.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    """Serves `/api/stations` and `/health` for the `Portal` attached to the server."""

    server_version = "StationsPortal/1.0"

    @property
    def portal(self) -> Portal:
        return self.server.portal  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the sync's own run log is the interesting one."""

    def do_GET(self) -> None:
        """Route a GET request."""
        url = urlsplit(self.path)
        if url.path == "/health":
            self._send(200, {"ok": True})
        elif url.path != "/api/stations":
            self._send(404, {"error": f"no route {url.path}"})
        elif self.headers.get("Authorization") != f"Bearer {self.portal.settings.token}":
            self._send(401, {"error": "missing or wrong bearer token"})
        else:
            self._stations(parse_qs(url.query))

    def _stations(self, query: dict[str, list[str]]) -> None:
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("per_page", ["100"])[0])
        except ValueError:
            self._send(400, {"error": "page and per_page must be integers"})
            return
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            self._send(400, {"error": f"page >= 1 and 1 <= per_page <= {MAX_PER_PAGE}"})
            return
        portal = self.portal
        portal.stall(portal.settings.latency)
        fault = portal.next_fault(page)
        if fault == "429":
            retry_after = str(portal.settings.retry_after)
            self._send(429, {"error": "rate limited"}, {"Retry-After": retry_after})
        elif fault == "500":
            self._send(500, {"error": "internal error"})
        else:
            if fault == "slow":
                portal.stall(portal.settings.slow_seconds)
            self._send(200, portal.page(page, per_page))

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (it timed out on a stalled response)


_started: Portal | None = None
_start_lock = threading.Lock()


def portal_url() -> str:
    """The portal to sync from: `STATIONS_PORTAL_URL`, or a simulator started on first use."""
    global _started
    configured = os.environ.get("STATIONS_PORTAL_URL")
    if configured:
        return configured.rstrip("/")
    with _start_lock:
        if _started is None:
            _started = Portal(PortalSettings.from_env()).start()
        return _started.url


def portal_token() -> str:
    """The bearer token to send: `STATIONS_PORTAL_TOKEN`, or the simulator's default."""
    return os.environ.get("STATIONS_PORTAL_TOKEN", DEFAULT_TOKEN)
