"""Signatures and the retry schedule: pure functions, checked over many inputs."""

from __future__ import annotations

import hashlib
import hmac
import random

from hypothesis import given
from hypothesis import strategies as st

from kopilka.webhooks.service import Policy
from kopilka.webhooks.signing import sign, verify_signature

secrets_ = st.text(min_size=16, max_size=64)
bodies = st.binary(max_size=2000)
moments = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


def test_the_header_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":"x"}'
    mac = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k" * 16, 1_700_000_000, body) == f"t=1700000000,v1={mac}"


@given(secret=secrets_, body=bodies, t=moments, skew=st.integers(-300, 300))
def test_a_signature_verifies_within_the_tolerance(
    secret: str, body: bytes, t: int, skew: int
) -> None:
    assert verify_signature(secret, sign(secret, t, body), body, at=t + skew)


@given(secret=secrets_, other=secrets_, body=bodies, t=moments, flip=st.integers(0, 1999))
def test_another_secret_or_a_changed_body_fails(
    secret: str, other: str, body: bytes, t: int, flip: int
) -> None:
    header = sign(secret, t, body)
    if other != secret:
        assert not verify_signature(other, header, body, at=t)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        assert not verify_signature(secret, header, changed, at=t)


@given(t=moments, late=st.integers(301, 10**6))
def test_stale_or_future_timestamps_and_garbage_are_refused(t: int, late: int) -> None:
    body = b"{}"
    header = sign("s" * 16, t, body)
    assert not verify_signature("s" * 16, header, body, at=t + late)
    assert not verify_signature("s" * 16, header, body, at=t - late)
    for bad in ("", "garbage", "t=abc,v1=00", f"t={t}", "v1=00", f"t={t},v1="):
        assert not verify_signature("s" * 16, bad, body, at=t)


def test_any_of_several_v1_values_may_match() -> None:
    body = b"{}"
    good = sign("s" * 16, 100, body).split("v1=")[1]
    assert verify_signature("s" * 16, f"t=100,v1={'0' * 64},v1={good}", body, at=100)


@given(seed=st.integers(0, 2**32), base=st.floats(0.001, 60), n=st.integers(1, 40))
def test_backoff_doubles_within_jitter_and_is_capped(seed: int, base: float, n: int) -> None:
    policy = Policy(base_seconds=base, max_seconds=3600, rng=random.Random(seed))
    wait = policy.backoff(n)
    plain = min(base * 2 ** (n - 1), 3600)
    assert 0.8 * plain <= wait < 1.2 * plain


def _snippet(language: str) -> str:
    """The verification snippet for receivers in docs/webhooks.md, as published."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text("utf-8")
    found = re.search(rf"```{language}\n(.*?)```", doc, re.S)
    assert found, f"no {language} snippet in docs/webhooks.md"
    return found.group(1)


def test_the_documented_python_snippet_verifies_kopilkas_signatures() -> None:
    import time

    # given the receivers' snippet exactly as docs/webhooks.md shows it
    namespace: dict[str, object] = {}
    exec(compile(_snippet("python"), "docs/webhooks.md", "exec"), namespace)
    verify = namespace["verify"]
    assert callable(verify)
    body, secret, now = b'{"id":"e1","type":"points.earned"}', "whsec-" + "k" * 24, int(time.time())
    header = sign(secret, now, body)
    # then it accepts Kopilka's signature, and refuses another body, secret or an old one
    assert verify(secret, header, body) is True
    assert verify(secret, header, body + b" ") is False
    assert verify("other-secret", header, body) is False
    assert verify(secret, sign(secret, now - 301, body), body) is False
    assert verify(secret, "garbage", body) is False


def test_the_documented_node_snippet_verifies_kopilkas_signatures() -> None:
    import shutil
    import subprocess
    import time

    import pytest

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node.js snippet is checked where it is")
    body, secret, now = '{"id":"e1","type":"points.earned"}', "whsec-node", int(time.time())
    good = sign(secret, now, body.encode())
    script = _snippet("js") + (
        "\nconst b = Buffer.from(process.argv[1]);"
        "\nconsole.log([verify(process.argv[2], process.argv[3], b),"
        " verify(process.argv[2], process.argv[3], Buffer.from(process.argv[1] + ' ')),"
        " verify('x', process.argv[3], b)].join(','));"
    )
    out = subprocess.run(
        [node, "-e", script, body, secret, good],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == "true,false,false"
