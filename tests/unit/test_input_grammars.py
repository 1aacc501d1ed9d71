"""Property tests of the input boundaries that have a grammar: whatever the
text, the parser returns a value inside its rules or refuses with its own
error type, never another exception (docs/INPUTS.md)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from certrotor.bounded_json import JsonRefused, parse_json
from certrotor.client.entrypoint import MAX_MIN_VALID, UsageError, parse_duration
from certrotor.config import dns_pattern_problem
from certrotor.errors import IntegrityError
from certrotor.layout.manifest import Manifest
from certrotor.local.gateway import MAX_BODY_BYTES, BadRequest, body_length
from certrotor.operator import MAX_SERIAL_BITS, normalize_serial
from certrotor.pki.policy import dns_name_allowed

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(deadline=None)  # no time limit: the machine may be busy, the rule is not about speed
@given(_json_values)
def test_bounded_json_returns_the_value_or_refuses_by_depth(value: Any) -> None:
    text = json.dumps(value)
    try:
        parsed = parse_json(text, max_chars=100_000, max_depth=3)
    except JsonRefused:
        assert _depth(value) > 3
    else:
        assert parsed == value and _depth(value) <= 3


@settings(deadline=None)  # no time limit: the machine may be busy, the rule is not about speed
@given(st.text(alphabet='[]{}"\\,:1 a', max_size=300), st.integers(min_value=0, max_value=4000))
def test_bounded_json_never_raises_anything_but_a_refusal(text: str, extra_depth: int) -> None:
    for candidate in (text, "[" * extra_depth + text + "]" * extra_depth):
        with contextlib.suppress(JsonRefused):
            parse_json(candidate, max_chars=10_000, max_depth=8)


@settings(deadline=None)  # no time limit: the machine may be busy, the rule is not about speed
@given(st.text(max_size=400))
def test_a_manifest_of_any_text_is_parsed_or_refused_as_an_integrity_error(text: str) -> None:
    with contextlib.suppress(IntegrityError):
        Manifest.from_json(text)


@settings(deadline=None)  # no time limit: the machine may be busy, the rule is not about speed
@given(st.integers(min_value=1, max_value=2**MAX_SERIAL_BITS - 1), st.booleans())
def test_every_rfc5280_serial_is_accepted_with_or_without_colons(value: int, colons: bool) -> None:
    text = format(value, "x")
    if colons:
        padded = text if len(text) % 2 == 0 else "0" + text
        text = ":".join(padded[i : i + 2] for i in range(0, len(padded), 2)).upper()
    assert normalize_serial(text) == format(value, "x")


@settings(deadline=None)  # no time limit: the machine may be busy, the rule is not about speed
@given(st.text(max_size=80))
def test_any_other_serial_text_is_a_value_error(text: str) -> None:
    try:
        serial = normalize_serial(text)
    except ValueError:
        return
    assert 0 < int(serial, 16) < 2**MAX_SERIAL_BITS


@settings(deadline=None)  # no time limit: the machine may be busy, the rule is not about speed
@given(st.text(max_size=30))
def test_a_duration_is_within_ten_years_or_refused(text: str) -> None:
    try:
        duration = parse_duration(text)
    except UsageError:
        return
    assert dt.timedelta(0) <= duration <= MAX_MIN_VALID


@settings(deadline=None)  # no time limit: the machine may be busy, the rule is not about speed
@given(st.lists(st.text(max_size=14), max_size=3), st.booleans())
def test_a_content_length_is_one_whole_number_within_the_limit_or_refused(values: list[str], chunked: bool) -> None:
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    try:
        length = body_length(values, headers)
    except BadRequest as refused:
        assert refused.status in (400, 411, 413)
        return
    assert not chunked and 0 <= length <= MAX_BODY_BYTES


_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\Z")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abc.*-_ Z1é", max_size=30) | st.lists(_label, min_size=1, max_size=4).map(".".join))
def test_an_accepted_dns_pattern_can_match_a_name(pattern: str) -> None:
    if dns_pattern_problem(pattern) is not None:
        return
    example = "x" + pattern[1:] if pattern.startswith("*.") else pattern
    assert dns_name_allowed(example, [pattern])


@settings(deadline=None)  # no time limit: the machine may be busy, the rule is not about speed
@given(st.text(max_size=400) | st.integers(min_value=0, max_value=40_000).map(lambda n: "[" * n + "]" * n))
def test_a_trust_bundle_of_any_text_is_parsed_or_refused_as_an_integrity_error(text: str) -> None:
    from certrotor.services.trust import TrustDocument

    with contextlib.suppress(IntegrityError):
        TrustDocument.from_json(text, "certrotor")
