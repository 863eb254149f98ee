"""Named tokens and event keys (stored by the hash of their secret, revocable) and the audit
log (appended, read newest first, by actor or action, keyset-paged), on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stepline import errors
from stepline.engine.access import hash_secret
from stepline.store.access import AuditEntry, AuditQuery, CredentialRecord
from stepline.store.base import Store
from stepline.store.postgres import PostgresStore
from stepline.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def token(
    name: str, secret: str, role: str = "read", functions: tuple[str, ...] | None = None
) -> CredentialRecord:
    return CredentialRecord(
        name=name,
        secret_hash=hash_secret(secret),
        created_at=T0,
        role=role,
        functions=functions,
        created_by="bootstrap",
    )


def test_a_token_is_found_by_its_secrets_hash_and_keeps_role_and_functions(store: Store) -> None:
    store.create_credential("token", token("ci", "s3cret", role="operate", functions=("a", "b")))

    found = store.credential_by_hash("token", hash_secret("s3cret"))

    assert found is not None
    assert (found.name, found.role, found.functions) == ("ci", "operate", ("a", "b"))
    assert (found.created_at, found.created_by, found.revoked) == (T0, "bootstrap", False)
    assert store.credential_by_hash("token", hash_secret("other")) is None
    assert store.credential_by_hash("key", hash_secret("s3cret")) is None, "keys are apart"


def test_a_taken_name_is_refused_even_once_revoked(store: Store) -> None:
    store.create_credential("token", token("ci", "one"))
    store.revoke_credential("token", "ci", T0)

    with pytest.raises(errors.Conflict, match="'ci'"):
        store.create_credential("token", token("ci", "two"))


def test_revoking_is_idempotent_and_keeps_the_first_time(store: Store) -> None:
    key = CredentialRecord(name="shop", secret_hash=hash_secret("k"), created_at=T0)
    store.create_credential("key", key)

    first = store.revoke_credential("key", "shop", T0 + timedelta(hours=1))
    again = store.revoke_credential("key", "shop", T0 + timedelta(hours=2))

    assert first.revoked_at == again.revoked_at == T0 + timedelta(hours=1)
    found = store.credential_by_hash("key", hash_secret("k"))
    assert found is not None and found.revoked and found.role is None
    with pytest.raises(errors.NotFound, match="known: shop"):
        store.revoke_credential("key", "nope", T0)


def test_intakes_one_read_finds_a_key_and_says_whether_any_was_made(store: Store) -> None:
    assert store.credential_and_others("key", hash_secret("k")) == (None, False)
    key = CredentialRecord(name="shop", secret_hash=hash_secret("k"), created_at=T0)
    store.create_credential("key", key)
    store.create_credential("token", token("ci", "t"))

    found, made = store.credential_and_others("key", hash_secret("k"))
    assert found == key and made
    assert store.credential_and_others("key", hash_secret("other")) == (None, True)
    assert store.credential_and_others("key", hash_secret("t")) == (None, True), "tokens apart"
    store.revoke_credential("key", "shop", T0)
    found, made = store.credential_and_others("key", hash_secret("k"))
    assert found is not None and found.revoked and made


def test_a_credential_lookup_on_an_unreachable_store_is_store_unavailable(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    for unreachable in (
        SqliteStore(directory),  # SQLite cannot open a directory
        PostgresStore("postgresql://postgres@127.0.0.1:1/none"),  # nothing listens there
    ):
        with pytest.raises(errors.StoreUnavailable):
            unreachable.credential_by_hash("token", hash_secret("t"))
        with pytest.raises(errors.StoreUnavailable):
            unreachable.credential_and_others("key", hash_secret("k"))
        assert unreachable.tally.errors == 2
        unreachable.close()


def test_credentials_are_listed_by_name_with_their_last_use(store: Store) -> None:
    store.create_credential("token", token("zeta", "z"))
    store.create_credential("token", token("alpha", "a"))
    store.touch_credential("token", "zeta", T0 + timedelta(minutes=5))

    listed = store.list_credentials("token")

    assert [(t.name, t.last_used_at) for t in listed] == [
        ("alpha", None),
        ("zeta", T0 + timedelta(minutes=5)),
    ]
    assert store.list_credentials("key") == []


def test_the_audit_log_reads_newest_first_filtered_and_paged(store: Store) -> None:
    for i in range(5):
        store.append_audit(
            AuditEntry(
                at=T0 + timedelta(seconds=i),
                actor="ci" if i % 2 else "dashboard:ops",
                action="run.cancel",
                target=f"run-{i}",
                reason="bad deploy" if i == 4 else None,
                details={"count": i, "filter": {"status": "FAILED"}},
            )
        )

    newest = store.list_audit(AuditQuery(limit=2))
    older = store.list_audit(AuditQuery(before=newest[-1].seq, limit=10))
    by_ci = store.list_audit(AuditQuery(actor="ci"))

    assert [e.target for e in newest] == ["run-4", "run-3"]
    assert [e.target for e in older] == ["run-2", "run-1", "run-0"]
    assert newest[0].reason == "bad deploy" and newest[0].at == T0 + timedelta(seconds=4)
    assert newest[0].details == {"count": 4, "filter": {"status": "FAILED"}}
    assert [e.target for e in by_ci] == ["run-3", "run-1"]
    assert store.list_audit(AuditQuery(action="token.create")) == []
