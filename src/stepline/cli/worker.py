"""`stepline worker`: execute runs of an app's functions and take part in scheduling."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn
from wsgiref.simple_server import WSGIServer

import click
from prometheus_client import start_http_server

from stepline import errors
from stepline._child_process import pin_to_cpu
from stepline._retention import Retention
from stepline.cli._output_limits import output_limit_options
from stepline.cli._retain import retain_option
from stepline.cli._run_lines import RunLines, quiet_option
from stepline.cli._sdk import sdk_timeout_option, signing_options
from stepline.cli._serve import configure_logging
from stepline.cli.apps import load_app
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.inngest.driver import HttpSettings
from stepline.engine.inngest.signing import SigningKeys
from stepline.engine.metrics import Metrics
from stepline.engine.outputs import OutputLimits
from stepline.engine.retention import RetentionSettings
from stepline.engine.worker import WorkerSettings
from stepline.sdk.app import App
from stepline.store import open_store

EXIT_ABANDONED = 3  # all slots held by abandoned steps: the supervisor should restart it


@click.command()
@click.argument("apps", nargs=-1)
@click.option(
    "--db",
    envvar="STEPLINE_DB",
    required=True,
    show_envvar=True,
    help="Database URL (postgresql://user@host/db) or SQLite file.",
)
@click.option(
    "--slots",
    envvar="STEPLINE_WORKER_SLOTS",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    show_envvar=True,
    help="Runs executed at once.",
)
@click.option(
    "--lease-seconds",
    envvar="STEPLINE_LEASE_SECONDS",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    show_envvar=True,
    help="How long a dead worker's runs stay claimed before others take them.",
)
@click.option(
    "--grace-seconds",
    envvar="STEPLINE_GRACE_SECONDS",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    show_envvar=True,
    help="On SIGTERM/SIGINT, how long running steps may take to finish.",
)
@click.option(
    "--dashboard-url",
    envvar="STEPLINE_DASHBOARD_URL",
    default=None,
    show_envvar=True,
    help="The server's URL: each run's end line links to its page there.",
)
@click.option(
    "--metrics-port",
    envvar="STEPLINE_METRICS_PORT",
    default=None,
    type=click.IntRange(1, 65535),
    show_envvar=True,
    help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics (none by default).",
)
@click.option(
    "--metrics-host",
    envvar="STEPLINE_METRICS_HOST",
    default="127.0.0.1",
    show_default=True,
    show_envvar=True,
    help="Address the metrics listen on (they need no token: keep them off public networks).",
)
@click.option(
    "--cpu",
    envvar="STEPLINE_WORKER_CPU",
    default=None,
    type=click.IntRange(min=0),
    show_envvar=True,
    help="Run this process on this CPU only (Linux): about half the CPU per step.",
)
@quiet_option
@retain_option("The leader prunes: give all workers the same.")
@output_limit_options
@sdk_timeout_option
@signing_options
def worker(
    apps: tuple[str, ...],
    db: str,
    slots: int,
    lease_seconds: float,
    grace_seconds: float,
    dashboard_url: str | None,
    metrics_port: int | None,
    metrics_host: str,
    cpu: int | None,
    quiet: bool,
    retain: Retention,
    outputs: OutputLimits,
    sdk_timeout: float,
    signing_keys: SigningKeys | None,
) -> None:
    """Execute runs of APPS' functions (module:attr or file.py) from the database DB.

    Runs of Inngest SDK apps' functions are executed too, by calling the apps (signed with
    the signing key); with no APPS a worker executes only those. Start as many as you like,
    on any machines. On SIGTERM or SIGINT a worker stops claiming,
    lets running steps finish within the grace period and hands the rest to other workers.
    When all its slots are held by abandoned steps (still executing although their run was
    cancelled or timed out), it hands its runs back and exits with status 3, for its
    supervisor to restart it. Each run started and ended here gets a line with its status
    and duration (-q: none). With --metrics-port it serves its own metrics (runs, steps,
    its database errors) for Prometheus; the server's /metrics has the queues and workers.
    """
    if cpu is not None:
        pin_to_cpu(cpu)
    loaded: list[App] = [app for spec in apps for app in load_app(spec)]
    store = open_store(db)
    store.check_schema()
    settings = EngineSettings(
        worker=WorkerSettings(slots=slots, lease_seconds=lease_seconds),
        replace_exhausted_worker=False,
        signing_keys=signing_keys,
        http=HttpSettings(request_timeout_seconds=sdk_timeout),
        observer=None if quiet else RunLines(dashboard_url),
        retention=RetentionSettings(default=retain),
        outputs=outputs,
    )
    engine = Engine(loaded, db=store, settings=settings, upgrade=False)
    exporter = None if metrics_port is None else _serve(engine.metrics, metrics_host, metrics_port)
    configure_logging()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    engine.start()
    served = ", ".join(sorted(engine.functions)) or "SDK apps only"
    click.echo(f"Stepline worker {engine.worker.id}: {served}")
    while not stop.wait(0.5):
        if engine.worker.exhausted.is_set():
            _exit_abandoned(engine, slots)
    click.echo(f"stopping: waiting up to {grace_seconds:g}s for running steps")
    engine.stop(grace_seconds)
    if exporter is not None:
        exporter.shutdown()


def _serve(metrics: Metrics, host: str, port: int) -> WSGIServer:
    """Serve `metrics` at http://host:port/metrics on a thread; its server.

    Raises:
        errors.ConfigurationError: The port is taken or the address cannot be bound.
    """
    try:
        server, _ = start_http_server(port, addr=host, registry=metrics)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise errors.ConfigurationError(
                f"metrics port {port} on {host} is in use; choose another with --metrics-port "
                "or STEPLINE_METRICS_PORT"
            ) from exc
        raise errors.ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
    click.echo(f"metrics: http://{host}:{port}/metrics")
    return server


def _exit_abandoned(engine: Engine, slots: int) -> NoReturn:
    """Exit with EXIT_ABANDONED; the worker has already handed its runs back.

    `os._exit`, because the stuck steps' threads may never return, and a normal exit waits
    for any that are not daemon threads (e.g. ones started with `asyncio.to_thread`).
    """
    click.echo(
        f"all {slots} slot(s) held by abandoned steps: exiting with status {EXIT_ABANDONED}",
        err=True,
    )
    engine.stop(0)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_ABANDONED)
