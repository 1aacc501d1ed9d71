"""`certrotor demo` end to end, as `make demo` runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_the_whole_loop_and_exits_zero() -> None:
    # Given the installed certrotor command
    command = Path(sys.executable).with_name("certrotor")
    # When the demo runs
    done = subprocess.run([str(command), "demo"], capture_output=True, text=True, timeout=300, check=False)
    # Then every step worked: the served serial changed, and the issuer answered
    assert done.returncode == 0, done.stderr
    assert "served serial changed:" in done.stdout
    # a reload set's rotation reached the running server: same PID, new serial, client A kept
    assert "finishSecret: finished; delivery is reload, no redeploy" in done.stdout
    assert "client B (new connection): same pid" in done.stdout
    assert "client A, still on its connection from before the rotation" in done.stdout
    assert "no ECS deployment was started" in done.stdout
    assert "CSR issued: serial" in done.stdout
    assert "is current: serial" in done.stdout
    # the CA rotation: a certificate served from each CA, no handshake failed
    assert "issued by certrotor demo subordinate CA G2" in done.stdout
    assert "handshakes, none failed" in done.stdout
    # And a client set's certificate authenticated to a mutual-TLS server, which refused a client without one
    assert "said: hello client " in done.stdout
    assert "a client without a certificate: refused" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("demo OK")
    # And nothing of a private key was printed
    assert "PRIVATE KEY" not in done.stdout + done.stderr
