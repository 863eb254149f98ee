"""Signing keys (protocol §4), cross-checked against the official `inngest` Python SDK.

The SDK's own signing, verification, hashing and canonicalisation code is called directly,
and a real SDK app served by FastAPI on loopback answers our trust probes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import fastapi
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic.warnings import PydanticDeprecatedSince20

from stepline.engine.inngest.signing import (
    SigningKeys,
    canonical,
    hashed_key,
    signature_header,
)
from stepline.errors import ConfigurationError
from tests.loopback import Servers

with warnings.catch_warnings():  # inngest 0.5 still declares class-based pydantic configs
    warnings.simplefilter("ignore", PydanticDeprecatedSince20)
    import inngest
    import inngest.fast_api
    from inngest._internal import net, transforms
    from inngest._internal.server_lib import ServerKind

SECRET = "0123456789abcdef0123456789abcdef"
EXAMPLE_KEY = f"signkey-test-{SECRET}"  # §4.2's worked example
KEY = "signkey-prod-" + "5e" * 32
OTHER = "signkey-prod-" + "a7" * 32
AT = 1_700_000_000
NOW = datetime.fromtimestamp(AT, UTC)
BODY = canonical({"event": {"name": "app/user.created", "data": {"n": 1}}, "ctx": {"attempt": 0}})


def sdk_accepts(body: bytes, header: str, key: str, fallback: str | None = None) -> bool:
    """Whether the SDK's own request check (used by its comm handler) accepts the request."""
    result = net.validate_request_sig(
        body=body,
        headers={"x-inngest-signature": header},
        mode=ServerKind.CLOUD,
        signing_key=key,
        signing_key_fallback=fallback,
    )
    return not isinstance(result, Exception)


# -- the worked examples ---------------------------------------------------------------------


def test_request_signature_worked_example() -> None:
    body = canonical({"ctx": {"attempt": 0}, "event": {"name": "app/user.created"}})
    assert body == b'{"ctx":{"attempt":0},"event":{"name":"app/user.created"}}'
    assert signature_header(body, EXAMPLE_KEY, AT) == (
        "t=1700000000&s=f5f5b752315494b86994c6d0847133b33dd3d0fed422defddd23fae6ceffa43b"
    )
    assert signature_header(b"", EXAMPLE_KEY, AT) == (
        "t=1700000000&s=6458320a3e327061ab7bfe28ace9cb02bb2b840c75b483a0c002831176bd6256"
    )


def test_the_prefix_is_not_part_of_the_hmac_key() -> None:
    assert signature_header(BODY, SECRET, AT) == signature_header(BODY, EXAMPLE_KEY, AT)
    assert signature_header(BODY, SECRET, AT) != signature_header(BODY, SECRET, AT + 1)


def test_hashed_key_worked_example() -> None:
    expected = "b2ed992186a5cb19f6668aade821f502c1d00970dfd0e35128d51bac4649916c"
    assert hashed_key("signkey-prod-12345678") == expected
    assert hashed_key("12345678") == expected


def test_hashed_key_matches_the_sdk() -> None:
    assert hashed_key(KEY) == transforms.hash_signing_key(KEY)
    assert hashed_key(KEY) != hashed_key(OTHER)


# -- our requests, the SDK's check -----------------------------------------------------------


def test_sdk_accepts_a_request_we_signed() -> None:
    keys = SigningKeys(KEY)
    header = keys.sign(BODY, NOW)
    assert header.startswith(f"t={AT}&s=")
    assert sdk_accepts(BODY, header, KEY)


def test_sdk_rejects_our_signature_under_another_key_or_body() -> None:
    header = SigningKeys(KEY).sign(BODY, NOW)
    assert not sdk_accepts(BODY, header, OTHER)
    tampered = BODY.replace(b'"n":1', b'"n":2')
    assert tampered != BODY
    assert not sdk_accepts(tampered, header, KEY)


def test_sdk_accepts_our_signature_through_its_fallback_key() -> None:
    header = SigningKeys(KEY).sign(BODY, NOW)
    assert sdk_accepts(BODY, header, OTHER, fallback=KEY)


def test_sdk_accepts_an_empty_body_we_signed() -> None:
    assert sdk_accepts(b"", SigningKeys(KEY).sign(b"", NOW), KEY)


def test_non_ascii_bodies_are_jcs_as_the_sdk_canonicalises_them() -> None:
    value = {"z": "héllo ✓ 🚀", "a": [1.0, 0.1, 1e21, -0.0], "é": {"\u2028": None}}
    body = canonical(value)
    assert body == transforms.canonicalize(json.dumps(value).encode())
    assert "héllo ✓ 🚀".encode() in body  # raw UTF-8, not \u escapes
    assert body != json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    assert sdk_accepts(body, SigningKeys(KEY).sign(body, NOW), KEY)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_the_sdk_recanonicalises_our_bytes_to_themselves(value: Any) -> None:
    body = canonical(value)
    assert transforms.canonicalize(body) == body
    assert sdk_accepts(body, SigningKeys(KEY).sign(body, NOW), KEY)


def test_canonical_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(ValueError):
        canonical({"x": float("nan")})
    with pytest.raises(TypeError):
        canonical({1: "x"})
    with pytest.raises(TypeError):
        canonical({"x": b"bytes"})


# -- SDK responses, our check ----------------------------------------------------------------


def sdk_response_header(body: bytes, key: str, at: int = AT) -> str:
    """What the SDK's own response signer puts on a response."""
    header = net.sign_response(body, key, at)
    assert isinstance(header, str)
    return header


def test_we_verify_a_response_the_sdk_signed() -> None:
    body = b'[{"op":"StepRun","id":"abc","data":{"ok":true}}]'
    assert SigningKeys(KEY).verify(sdk_response_header(body, KEY), body, NOW)


def test_response_bytes_are_verified_raw_not_canonicalised() -> None:
    body = b'{"b": 1, "a": "caf\\u00e9"}'  # not JCS: spaces, order, escapes
    keys = SigningKeys(KEY)
    assert keys.verify(sdk_response_header(body, KEY), body, NOW)
    assert not keys.verify(sdk_response_header(canonical(json.loads(body)), KEY), body, NOW)


def test_verify_rejects_a_wrong_key_and_a_tampered_body() -> None:
    body = b'{"ok":true}'
    assert not SigningKeys(KEY).verify(sdk_response_header(body, OTHER), body, NOW)
    assert not SigningKeys(KEY).verify(sdk_response_header(body, KEY), b'{"ok":false}', NOW)


def test_verify_rejects_a_stale_or_future_timestamp() -> None:
    body = b"null"
    keys = SigningKeys(KEY)
    header = sdk_response_header(body, KEY)
    assert keys.verify(header, body, NOW + timedelta(seconds=299))
    assert keys.verify(header, body, NOW - timedelta(seconds=299))
    assert not keys.verify(header, body, NOW + timedelta(seconds=301))
    assert not keys.verify(header, body, NOW - timedelta(seconds=301))
    assert keys.verify(header, body, NOW + timedelta(seconds=301), max_age_seconds=600)


def test_verify_accepts_the_fallback_key_during_rotation() -> None:
    body = b'{"rotated":true}'
    assert SigningKeys(OTHER, fallback=KEY).verify(sdk_response_header(body, KEY), body, NOW)
    assert SigningKeys(KEY, fallback=OTHER).verify(sdk_response_header(body, OTHER), body, NOW)
    assert not SigningKeys(OTHER).verify(sdk_response_header(body, KEY), body, NOW)


def test_verify_accepts_the_fields_in_either_order() -> None:
    t, s = sdk_response_header(b"", KEY).split("&")
    assert SigningKeys(KEY).verify(f"{s}&{t}", b"", NOW)


@pytest.mark.parametrize(
    "make",
    [
        lambda good: None,
        lambda good: "",
        lambda good: "garbage",
        lambda good: good.split("&")[1],  # no t
        lambda good: good.split("&")[0],  # no s
        lambda good: good.replace("t=", "t=x"),
        lambda good: good.replace("t=", "t=-"),
        lambda good: good + "&s=" + "0" * 64,  # s twice
        lambda good: good + "&v=1",
        lambda good: good[:-2],  # short signature
        lambda good: good[:-1] + "é",
        lambda good: good.replace("&", ";"),
    ],
)
def test_verify_rejects_malformed_headers(make: Any) -> None:
    good = sdk_response_header(b"{}", KEY)
    assert SigningKeys(KEY).verify(good, b"{}", NOW)
    assert SigningKeys(KEY).verify(make(good), b"{}", NOW) is False


# -- bearer tokens ---------------------------------------------------------------------------


def test_bearer_accepts_the_forms_sdks_send() -> None:
    keys = SigningKeys(KEY)
    hashed = transforms.hash_signing_key(KEY)
    assert keys.accepts_bearer(f"Bearer {hashed}")  # py
    assert keys.accepts_bearer(f"Bearer signkey-prod-{hashed}")  # js
    assert keys.accepts_bearer(f"Bearer signkey-test-{hashed}")  # any env prefix
    assert keys.accepts_bearer(f"Bearer {KEY}")  # the raw key
    assert keys.accepts_bearer(f"Bearer {KEY.removeprefix('signkey-prod-')}")


def test_bearer_accepts_the_fallback_key() -> None:
    keys = SigningKeys(OTHER, fallback=KEY)
    assert keys.accepts_bearer(f"Bearer {transforms.hash_signing_key(KEY)}")
    assert keys.accepts_bearer(f"Bearer {transforms.hash_signing_key(OTHER)}")


def test_bearer_works_with_a_bare_hex_key() -> None:
    keys = SigningKeys(SECRET)
    assert keys.accepts_bearer(f"Bearer {hashed_key(SECRET)}")
    assert keys.accepts_bearer(f"Bearer signkey-prod-{SECRET}")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer undefined",
        "Bearer signkey-prod-",
        f"Bearer {transforms.hash_signing_key(OTHER)}",
        f"Bearer {OTHER}",
        f"Basic {transforms.hash_signing_key(KEY)}",
        transforms.hash_signing_key(KEY),
        f"Bearer {transforms.hash_signing_key(KEY)} extra",
        f"Bearer {transforms.hash_signing_key(KEY)[:-1]}",
        f"Bearer {transforms.hash_signing_key(KEY).upper()}",
        f"Bearer {transforms.hash_signing_key(KEY)}é",
    ],
)
def test_bearer_rejects_junk(authorization: str | None) -> None:
    keys = SigningKeys(KEY)
    assert keys.accepts_bearer(f"Bearer {hashed_key(KEY)}")
    assert keys.accepts_bearer(authorization) is False


# -- key validation --------------------------------------------------------------------------


def test_valid_keys() -> None:
    assert SigningKeys(KEY).primary == KEY
    assert SigningKeys(SECRET.upper(), fallback=f"signkey-branch-{SECRET}").fallback is not None


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "is empty"),
        ("signkey-prod-", "is empty"),
        ("signkey-prod-" + "zz" * 20, "not hexadecimal"),
        ("0123456789abcdef0123456789abcdef0", "odd number"),
        ("12345678", "too short"),
        ("signkey-" + SECRET, "signkey-<env>-<hex>"),
        (f" {SECRET}", "not hexadecimal"),
        (f"{SECRET}\n", "not hexadecimal"),
        ("0123456789abcdef 0123456789abcdef", "not hexadecimal"),
        ("signkey-pr od-" + SECRET, "signkey-<env>-<hex>"),
    ],
)
def test_bad_keys_are_refused_without_showing_them(key: str, problem: str) -> None:
    for field, primary, fallback in (
        ("signing key", key, None),
        ("fallback signing key", KEY, key),
    ):
        with pytest.raises(ConfigurationError) as caught:
            SigningKeys(primary, fallback)
        message = str(caught.value)
        assert message.startswith(field)
        assert problem in message
        secret = key.strip().removeprefix("signkey-prod-").removeprefix("signkey-")
        assert not secret or secret not in message
        assert KEY.removeprefix("signkey-prod-") not in message


def test_hashed_key_refuses_bad_hex_without_showing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        hashed_key("signkey-prod-abcdefgh")
    assert "abcdefgh" not in str(caught.value)


def test_repr_hides_the_keys() -> None:
    keys = SigningKeys(KEY, fallback=OTHER)
    for text in (repr(keys), str(keys), f"{keys!r}", repr([keys])):
        assert "5e5e" not in text
        assert "a7a7" not in text
    assert repr(SigningKeys(KEY)) == "SigningKeys(primary='<hidden>', fallback=None)"


# -- end to end: a real SDK app in cloud mode ------------------------------------------------


@pytest.fixture(scope="module")
def sdk_app_url() -> Iterator[str]:
    """A real inngest-py app in production mode signed with KEY, served on loopback."""
    client = inngest.Inngest(app_id="signing-check", is_production=True, signing_key=KEY)

    @client.create_function(fn_id="noop", trigger=inngest.TriggerEvent(event="test/noop"))
    def noop(ctx: inngest.ContextSync) -> None:
        return None

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [noop])
    servers = Servers()
    try:
        yield servers.start(app) + "/api/inngest"
    finally:
        servers.stop()


def probe(url: str, keys: SigningKeys) -> httpx.Response:
    """POST a signed, empty-bodied trust probe."""
    now = datetime.now(UTC)
    headers = {"X-Inngest-Signature": keys.sign(b"", now)}
    return httpx.post(url, params={"probe": "trust"}, headers=headers, timeout=10)


def test_sdk_app_trusts_our_signature_and_signs_its_answer(sdk_app_url: str) -> None:
    keys = SigningKeys(KEY)
    response = probe(sdk_app_url, keys)
    assert response.status_code == 200
    signature = response.headers.get("X-Inngest-Signature")
    assert signature is not None
    assert keys.verify(signature, response.content, datetime.now(UTC))
    assert not SigningKeys(OTHER).verify(signature, response.content, datetime.now(UTC))


def test_sdk_app_refuses_another_key(sdk_app_url: str) -> None:
    response = probe(sdk_app_url, SigningKeys(OTHER))
    assert response.status_code == 401
    assert "X-Inngest-Signature" not in response.headers


def test_sdk_app_refuses_an_unsigned_probe(sdk_app_url: str) -> None:
    response = httpx.post(sdk_app_url, params={"probe": "trust"}, timeout=10)
    assert response.status_code == 401
