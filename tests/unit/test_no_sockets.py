"""The unit layer is pure: the guard in tests/unit/conftest.py refuses sockets."""

from __future__ import annotations

import socket

import pytest


def test_a_unit_test_that_connects_a_socket_fails() -> None:
    # Given the guard / When a unit test tries to connect / Then it fails loudly
    with socket.socket() as sock, pytest.raises(RuntimeError, match="must not open sockets"):
        sock.connect(("127.0.0.1", 9))


def test_a_unit_test_that_binds_a_socket_fails() -> None:
    with socket.socket() as sock, pytest.raises(RuntimeError, match="must not open sockets"):
        sock.bind(("127.0.0.1", 0))
