"""Lambda cold start: each handler imported from the asset in fresh processes.

Builds the Lambda asset (or reuses one built from the same sources) for this
machine with the runtime's Python (3.13), then imports each handler module in
a new interpreter, as Lambda's runtime does at init: the asset first on
sys.path, Lambda's environment variables, nothing written next to the code
(`-B`: the code directory is read-only in Lambda). Three variants run
interleaved, so machine load hits them alike:

- source only: the asset without its bytecode (every module compiled at init);
- bytecode, tracing on: the asset as shipped, X-Ray active as deployed;
- bytecode, tracing off: the same with POWERTOOLS_TRACE_DISABLED=true.

Figures are the CPU time of the import in the child (median over n runs,
with the spread), then the asset's size. The last line is the shipped
variant's figure.

    python bench/cold_start.py [-n 10] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "infra"))

from certrotor_cdk.bundling import BundleTarget, PipBundler  # noqa: E402
from certrotor_cdk.constants import BUNDLE_CACHE_DIR  # noqa: E402

RUNTIME_PYTHON = "3.13"
HANDLERS = ("rotate", "issuer", "monitor")
CHILD = """
import sys, time
sys.path.insert(0, {asset!r})
started_cpu, started = time.process_time(), time.perf_counter()
import certrotor.handlers.{handler}
print(time.process_time() - started_cpu, time.perf_counter() - started)
"""
BOTO_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py")


def host_target() -> BundleTarget:
    libc, version = platform.libc_ver()
    if libc != "glibc":
        sys.exit("cold_start.py needs a glibc Linux host (the asset's wheels are manylinux)")
    major, minor = (int(part) for part in version.split(".")[:2])
    return BundleTarget(machine=platform.machine(), python_version=RUNTIME_PYTHON, glibc=(major, minor))


def build_asset(rebuild: bool) -> tuple[Path, str]:
    """The asset for this host (built once per source hash), and its compiler."""
    bundler = PipBundler(host_target())
    if bundler.compiler is None:
        sys.exit(f"cold_start.py needs a Python {RUNTIME_PYTHON} (set CERTROTOR_RUNTIME_PYTHON)")
    asset = BUNDLE_CACHE_DIR / "cold-start" / bundler.asset_hash()[:16]
    if rebuild:
        shutil.rmtree(asset.parent, ignore_errors=True)
    if not asset.exists():
        print(f"building the asset for {bundler.target.key} into {asset} ...", flush=True)
        asset.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=asset.parent))
        bundler.build(staging)
        os.replace(staging, asset)
    else:
        print(f"reusing the asset in {asset}")
    return asset, bundler.compiler


def source_only(asset: Path) -> Path:
    copy = asset.with_name(asset.name + "-source")
    if not copy.exists():
        staging = Path(tempfile.mkdtemp(dir=asset.parent))
        shutil.copytree(asset, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        os.replace(staging, copy)
    return copy


def lambda_env(asset: Path, handler: str, tracing: bool) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LAMBDA_TASK_ROOT": str(asset),
        "AWS_LAMBDA_FUNCTION_NAME": f"certrotor-{handler}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{RUNTIME_PYTHON}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "certrotor",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_NAMESPACE": "certrotor",
    }
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def import_once(python: str, asset: Path, handler: str, tracing: bool) -> tuple[float, float]:
    result = subprocess.run(
        [python, "-I", "-B", "-c", CHILD.format(asset=str(asset), handler=handler)],
        env=lambda_env(asset, handler, tracing),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"importing certrotor.handlers.{handler} from {asset} failed:\n{result.stderr[-3000:]}")
    cpu, wall = (float(x) for x in result.stdout.split())
    return cpu * 1000, wall * 1000


def size_of(directory: Path) -> tuple[int, int, int]:
    """(unzipped bytes, zipped bytes, bytes of the boto3 stack)."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    boto = sum(p.stat().st_size for p in files if p.relative_to(directory).parts[0].split("-")[0] in BOTO_PACKAGES)
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(directory))
        zipped = handle.tell()
    return total, zipped, boto


def spread(values: list[float]) -> str:
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{statistics.median(values):6.0f} (IQR {quartiles[0]:.0f}-{quartiles[2]:.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--runs", type=int, default=10, help="fresh processes per handler and variant")
    parser.add_argument("--rebuild", action="store_true", help="build the asset again even if one exists")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    asset, python = build_asset(args.rebuild)
    source = source_only(asset)
    variants = {
        "source only, tracing on": (source, True),
        "bytecode, tracing on (shipped)": (asset, True),
        "bytecode, tracing off": (asset, False),
    }
    cpu: dict[tuple[str, str], list[float]] = {(v, h): [] for v in variants for h in HANDLERS}
    wall: dict[tuple[str, str], list[float]] = {(v, h): [] for v in variants for h in HANDLERS}
    print(f"importing each handler in fresh {python} processes, {args.runs} rounds ...", flush=True)
    for _ in range(args.runs):
        for variant, (directory, tracing) in variants.items():
            for handler in HANDLERS:
                spent_cpu, spent_wall = import_once(python, directory, handler, tracing)
                cpu[variant, handler].append(spent_cpu)
                wall[variant, handler].append(spent_wall)

    print(f"\nhandler import, CPU ms, median and interquartile range over n={args.runs} (wall median in brackets):")
    print(f"  {'variant':32s}" + "".join(f"{h:>26s}" for h in HANDLERS))
    for variant in variants:
        cells = "".join(
            f"{spread(cpu[variant, h]):>20s} [{statistics.median(wall[variant, h]):3.0f}]" for h in HANDLERS
        )
        print(f"  {variant:32s}{cells}")
    shipped, before = "bytecode, tracing on (shipped)", "source only, tracing on"
    ratios = ", ".join(
        f"{h} {statistics.median(cpu[before, h]) / statistics.median(cpu[shipped, h]):.1f}x" for h in HANDLERS
    )
    print(f"  source only / shipped (CPU medians): {ratios}")

    print("\nasset size:")
    for label, directory in (("shipped (with bytecode)", asset), ("source only", source)):
        total, zipped, boto = size_of(directory)
        print(
            f"  {label:24s} {total / 1e6:5.1f} MB unzipped, {zipped / 1e6:5.1f} MB zipped; "
            f"boto3 stack {boto / total:.0%} of it"
        )
    figures = ", ".join(f"{h} {statistics.median(cpu[shipped, h]):.0f} ms" for h in HANDLERS)
    print(f"cold start: {figures} (median CPU, n={args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
