"""What the store's domain modules (`endings`, `cancellation`, `slots`) use of `SqlStore`.

They are mixins of `SqlStore`; this protocol is their `self` type, so that each module reads
as a unit yet is type-checked against the parts of the store it relies on.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from stepline.store._prepared import RawTransaction
from stepline.store.base import (
    EventRecord,
    EventRouting,
    NewRun,
    RunEnd,
    RunStatus,
)

if TYPE_CHECKING:
    from stepline.store.admission import Admission, Refusal
    from stepline.store.apps import AppStatements
    from stepline.store.cancellation import CancellationStatements
    from stepline.store.endings import EndingStatements
    from stepline.store.slots import SlotStatements


class StoreInternals(Protocol):
    """The parts of `SqlStore` its domain mixins call."""

    _sql: Any
    _admission: Admission
    _endings: EndingStatements
    _cancellation: CancellationStatements
    _slots: SlotStatements
    _apps: AppStatements

    def _transaction(self) -> AbstractContextManager[RawTransaction]: ...

    def _ingest(
        self,
        tx: RawTransaction,
        events: Sequence[EventRecord],
        routing: EventRouting,
        now: datetime,
    ) -> tuple[list[str], bool]: ...

    def _triggers_on(
        self, tx: RawTransaction, version: int, name: str, routing: EventRouting
    ) -> bool: ...

    def _singleton(
        self, tx: RawTransaction, run: NewRun, now: datetime, routing: EventRouting
    ) -> Refusal | None: ...

    def _insert_skipped(
        self,
        tx: RawTransaction,
        run: NewRun,
        refusal: Refusal,
        now: datetime,
        routing: EventRouting,
    ) -> None: ...

    def _insert_plain_run(self, tx: RawTransaction, run: NewRun, now: datetime) -> None: ...

    def _insert_run_rows(
        self,
        tx: RawTransaction,
        run: NewRun,
        now: datetime,
        *,
        available_at: float | None = None,
        status: RunStatus = "QUEUED",
        detail: str | None = None,
        reason: str | None = None,
    ) -> None: ...

    def _waited_names(self, tx: RawTransaction, names: Sequence[str]) -> set[str]: ...

    def _event_by_internal_id(
        self, tx: RawTransaction, internal_id: str | None
    ) -> EventRecord | None: ...

    def _events_by_id(self, tx: RawTransaction, ids: Any) -> list[EventRecord]: ...

    def _end_run(
        self,
        tx: RawTransaction,
        run_id: str,
        status: RunStatus,
        now: datetime,
        routing: EventRouting,
        *,
        reason: str | None = None,
        cancelled_by: str | None = None,
        error: str | None = None,
        requested_by: str | None = None,
        request_reason: str | None = None,
    ) -> bool: ...

    def _ended(self, tx: RawTransaction, end: RunEnd) -> None: ...

    def _after_end(
        self,
        tx: RawTransaction,
        ended: RunEnd,
        now: datetime,
        routing: EventRouting,
        *,
        finished_listened: bool | None = None,
    ) -> None: ...

    def _settle_parent(self, tx: RawTransaction, ended: RunEnd, now: datetime) -> None: ...

    def _refer_to_blob(self, tx: RawTransaction, run_id: str, output: str | None) -> None: ...

    def _listened(self, tx: RawTransaction, name: str, routing: EventRouting) -> bool: ...

    def _matched_listeners(
        self, tx: RawTransaction, event: EventRecord, now: datetime
    ) -> list[str]: ...

    def _held_conditions(
        self, tx: RawTransaction, event: EventRecord, routing: EventRouting, now: datetime
    ) -> list[str]: ...

    def _lock_slot_keys(self, tx: RawTransaction, keys: Sequence[str]) -> None: ...

    def _full_keys(self, tx: RawTransaction) -> list[str]: ...

    def _within_limits(
        self, tx: RawTransaction, leased: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], set[str]]: ...
