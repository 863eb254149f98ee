"""The app registry: SDK apps sync their whole function set at once; Python apps add theirs.

A sync is one transaction: the app's row, its functions (upserted), and the removal of the
functions it no longer has, whose active runs are cancelled (their app can no longer run
them). The registry version is bumped first, so every process's routing reads the new set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, bindparam, delete, insert, select, update

from stepline import errors
from stepline.store import schema as t
from stepline.store._prepared import Prepared, RawTransaction
from stepline.store.base import (
    ACTIVE_STATUSES,
    AppRecord,
    AppSync,
    EventRouting,
    FunctionRecord,
)

if TYPE_CHECKING:
    from stepline.store._internals import StoreInternals


class AppStatements:
    """The statements of the app registry, compiled once per store."""

    def __init__(self, prepare: Callable[..., Prepared]) -> None:
        a, f, r, v = t.apps.c, t.functions.c, t.runs.c, t.registry_version.c
        app_id = bindparam("app_id", type_=String)
        self.bump_registry = prepare(
            update(t.registry_version).where(v.id == t.REGISTRY_ROW).values(version=v.version + 1)
        )
        self.app = prepare(select(t.apps).where(a.id == app_id).with_for_update())
        self.apps = prepare(select(t.apps).order_by(a.id))
        self.insert_app = prepare(insert(t.apps))
        self.touch_app = prepare(update(t.apps).where(a.id == app_id), ["synced_at"])
        self.update_app = prepare(
            update(t.apps).where(a.id == app_id),
            ["kind", "url", "sdk", "framework", "app_version", "checksum", "synced_at"],
        )
        self.owners = prepare(
            select(f.id, f.app_id).where(f.id.in_(bindparam("ids", expanding=True)))
        )
        self.functions_of = prepare(select(f.id).where(f.app_id == app_id))
        self.insert_function = prepare(
            insert(t.functions), ["id", "app_id", "name", "config", "updated_at", "paused"]
        )
        self.update_function = prepare(
            update(t.functions).where(f.id == bindparam("function_id")),
            ["name", "config", "updated_at"],
        )
        self.delete_functions = prepare(
            delete(t.functions).where(f.id.in_(bindparam("ids", expanding=True)))
        )
        self.delete_cron = prepare(
            delete(t.cron_state).where(
                t.cron_state.c.function_id.in_(bindparam("ids", expanding=True))
            )
        )
        self.active_runs = prepare(
            select(r.id).where(
                r.function_id.in_(bindparam("ids", expanding=True)),
                r.status.in_(ACTIVE_STATUSES),
            )
        )


def _app_values(app: AppRecord) -> dict[str, Any]:
    return {
        "kind": app.kind,
        "url": app.url,
        "sdk": app.sdk,
        "framework": app.framework,
        "app_version": app.app_version,
        "checksum": app.checksum,
        "synced_at": app.synced_at.timestamp(),
    }


class AppsMixin:
    """`SqlStore`'s app registry (see the module docstring)."""

    def sync_app(
        self: StoreInternals,
        app: AppRecord,
        functions: Sequence[FunctionRecord],
        now: datetime,
        routing: EventRouting,
    ) -> AppSync:
        """Replace an SDK app's function set, all or nothing (see `Store.sync_app`)."""
        sql = self._apps
        with self._transaction() as tx:
            stored = tx.first(sql.app, app_id=app.id)
            if _unchanged(stored, app):  # a re-sync of the same app: nothing for routing to read
                tx.execute(sql.touch_app, app_id=app.id, synced_at=now.timestamp())
                return AppSync(modified=False)
            tx.execute(sql.bump_registry)  # first: it orders the registry's changes
            stored = tx.first(sql.app, app_id=app.id)
            if stored is not None and stored["kind"] != app.kind:
                raise errors.Conflict(f"app id {app.id!r} belongs to a {stored['kind']} app")
            _check_owners(tx, sql, app.id, functions)
            if stored is None:
                tx.execute(sql.insert_app, id=app.id, **_app_values(app))
            else:
                tx.execute(sql.update_app, app_id=app.id, **_app_values(app))
            _upsert_functions(tx, sql, app.id, functions, now)
            kept = {fn.id for fn in functions}
            removed = sorted(set(tx.scalars(sql.functions_of, app_id=app.id)) - kept)
            if removed:
                _remove_functions(self, tx, sql, app.id, removed, now, routing)
        return AppSync(modified=True, removed=tuple(removed))

    def list_apps(self: StoreInternals) -> list[AppRecord]:
        """Every app, by id."""
        sql = self._apps
        with self._transaction() as tx:
            return [AppRecord.from_row(row) for row in tx.rows(sql.apps)]


def _unchanged(stored: Any, app: AppRecord) -> bool:
    """Whether the stored app is `app` as synced last time (same kind and checksum)."""
    return (
        stored is not None
        and stored["kind"] == app.kind
        and app.checksum is not None
        and stored["checksum"] == app.checksum
    )


def _check_owners(
    tx: RawTransaction, sql: AppStatements, app_id: str, functions: Sequence[FunctionRecord]
) -> None:
    """Refuse function ids that another app registered."""
    if not functions:
        return
    for row in tx.rows(sql.owners, ids=[fn.id for fn in functions]):
        if row["app_id"] != app_id:
            raise errors.Conflict(
                f"function id {row['id']!r} belongs to app {row['app_id']!r}; "
                "function ids must be unique across apps"
            )


def _upsert_functions(
    tx: RawTransaction,
    sql: AppStatements,
    app_id: str,
    functions: Sequence[FunctionRecord],
    now: datetime,
) -> None:
    existing = set(tx.scalars(sql.functions_of, app_id=app_id))
    for fn in functions:
        values = {"name": fn.name, "config": fn.config, "updated_at": now.timestamp()}
        if fn.id in existing:
            tx.execute(sql.update_function, function_id=fn.id, **values)
        else:
            tx.execute(sql.insert_function, id=fn.id, app_id=app_id, paused=False, **values)


def _remove_functions(
    store: StoreInternals,
    tx: RawTransaction,
    sql: AppStatements,
    app_id: str,
    removed: list[str],
    now: datetime,
    routing: EventRouting,
) -> None:
    """Forget functions the app no longer has; cancel their active runs."""
    tx.execute(sql.delete_functions, ids=removed)
    tx.execute(sql.delete_cron, ids=removed)
    reason = f"its function was removed from app {app_id!r} by a sync"
    for run_id in tx.scalars(sql.active_runs, ids=removed):
        store._end_run(tx, run_id, "CANCELLED", now, routing, reason=reason)
