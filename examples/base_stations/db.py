"""The app's own stations table, in a SQLite file of its own (not Stepline's database).

`STATIONS_DB` names the file (default `.stepline/stations.db`). Every function here opens and
closes its own connection and does its work in one transaction, so each is safe to call from
a step: it either happens completely or not at all, and a retried step starts clean.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Literal, TypedDict

from examples.base_stations.vendor import Station

DEFAULT_PATH = Path(".stepline") / "stations.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    serial            TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    lat               REAL NOT NULL,
    lon               REAL NOT NULL,
    vendor_updated_at TEXT NOT NULL,
    synced_at         TEXT NOT NULL
)
"""
Outcome = Literal["inserted", "updated", "unchanged"]


class Changes(TypedDict):
    """What an upsert did (or, in a dry run, would do)."""

    inserted: int
    updated: int
    unchanged: int


def db_path() -> Path:
    """The stations database file: `STATIONS_DB` or `.stepline/stations.db`."""
    return Path(os.environ.get("STATIONS_DB") or DEFAULT_PATH)


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """A connection with the table in place, inside one transaction (committed on success)."""
    path = path or db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        with conn:
            conn.execute(SCHEMA)
            yield conn


def upsert(stations: Sequence[Station], synced_at: str, *, write: bool = True) -> Changes:
    """Insert new stations, update changed ones, stamp all with `synced_at`.

    With `write=False` nothing is written and the result says what would have changed.
    """
    changes: Changes = {"inserted": 0, "updated": 0, "unchanged": 0}
    with connect() as conn:
        for station in stations:
            outcome = _classify(conn, station)
            changes[outcome] += 1
            if write:
                _save(conn, station, synced_at)
    return changes


def _classify(conn: sqlite3.Connection, station: Station) -> Outcome:
    """New, changed (the vendor's data differs; `synced_at` is ours) or unchanged."""
    row = conn.execute(
        "SELECT name, lat, lon, vendor_updated_at FROM stations WHERE serial = ?",
        (station["serial"],),
    ).fetchone()
    if row is None:
        return "inserted"
    fresh = (station["name"], station["lat"], station["lon"], station["vendor_updated_at"])
    return "unchanged" if tuple(row) == fresh else "updated"


def _save(conn: sqlite3.Connection, station: Station, synced_at: str) -> None:
    conn.execute(
        """
        INSERT INTO stations (serial, name, lat, lon, vendor_updated_at, synced_at)
        VALUES (:serial, :name, :lat, :lon, :vendor_updated_at, :synced_at)
        ON CONFLICT (serial) DO UPDATE SET
            name = excluded.name, lat = excluded.lat, lon = excluded.lon,
            vendor_updated_at = excluded.vendor_updated_at, synced_at = excluded.synced_at
        """,
        {**station, "synced_at": synced_at},
    )


def delete_stale(seen: Sequence[str], *, write: bool = True) -> int:
    """Delete stations whose serial is not in `seen`; returns how many (would) go."""
    where = "WHERE serial NOT IN (SELECT value FROM json_each(?))"
    params = (json.dumps(list(seen)),)
    with connect() as conn:
        if not write:
            row = conn.execute(f"SELECT count(*) FROM stations {where}", params).fetchone()  # noqa: S608
            return int(row[0])
        return conn.execute(f"DELETE FROM stations {where}", params).rowcount  # noqa: S608


class StoredStation(Station):
    """A row of the stations table: the station and when a sync last wrote it."""

    synced_at: str


def stored_stations(path: Path | None = None) -> list[StoredStation]:
    """Every stored station with its `synced_at`, by serial (what the stations page lists)."""
    with connect(path) as conn:
        rows = conn.execute("SELECT * FROM stations ORDER BY serial").fetchall()
    return [
        {
            "serial": row["serial"],
            "name": row["name"],
            "lat": row["lat"],
            "lon": row["lon"],
            "vendor_updated_at": row["vendor_updated_at"],
            "synced_at": row["synced_at"],
        }
        for row in rows
    ]


def all_stations(path: Path | None = None) -> dict[str, Station]:
    """Every stored station by serial (for tests, demos and the curious)."""
    with connect(path) as conn:
        rows = conn.execute("SELECT * FROM stations ORDER BY serial").fetchall()
    return {
        row["serial"]: {
            "serial": row["serial"],
            "name": row["name"],
            "lat": row["lat"],
            "lon": row["lon"],
            "vendor_updated_at": row["vendor_updated_at"],
        }
        for row in rows
    }
