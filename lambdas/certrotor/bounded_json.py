"""JSON from outside, parsed only within bounds.

Python's json module recurses once per nested array or object: a value of
tens of thousands of "[" (well under Secrets Manager's 64 KiB value limit)
raises RecursionError, which no caller expects. Every parser of outside JSON
(secret values, the issuer's request bodies, the configuration) goes through
`parse_json`, which checks the size and the nesting depth first, with a
linear scan that does not recurse, and turns every failure into one
`ValueError` subclass with a short message that never quotes the input.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Strings (with their escapes) removed, what is left holds the brackets.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonRefused(ValueError):
    """The text is too large, nested too deep, or not JSON."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (0 for a scalar)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(text: str | bytes, *, max_chars: int, max_depth: int, what: str = "value") -> Any:
    """`json.loads(text)` for text of at most `max_chars` characters nested at
    most `max_depth` deep; anything else raises JsonRefused."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused(f"{what} is not UTF-8 text") from None
    if len(text) > max_chars:
        raise JsonRefused(f"{what} is {len(text):,} characters, at most {max_chars:,}")
    if nesting_depth(text) > max_depth:
        raise JsonRefused(f"{what} is nested more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise JsonRefused(f"{what} is not JSON ({reason})") from None


def parse_json_object(text: str | bytes, *, max_chars: int, max_depth: int, what: str = "value") -> dict[str, Any]:
    """`parse_json` that also requires a JSON object at the top."""
    value = parse_json(text, max_chars=max_chars, max_depth=max_depth, what=what)
    if not isinstance(value, dict):
        raise JsonRefused(f"{what} is not a JSON object")
    return value
