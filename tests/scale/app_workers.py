"""`stepline worker` processes serving a scale test's own app module (not `app.py`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stepline.store.base import Store
from tests.scale.support import Cluster, eventually, registered

REGISTER_SECONDS = 60.0  # a loaded machine takes seconds to start each process


def spawn_worker(
    cluster: Cluster, app_file: Path, *, slots: int, lease_seconds: float = 10.0
) -> subprocess.Popen[bytes]:
    """Start one `stepline worker APP_FILE` on the cluster's database (not waiting for it)."""
    return cluster.spawn(
        "worker", "worker", str(app_file), "--db", cluster.db, "--slots", str(slots),
        "--lease-seconds", str(lease_seconds), "--grace-seconds", "5",
    )  # fmt: skip


def serve(
    store: Store,
    cluster: Cluster,
    app_file: Path,
    function_ids: set[str],
    count: int,
    *,
    slots: int,
    lease_seconds: float = 10.0,
) -> list[subprocess.Popen[bytes]]:
    """Start `count` workers and wait until they and `function_ids` are registered."""
    workers = [
        spawn_worker(cluster, app_file, slots=slots, lease_seconds=lease_seconds)
        for _ in range(count)
    ]
    eventually(
        lambda: (
            registered(store, {w.pid for w in workers})
            and function_ids <= {fn.id for fn in store.list_functions()}
        ),
        what=f"{count} workers of {app_file.name} to register",
        timeout=REGISTER_SECONDS,
    )
    return workers
