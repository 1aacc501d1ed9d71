"""Emulator.activated(): overlapping and nested activations leave the
environment exactly as it was once the last one ends."""

from __future__ import annotations

import os
import threading

import pytest

from certrotor.local.emulator import Emulator


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "CERTROTOR_CONFIG", "CERTROTOR_X"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")


def _emulator(endpoint: str) -> Emulator:
    emulator = Emulator()
    emulator.endpoint_url = endpoint
    return emulator


def test_nested_activation_restores_each_level(clean_env: None) -> None:
    emulator = _emulator("http://127.0.0.1:1")
    with emulator.activated({"CERTROTOR_CONFIG": "outer"}):
        with emulator.activated({"CERTROTOR_CONFIG": "inner", "CERTROTOR_X": "1"}):
            assert os.environ["CERTROTOR_CONFIG"] == "inner"
        assert os.environ["CERTROTOR_CONFIG"] == "outer"
        assert "CERTROTOR_X" not in os.environ
        assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert "CERTROTOR_CONFIG" not in os.environ
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert os.environ["AWS_REGION"] == "eu-west-1"


def test_overlapping_activations_ending_out_of_order_leave_nothing_set(clean_env: None) -> None:
    """Thread A activates, thread B activates, A leaves, B leaves: the order a
    background rotation and the local gateway produce. Nothing stays set."""
    emulator = _emulator("http://127.0.0.1:2")
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, str | None] = {}

    def first() -> None:
        with emulator.activated({"CERTROTOR_CONFIG": "a"}):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second() -> None:
        a_in.wait(5)
        with emulator.activated({"CERTROTOR_CONFIG": "b"}):
            b_in.set()
            a_out.wait(5)
            seen["during"] = os.environ.get("CERTROTOR_CONFIG")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert seen["during"] == "b"
    assert "CERTROTOR_CONFIG" not in os.environ
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert os.environ["AWS_REGION"] == "eu-west-1"
