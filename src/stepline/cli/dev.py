"""`stepline dev`: engine, worker, scheduler and server in one process on SQLite."""

from __future__ import annotations

import os
from dataclasses import replace

import click

from stepline._child_process import pin_to_cpu
from stepline._retention import Retention, retention_text
from stepline.cli._output_limits import output_limit_options
from stepline.cli._retain import retain_option
from stepline.cli._run_lines import RunLines, quiet_option
from stepline.cli._sdk import sdk_timeout_option, sdk_urls_option, signing_options
from stepline.cli._secrets import Secrets, auth_settings
from stepline.cli._serve import configure_logging, listen, local_url, serve, serve_options
from stepline.cli._worker_processes import WorkerProcesses
from stepline.cli.apps import load_app
from stepline.engine.engine import DEFAULT_DB, Engine, EngineSettings
from stepline.engine.inngest.driver import HttpSettings
from stepline.engine.inngest.poller import AppPoller
from stepline.engine.inngest.signing import SigningKeys
from stepline.engine.inngest.sync import syncer_for
from stepline.engine.outputs import OutputLimits
from stepline.engine.retention import RetentionSettings
from stepline.engine.worker import WorkerSettings
from stepline.sdk.app import App
from stepline.server.app import create_app
from stepline.store import is_postgres

GRACE_SECONDS = 10.0  # on shutdown, how long running steps may take to finish


@click.command()
@click.argument("apps", nargs=-1)
@click.option(
    "--db",
    envvar="STEPLINE_DB",
    default=str(DEFAULT_DB),
    show_default=True,
    show_envvar=True,
    help="SQLite file (or a sqlite:/// or postgresql:// URL).",
)
@click.option(
    "--slots",
    envvar="STEPLINE_WORKER_SLOTS",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    show_envvar=True,
    help="Runs executed at once by each worker process.",
)
@click.option(
    "--workers",
    envvar="STEPLINE_DEV_WORKERS",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    show_envvar=True,
    help="Worker processes: this one, and N-1 `stepline worker` children on the same database "
    "(on SQLite, several use several cores).",
)
@click.option(
    "--pin-cpus/--no-pin-cpus",
    envvar="STEPLINE_PIN_CPUS",
    default=True,
    show_default=True,
    show_envvar=True,
    help="With --workers N > 1 on SQLite (N CPUs at least, Linux): each on a CPU of its own.",
)
@quiet_option
@retain_option("This process prunes.")
@output_limit_options
@sdk_urls_option
@sdk_timeout_option
@serve_options
@signing_options
def dev(
    apps: tuple[str, ...],
    db: str,
    slots: int,
    workers: int,
    pin_cpus: bool,
    quiet: bool,
    retain: Retention,
    outputs: OutputLimits,
    sdk_urls: tuple[str, ...],
    sdk_timeout: float,
    host: str,
    port: int,
    secrets: Secrets,
    signing_keys: SigningKeys | None,
) -> None:
    """Run APPS (module:attr or file.py) with engine, scheduler and server in one process.

    Migrations are applied automatically. Open (no keys) on loopback only. Each run started
    and ended here gets a line with its status, duration and dashboard link (-q: none).
    Prometheus metrics (this process's and the queues') are at /metrics.
    Inngest SDK apps use it as their dev server: point them at it
    (INNGEST_DEV=http://127.0.0.1:8288) and give their serve URLs with --sdk-url, or sync them
    from the Apps page.
    """
    auth = replace(
        auth_settings(host, secrets, dev=True, open_allowed=True), signing_keys=signing_keys
    )
    loaded: list[App] = [app for spec in apps for app in load_app(spec)]
    url = local_url(host, port)
    sock = listen(host, port)  # before any banner: a taken port fails here, naming the fix
    settings = EngineSettings(
        worker=WorkerSettings(slots=slots),
        signing_keys=signing_keys,
        http=HttpSettings(request_timeout_seconds=sdk_timeout),
        observer=None if quiet else RunLines(url),
        retention=RetentionSettings(default=retain),
        outputs=outputs,
    )
    engine = Engine(loaded, db=db, settings=settings)
    functions = ", ".join(sorted(engine.functions)) or "none"
    click.echo(f"Stepline dev: {url}  db={db}  functions: {functions}")
    configure_logging()
    engine.start()
    # Pinned on SQLite only: a PostgreSQL server on the machine needs the CPUs too.
    cpus = _cpus(workers) if pin_cpus and not is_postgres(db) else None
    env = _child_settings(engine, db, url, quiet, retain)
    children = WorkerProcesses(workers - 1, apps, env, cpus=cpus[1:] if cpus else None)
    if cpus:
        pin_to_cpu(cpus[0])
    children.start()
    poller = AppPoller(syncer_for(engine.operations, signing_keys), sdk_urls, server_url=url)
    poller.start()

    def stop() -> None:
        poller.stop()
        children.stop(GRACE_SECONDS)
        engine.stop(GRACE_SECONDS)

    serve(create_app(engine.operations, auth, engine.metrics), sock, stop)


def _child_settings(
    engine: Engine, db: str, url: str, quiet: bool, retain: Retention
) -> dict[str, str]:
    """The environment that gives `stepline worker` children dev's settings (keys included)."""
    settings = engine.settings
    env = {
        "STEPLINE_DB": db,
        "STEPLINE_WORKER_SLOTS": str(settings.worker.slots),
        "STEPLINE_SDK_TIMEOUT": str(settings.http.request_timeout_seconds),
        "STEPLINE_OUTPUT_INLINE_LIMIT": str(settings.outputs.inline_bytes),
        "STEPLINE_MAX_OUTPUT_SIZE": str(settings.outputs.max_bytes),
        "STEPLINE_RETAIN": retention_text(retain),
        "STEPLINE_DASHBOARD_URL": url,
        "STEPLINE_GRACE_SECONDS": str(GRACE_SECONDS),
        "STEPLINE_QUIET": "1" if quiet else "",
    }
    keys = settings.signing_keys
    if keys is not None:
        env["STEPLINE_SIGNING_KEY"] = keys.primary
        if keys.fallback is not None:
            env["STEPLINE_SIGNING_KEY_FALLBACK"] = keys.fallback
    return env


def _cpus(workers: int) -> list[int] | None:
    """A CPU for each of `workers` processes, or None if there are fewer CPUs (or not Linux)."""
    if workers < 2 or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[:workers] if len(cpus) >= workers else None
