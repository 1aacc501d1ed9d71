"""Makes the fakes importable as tests.unit.rotation.fakes (the tests folder
has no packages; the repository root goes on sys.path, as tests/infra does)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
