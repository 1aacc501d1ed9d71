"""Put each known-dangerous bug into a copy of the code and check a test fails.

These are the small, plausible regressions a reviewer would try first (each
once went unnoticed by the whole suite). For each one the package is copied
to build/deliberate/, the one edit is made there, and the tests that should
notice it run against the copy; the bug must make them fail. The repository
is never changed. Run by `make mutation` after the mutation score, or alone:

    python tools/deliberate_bugs.py [NAME ...]

The last line is `deliberate bugs: K caught of N`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "deliberate"


@dataclass(frozen=True)
class Bug:
    name: str
    path: str  # relative to lambdas/certrotor
    old: str
    new: str
    tests: tuple[str, ...]


ROTATION_TESTS = ("tests/unit/rotation",)
BUGS = (
    Bug(
        "finishSecret does not check the manifest at the token",
        "services/rotation.py",
        "if not known and self._secrets.find(cert_set.name, token) is None:",
        "if False:",
        ROTATION_TESTS,
    ),
    Bug(
        "createSecret writes the manifest before the chain parts",
        "services/rotation.py",
        """        for name in cert_set.chain_secret_names:
            self._secrets.put(name, layout.parts[name], token)
            self._known.remember(cert_set.name, token, name, layout.parts[name])
        # The manifest last: its presence at the token means "complete".
        self._secrets.put(cert_set.name, layout.manifest_value, token, rotation_token=request.rotation_token)
""",
        """        self._secrets.put(cert_set.name, layout.manifest_value, token, rotation_token=request.rotation_token)
        for name in cert_set.chain_secret_names:
            self._secrets.put(name, layout.parts[name], token)
            self._known.remember(cert_set.name, token, name, layout.parts[name])
""",
        ROTATION_TESTS,
    ),
    Bug(
        "a random IdempotencyToken",
        "services/rotation.py",
        "idempotency_token(info.arn, token),",
        '__import__("uuid").uuid4().hex,',
        ROTATION_TESTS,
    ),
    Bug(
        "no IdempotencyToken",
        "services/rotation.py",
        "idempotency_token(info.arn, token),",
        '"",',
        ROTATION_TESTS,
    ),
    Bug(
        "validity_days ignored (always 365)",
        "services/rotation.py",
        "            cert_set.validity_days,\n",
        "            365,\n",
        ROTATION_TESTS,
    ),
    Bug(
        "the template is always the server one",
        "services/rotation.py",
        "template_arn(cert_set.usage, _partition(ca.ca_arn)),",
        "template_arn(type(cert_set.usage).SERVER, _partition(ca.ca_arn)),",
        ROTATION_TESTS,
    ),
    Bug(
        "the reader does not check the manifest belongs to the set",
        "services/reader.py",
        "        check_belongs(manifest, name)\n",
        "",
        ("tests/unit/rotation/test_reader_ownership.py",),
    ),
    Bug(
        "the manifest's part-order check compares sorted names",
        "layout/manifest.py",
        "if [manifest.key_part.name, *(p.name for p in manifest.chain_parts)] != own:",
        "if sorted([manifest.key_part.name, *(p.name for p in manifest.chain_parts)]) != sorted(own):",
        ("tests/unit/test_boundaries.py",),
    ),
    Bug(
        "the size limit is off by one",
        "layout/split.py",
        "elif len(current) + len(block) > limit:",
        "elif len(current) + len(block) > limit + 1:",
        ("tests/unit/test_boundaries.py",),
    ),
    Bug(
        "only the leaf's validity is checked",
        "pki/bundle.py",
        "    for cert in path:\n        if not cert.not_valid_before_utc",
        "    for cert in path[:1]:\n        if not cert.not_valid_before_utc",
        ("tests/unit/test_boundaries.py",),
    ),
    Bug(
        "the issuer's CA-expiry cap is a day late",
        "pki/policy.py",
        "if now + dt.timedelta(days=validity_days) > ca_not_after:",
        "if now + dt.timedelta(days=validity_days - 1) > ca_not_after:",
        ("tests/unit/test_boundaries.py",),
    ),
    Bug(
        "a single-label wildcard pattern (*.internal) is accepted",
        "pki/policy.py",
        'if label == "*" and index == 0 and len(labels) > 2:',
        'if label == "*" and index == 0 and len(labels) > 1:',
        ("tests/unit/test_boundaries.py",),
    ),
    Bug(
        "a group-readable key directory (0750, 0770) is accepted",
        "client/files.py",
        "_SHARED_BITS = 0o077",
        "_SHARED_BITS = 0o007",
        ("tests/unit/test_boundaries.py",),
    ),
    Bug(
        "records of two classes with equal fields compare equal",
        "record.py",
        "if other.__class__ is not self.__class__:",
        "if not hasattr(type(other), _FIELDS):",
        ("tests/unit/test_record.py",),
    ),
    Bug(
        "a record's default_factory value is shared by every record",
        "record.py",
        "value = default.make() if isinstance(default, _Factory) else default",
        "value = default",
        ("tests/unit/test_record.py",),
    ),
    Bug(
        "re.compile stays wrapped after cryptography.x509 is imported",
        "lazy_x509.py",
        "            re.compile = real_compile\n",
        "            pass\n",
        ("tests/unit/test_lazy_x509.py",),
    ),
    Bug(
        "email.utils's stand-in loads the real module for the import system's probes",
        "lazy_x509.py",
        'if name.startswith("__"):',
        "if False:",
        ("tests/unit/test_lazy_x509.py",),
    ),
)


def stage() -> Path:
    if STAGE.exists():
        shutil.rmtree(STAGE)
    shutil.copytree(ROOT / "lambdas", STAGE / "lambdas", ignore=shutil.ignore_patterns("__pycache__"))
    return STAGE / "lambdas" / "certrotor"


def run(bug: Bug) -> bool:
    """True when the tests fail with the bug in (it is caught)."""
    package = stage()
    target = package / bug.path
    text = target.read_text(encoding="utf-8")
    if text.count(bug.old) != 1:
        raise SystemExit(f"{bug.name}: the code to change was not found once in {bug.path}; update this list")
    target.write_text(text.replace(bug.old, bug.new), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(STAGE / "lambdas") + os.pathsep + str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly", *bug.tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    imported = subprocess.run(
        [sys.executable, "-c", "import certrotor, sys; print(certrotor.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not imported.startswith(str(STAGE)):
        raise SystemExit(f"the tests imported {imported}, not the copy with the bug")
    return done.returncode == 1


def main(argv: list[str]) -> int:
    selected = [b for b in BUGS if not argv or any(a.lower() in b.name.lower() for a in argv)]
    caught = 0
    for bug in selected:
        ok = run(bug)
        caught += ok
        print(f"{'caught ' if ok else 'MISSED '} {bug.name}", flush=True)
    shutil.rmtree(STAGE, ignore_errors=True)
    print(f"deliberate bugs: {caught} caught of {len(selected)}")
    return 0 if caught == len(selected) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
