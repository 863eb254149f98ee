"""Large outputs: blobs kept outside the rows that refer to them.

A step's or run's output above the engine's inline limit (`engine/outputs.py`) is stored as a
blob named by the SHA-256 of its bytes, and the row keeps a reference in its `output` column:
`@blob:<sha256>:<size>`. No JSON text starts with "@", so a reference is never taken for a
value. The bytes are in a directory beside a SQLite file, or in `blob_chunks` rows of 1 MiB on
PostgreSQL, so that every machine reads them. `blob_refs` says which runs refer to a blob; the
store writes it in the transaction that stores a reference, whoever writes it (a step, a run's
end, an invoked run's result settling its parent's step, a rerun's reused steps), so a copy of
an output holds the blob too.

`put_blob` renews the blob's row before it writes the bytes (once per content), all before the
transaction that stores the reference commits. Retention (`store/retention.py`) removes a blob
no run refers to once its row is older than `ORPHAN_GRACE`: a blob just written, whose
reference is not committed yet, is kept, and a blob whose runs were pruned goes with them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import delete, exists, select, update
from sqlalchemy.engine import Connection, Dialect

from stepline import errors
from stepline.store import schema as t
from stepline.store._prepared import Prepared, RawTransaction
from stepline.store._upsert import insert_if_absent
from stepline.store.pruning import PruneCounts, PrunePass, timed_write

BLOB_PREFIX = "@blob:"
CHUNK_BYTES = 1 << 20
ORPHAN_GRACE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored blob: the SHA-256 (hex) of its bytes, and how many bytes it has."""

    id: str
    size: int

    def text(self) -> str:
        """The reference as an `output` column holds it."""
        return f"{BLOB_PREFIX}{self.id}:{self.size}"


def blob_ref(output: str | None) -> BlobRef | None:
    """The blob an `output` column refers to; None for inline JSON (or no output)."""
    if output is None or not output.startswith(BLOB_PREFIX):
        return None
    blob_id, _, size = output.removeprefix(BLOB_PREFIX).partition(":")
    return BlobRef(blob_id, int(size))


class BlobStore(Protocol):
    """Where large outputs are kept (see the module docstring)."""

    def put_blob(self, data: bytes, now: datetime) -> BlobRef:
        """Store `data` (once per content) and return its reference.

        Raises `StoreUnavailable` when the bytes cannot be written (the database, or the
        blob folder: a full disk).
        """
        ...

    def blob_chunks(self, ref: BlobRef) -> Iterator[bytes]:
        """The blob's bytes, a chunk at a time; raises `NotFound` if it is gone."""
        ...

    def read_blob(self, ref: BlobRef) -> bytes:
        """The blob's bytes, whole; raises `NotFound` if it is gone."""
        ...


class BlobStatements:
    """The hot path's statement: a run refers to a blob (compiled once per store)."""

    def __init__(self, dialect: Dialect, prepare: Callable[..., Prepared]) -> None:
        self.refer = prepare(insert_if_absent(dialect, t.blob_refs), ["run_id", "blob_id"])


class _Connections(Protocol):
    _blob_dir: Path | None
    _blob_statements: BlobStatements

    def _read(self) -> AbstractContextManager[Connection]: ...

    def _write(self) -> AbstractContextManager[Connection]: ...

    def _drop_unreferenced(
        self, conn: Connection, ids: Sequence[str], written_before: float
    ) -> int: ...


class BlobsMixin:
    """`SqlStore`'s blobs: bytes in `_blob_dir` when set, else in `blob_chunks`."""

    def put_blob(self: _Connections, data: bytes, now: datetime) -> BlobRef:
        """Store `data` (once per content) and return its reference."""
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        b = t.blobs.c
        with self._write() as conn:
            renewed = conn.execute(
                update(t.blobs).where(b.id == ref.id).values(written_at=now.timestamp())
            ).rowcount
            inserted = (
                not renewed
                and conn.execute(
                    insert_if_absent(conn.dialect, t.blobs).returning(b.id),
                    {"id": ref.id, "size": ref.size, "written_at": now.timestamp()},
                ).first()
            )
            if inserted and self._blob_dir is None:  # (else another writer stored the chunks)
                _insert_chunks(conn, ref.id, data)
        if self._blob_dir is not None:
            try:
                _write_file(_blob_path(self._blob_dir, ref.id), data)
            except OSError as exc:  # a full disk, a folder gone: as the database being down
                raise errors.StoreUnavailable(f"blob store {self._blob_dir}: {exc}") from exc
        return ref

    def blob_chunks(self: _Connections, ref: BlobRef) -> Iterator[bytes]:
        """The blob's bytes, a chunk at a time; raises `NotFound` if it is gone."""
        if self._blob_dir is not None:
            return _file_chunks(_blob_path(self._blob_dir, ref.id), ref)
        return _table_chunks(self, ref)

    def read_blob(self: _Connections, ref: BlobRef) -> bytes:
        """The blob's bytes, whole; raises `NotFound` if it is gone."""
        return b"".join(BlobsMixin.blob_chunks(self, ref))

    def _refer_to_blob(
        self: _Connections, tx: RawTransaction, run_id: str, output: str | None
    ) -> None:
        """Record that `run_id` refers to the blob `output` names, if it names one."""
        ref = blob_ref(output)
        if ref is not None:
            tx.execute(self._blob_statements.refer, run_id=run_id, blob_id=ref.id)

    def _prune_blobs(self: _Connections, progress: PrunePass, limit: int) -> PruneCounts:
        """Remove (dry: count) up to `limit` blobs no run refers to; advances `progress`.

        A dry run counts those whose runs it counted as removed too.
        """
        before = progress.rule.now - ORPHAN_GRACE.total_seconds()
        with self._read() as conn:
            if progress.dry_run:
                holders = _blob_holders(conn, before, progress.blob_cursor, limit)
                page = sorted(holders)
                gone = progress.counted_runs
                chosen = [blob_id for blob_id in page if holders[blob_id] <= gone]
            else:
                page = chosen = _unreferenced(conn, before, progress.blob_cursor, limit)
        if len(page) < limit:
            progress.blobs_done = True
        if page:
            progress.blob_cursor = page[-1]
        if progress.dry_run or not chosen:
            return PruneCounts(blobs=len(chosen))
        with timed_write(progress), self._write() as conn:
            return PruneCounts(blobs=self._drop_unreferenced(conn, chosen, before))

    def _drop_unreferenced(
        self: _Connections, conn: Connection, ids: Sequence[str], written_before: float
    ) -> int:
        """Delete the blobs among `ids` no run refers to, written before then; how many went.

        Their files are removed inside the transaction (SQLite: holding the write lock), so a
        `put_blob` of the same bytes, which renews the row first, can never lose its file.
        """
        b, r = t.blobs.c, t.blob_refs.c
        query = (
            delete(t.blobs)
            .where(
                b.id.in_(list(ids)),
                b.written_at < written_before,
                ~exists().where(r.blob_id == b.id),
            )
            .returning(b.id)
        )
        dropped = list(conn.execute(query).scalars())
        if dropped and self._blob_dir is None:
            conn.execute(delete(t.blob_chunks).where(t.blob_chunks.c.blob_id.in_(dropped)))
        if dropped and self._blob_dir is not None:
            for blob_id in dropped:
                _blob_path(self._blob_dir, blob_id).unlink(missing_ok=True)
        return len(dropped)


def _unreferenced(
    conn: Connection, written_before: float, after: str | None, limit: int
) -> list[str]:
    """Up to `limit` blobs no run refers to, written before then, by id after `after`."""
    b, r = t.blobs.c, t.blob_refs.c
    query = select(b.id).where(b.written_at < written_before, ~exists().where(r.blob_id == b.id))
    if after is not None:
        query = query.where(b.id > after)
    return list(conn.execute(query.order_by(b.id).limit(limit)).scalars())


def _blob_holders(
    conn: Connection, written_before: float, after: str | None, limit: int
) -> dict[str, set[str]]:
    """Up to `limit` blobs written before then, by id after `after`, with the runs holding each."""
    b, r = t.blobs.c, t.blob_refs.c
    query = select(b.id).where(b.written_at < written_before)
    if after is not None:
        query = query.where(b.id > after)
    holders: dict[str, set[str]] = {
        blob_id: set() for blob_id in conn.execute(query.order_by(b.id).limit(limit)).scalars()
    }
    if holders:
        for blob_id, run_id in conn.execute(
            select(r.blob_id, r.run_id).where(r.blob_id.in_(list(holders)))
        ):
            holders[blob_id].add(run_id)
    return holders


def _blob_path(directory: Path, blob_id: str) -> Path:
    return directory / blob_id[:2] / blob_id


def _write_file(path: Path, data: bytes) -> None:
    """Write the blob's file, durably, unless it is there already (same name, same bytes)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.partial")
    with partial.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _missing(ref: BlobRef) -> errors.NotFound:
    return errors.NotFound(f"blob {ref.id} ({ref.size:,} bytes) is missing")


def _file_chunks(path: Path, ref: BlobRef) -> Iterator[bytes]:
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise _missing(ref) from None
    return _read_file(file)


def _read_file(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk


def _insert_chunks(conn: Connection, blob_id: str, data: bytes) -> None:
    rows = [
        {"blob_id": blob_id, "seq": seq, "data": data[start : start + CHUNK_BYTES]}
        for seq, start in enumerate(range(0, max(len(data), 1), CHUNK_BYTES))
    ]
    conn.execute(t.blob_chunks.insert(), rows)


def _table_chunks(store: _Connections, ref: BlobRef) -> Iterator[bytes]:
    c = t.blob_chunks.c
    with store._read() as conn:
        last = conn.execute(
            select(c.seq).where(c.blob_id == ref.id).order_by(c.seq.desc()).limit(1)
        ).scalar()
    if last is None:
        raise _missing(ref)
    return _read_chunks(store, ref.id, last)


def _read_chunks(store: _Connections, blob_id: str, last: int) -> Iterator[bytes]:
    c = t.blob_chunks.c
    for seq in range(last + 1):  # a chunk per read: a 64 MiB blob is never whole in memory
        with store._read() as conn:
            chunk = conn.execute(
                select(c.data).where(c.blob_id == blob_id, c.seq == seq)
            ).scalar_one()
        yield bytes(chunk)
