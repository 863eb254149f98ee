"""The tables, as SQLAlchemy Core metadata: the single source of truth for the schema.

Times are stored as epoch seconds (double precision) on both backends: sortable, compact and
cheap to convert on the hot path. Payloads (event data, step outputs, errors) are JSON text that
the store never interprets.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

functions = Table(
    "functions",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("app_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("config", Text, nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("updated_at", Double, nullable=False),
    # The pause in force: since when, who paused it and the reason they gave (cleared by resume).
    Column("paused_at", Double),
    Column("paused_by", String(255)),
    Column("pause_reason", Text),
)

# An app: a set of functions registered together. Python apps register from the processes that
# load them; SDK apps (served over HTTP by an official Inngest SDK) sync from their serve URL,
# and a sync replaces their function set. `checksum` makes an identical re-sync a no-op.
apps = Table(
    "apps",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("url", Text),
    Column("sdk", String(64)),
    Column("framework", String(64)),
    Column("app_version", String(255)),
    Column("checksum", String(64)),
    Column("synced_at", Double, nullable=False),
)

# One row whose version grows with every change to the registry (sync, pause, resume): event
# intake reads it in its own transaction to know whether its cached copy of the registry is stale.
REGISTRY_ROW = 1  # the id of its single row
registry_version = Table(
    "registry_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("internal_id", String(26), primary_key=True),
    Column("id", String(255), nullable=False),
    Column("name", String(512), nullable=False),
    Column("data", Text, nullable=False),
    Column("user", Text, nullable=False),
    Column("ts", Double, nullable=False),
    Column("received_at", Double, nullable=False),
    Column("source", String(32), nullable=False),
    # Who sent it: the name of the event key or API token it came with (null when open).
    Column("sent_by", String(255)),
    Index(None, "name", "received_at"),
    Index(None, "received_at"),
)

# An event id is an idempotency key for 24 hours; this table remembers who holds each key.
event_ids = Table(
    "event_ids",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("internal_id", String(26), nullable=False),
    Column("expires_at", Double, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("function_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("detail", String(16)),
    Column("trigger_kind", String(16), nullable=False),
    Column("trigger_by", String(255)),
    Column("event_id", String(26)),
    Column("event_ids", Text, nullable=False),
    Column("replay_of", String(26)),
    Column("idempotency_key", String(255)),
    Column("attempt", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("output", Text),
    Column("error", Text),
    Column("created_at", Double, nullable=False),
    Column("started_at", Double),
    Column("ended_at", Double),
    Column("timeout_seconds", Double),
    Column("timeout_at", Double),
    Column("progress_done", Double),
    Column("progress_total", Double),
    Column("progress_message", Text),
    Column("progress_at", Double),  # when the progress was last reported (committed)
    Column("counters", Text, nullable=False, default="{}"),
    # Counters and log lines written before the step at this position are stored: a replay
    # reaching that code again must not write them twice.
    Column("saved_before_step", Integer, nullable=False, default=-1, server_default="-1"),
    # Why the run was skipped, cancelled or is held back, in words; and the event that
    # cancelled it (a `cancel_on` match).
    Column("reason", Text),
    Column("cancelled_by", String(26)),
    # A run started by another run's step (`step.invoke`, a `step.parallel` branch): that run
    # and the hash of its step, settled when this run ends.
    Column("parent_run_id", String(26)),
    Column("parent_step", String(40)),
    # The latest time the run may start (`timeouts.start`); past it, it is cancelled.
    Column("start_by", Double),
    # A dry run: its steps run, but what it sends (`step.send_event`) is only recorded.
    Column("dry_run", Boolean, nullable=False, default=False, server_default=false()),
    # A person's actions on the run: who asked to cancel it and the reason they gave, and the
    # reason given for starting it (a replay or rerun of another run).
    Column("cancel_requested_by", String(255)),
    Column("cancel_reason", Text),
    Column("trigger_reason", Text),
    UniqueConstraint("function_id", "idempotency_key"),
    Index(None, "function_id", "status", "created_at"),
    Index(None, "function_id", "created_at"),
    Index(None, "status", "created_at"),
    Index(None, "created_at"),
    Index(None, "event_id"),
    # Success rates count the runs that ended in a window (`function_stats`): a range scan of
    # this covering index, never of the table.
    Index(None, "ended_at", "function_id", "status"),
    Index(None, "parent_run_id"),
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(26), nullable=False),
    Column("hash", String(40), nullable=False),
    Column("id", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("position", Integer, nullable=False),
    Column("output", Text),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, default=1),
    Column("started_at", Double, nullable=False),
    Column("ended_at", Double),
    Column("wake_at", Double),
    PrimaryKeyConstraint("run_id", "hash"),
)

# One row per failed attempt, of a step (step_hash set) or of the function itself (step_hash "").
attempts = Table(
    "attempts",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(26), nullable=False),
    Column("step_hash", String(40), nullable=False),
    Column("step_id", String(255)),
    Column("attempt", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("ended_at", Double, nullable=False),
    Column("retry_at", Double),
    Index(None, "run_id"),
)

run_logs = Table(
    "run_logs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(26), nullable=False),
    Column("ts", Double, nullable=False),
    Column("level", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Column("step_id", String(255)),
    Index(None, "run_id", "seq"),
)

# One row per active run; a worker owns it while its lease is current.
queue = Table(
    "queue",
    metadata,
    Column("run_id", String(26), primary_key=True),
    Column("function_id", String(255), nullable=False),
    Column("available_at", Double, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Double),
    # Seconds of head start (`priority`): items are claimed in order of available_at - priority.
    Column("priority", Integer, nullable=False, default=0),
    Column("timeout_at", Double),
    # Concurrency keys (up to two) and their limits: a leased item holds a slot of each.
    Column("slot_key_1", String(512)),
    Column("slot_limit_1", Integer),
    Column("slot_key_2", String(512)),
    Column("slot_limit_2", Integer),
    # The step the leaseholder is executing and since when, as its last heartbeat said
    # (cleared by each claim): what the run page shows in flight.
    Column("step_id", String(255)),
    Column("step_started_at", Double),
    Index(None, "available_at"),
    Index(None, "timeout_at"),
)
# The claim's two lookups, each an index range scan in claim order instead of a scan and sort of
# the whole queue: unleased items by (available_at - priority), and leases by expiry.
CLAIM_ORDER = queue.c.available_at - queue.c.priority
Index(
    "ix_queue_ready",
    CLAIM_ORDER,
    sqlite_where=queue.c.lease_owner.is_(None),
    postgresql_where=queue.c.lease_owner.is_(None),
)
Index(
    "ix_queue_leased",
    queue.c.lease_expires_at,
    sqlite_where=queue.c.lease_owner.is_not(None),
    postgresql_where=queue.c.lease_owner.is_not(None),
)

# The slots held per concurrency key: leased items, counted by key.
for _column in ("slot_key_1", "slot_key_2"):
    Index(
        f"ix_queue_held_{_column}",
        queue.c[_column],
        sqlite_where=and_(queue.c[_column].is_not(None), queue.c.lease_owner.is_not(None)),
        postgresql_where=and_(queue.c[_column].is_not(None), queue.c.lease_owner.is_not(None)),
    )

waits = Table(
    "waits",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(26), nullable=False),
    Column("step_hash", String(40), nullable=False),
    Column("event_name", String(512), nullable=False),
    Column("expression", Text),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    UniqueConstraint("run_id", "step_hash"),
    Index(None, "event_name"),
)

cron_state = Table(
    "cron_state",
    metadata,
    Column("function_id", String(255), nullable=False),
    Column("schedule", String(255), nullable=False),
    Column("last_tick", Double, nullable=False),
    # Ticks that fell due while no scheduler ran and were never run (the `missed` policy).
    Column("missed_total", Integer, nullable=False, default=0, server_default="0"),
    PrimaryKeyConstraint("function_id", "schedule"),
)

# Workers registered with the database; `heartbeat_at` is written by the claim loop itself, so
# a stale heartbeat means "not claiming work", whatever the process is doing.
workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("slots", Integer, nullable=False),
    Column("inflight", Integer, nullable=False),
    Column("functions", Text, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
    Column("heartbeat_seconds", Double, nullable=False),
    Column("stopping", Boolean, nullable=False, default=False),
    # Slots held by steps the worker gave up on (run cancelled or timed out mid-step).
    Column("abandoned", Integer, nullable=False, default=0, server_default="0"),
)

# Flow control: throttle, rate limit and idempotency state per key (GCRA's theoretical arrival
# time); a row is useless after `expires_at` and removed by the scheduler.
flow_buckets = Table(
    "flow_buckets",
    metadata,
    Column("key", String(600), primary_key=True),
    Column("tat", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Index(None, "expires_at"),
)

# The run holding each singleton key (it may have ended since: then the key is free).
singletons = Table(
    "singletons",
    metadata,
    Column("key", String(600), primary_key=True),
    Column("run_id", String(26), nullable=False),
)

# Debounce and batch buffers: the queued run that collects a key's triggers until it starts.
pending_runs = Table(
    "pending_runs",
    metadata,
    Column("key", String(600), primary_key=True),
    Column("run_id", String(26), nullable=False),
    Column("size", Integer, nullable=False),
    Column("first_at", Double, nullable=False),
)

# Events of a batch after its first (a run's `event_id`), so each event finds its run.
batch_members = Table(
    "batch_members",
    metadata,
    Column("event_id", String(26), nullable=False),
    Column("run_id", String(26), nullable=False),
    PrimaryKeyConstraint("event_id", "run_id"),
)

# `cancel_on` listeners of active runs, found by event name.
cancel_listeners = Table(
    "cancel_listeners",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(26), nullable=False),
    Column("event_name", String(512), nullable=False),
    Column("expression", Text),
    # A `match` listener: the run's value at `match_path`, which the incoming event's value
    # at the same path must equal (JSON text, as `_flow_keys.key_text` writes it).
    Column("match_path", String(255)),
    Column("match_value", String(600)),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Index(None, "event_name", "match_path", "match_value"),
    Index(None, "run_id"),
)

# Named API tokens and event keys. Only the SHA-256 of a secret is kept: secrets are 32 random
# bytes, so a fast hash is enough and a lookup by hash compares no secret. A token's `role` is
# read, operate or admin; `functions` (a JSON list) limits it to those functions. A revoked
# credential keeps its row (and its name) for the audit log.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("functions", Text),
    Column("created_at", Double, nullable=False),
    Column("created_by", String(255)),
    Column("revoked_at", Double),
    Column("last_used_at", Double),
    UniqueConstraint("secret_hash"),
)

event_keys = Table(
    "event_keys",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("created_by", String(255)),
    Column("revoked_at", Double),
    Column("last_used_at", Double),
    UniqueConstraint("secret_hash"),
)

# Every operator action, appended: who (`actor`), when, what (`action`), on what (`target`),
# the reason given and the rest as a JSON object (a bulk action's filter and count, ...).
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(512)),
    Column("reason", Text),
    Column("details", Text, nullable=False),
    Index(None, "at"),
)

# Large outputs (`store/blobs.py`): one row per blob, named by the SHA-256 of its bytes, with its
# size and when it was last written (a write of the same bytes renews it). The bytes are in a
# directory beside a SQLite file, and in `blob_chunks` on PostgreSQL. `blob_refs`: which runs
# refer to which blob, written with the reference; a blob no run refers to is removed.
blobs = Table(
    "blobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("written_at", Double, nullable=False),
    Index(None, "written_at"),
)

blob_chunks = Table(
    "blob_chunks",
    metadata,
    Column("blob_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("blob_id", "seq"),
)

blob_refs = Table(
    "blob_refs",
    metadata,
    Column("run_id", String(26), nullable=False),
    Column("blob_id", String(64), nullable=False),
    PrimaryKeyConstraint("run_id", "blob_id"),
    Index(None, "blob_id"),
)
