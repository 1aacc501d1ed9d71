"""Argument types the `certrotor` subcommands share: each checks its value
against the same rule the configuration applies, so a bad value is refused
by argparse (usage line, exit 2) before any AWS call (docs/INPUTS.md)."""

from __future__ import annotations

import argparse

from certrotor.config import PCA_ARN_PATTERN, SERVICE_NAME_PATTERN


def rotator(text: str) -> str:
    """A rotator's id is its service_name: 1-40 letters, digits and hyphens."""
    if not SERVICE_NAME_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text[:60]!r} is not a rotator id (1-40 letters, digits and hyphens)")
    return text


def pca_arn(text: str) -> str:
    if not PCA_ARN_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a Private CA ARN")
    return text


def _whole_number(text: str, minimum: int, refusal: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(refusal)
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "must not be negative")


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 86400 seconds")
    return value
