"""Container start time: certrotor-fetch against the seed article's path, side
by side on the same emulator in one run.

    .venv/bin/python bench/container_start.py [--runs 20]

certrotor-fetch runs as a container holds it: installed (not editable) with
its bytecode compiled, as `pip install` leaves it, in an environment of its
own whose dependencies are this venv's packages; its files go to a tmpfs
(/dev/shm when there is one), as docs/CONTAINERS.md recommends for the key.

Paths, each run N times, interleaved so machine noise falls on all alike:
- python: the interpreter alone starting (`python -c pass`), the floor.
- certrotor in-process: build a Secrets Manager client, fetch the set
  (GetSecretValue + BatchGetSecretValue), verify it, write the files.
- certrotor-fetch (AWS mode): the same as a process that then execs the
  server (`-- /bin/true` stands for it), as a container start pays it:
  interpreter start-up and imports included. Reads are signed by awscrt
  (the environment gives the keys, region and endpoint, as a task's does).
- the same with botocore: a shared config file in the environment makes
  certrotor-fetch read through botocore's default chain instead.
- certrotor-fetch --from-env: the set from the variables ECS injects
  (valueFrom), verified and written, then the exec; no AWS call.
- seed path: what the seed article has a container do at start: `openssl req`
  for a new key and CSR, `aws acm-pca issue-certificate`, `aws acm-pca wait
  certificate-issued`, `aws acm-pca get-certificate`, written to files.

Prints wall-clock p50/p95 and the median CPU time per path (the processes'
own, from the kernel; wall time on a busy machine includes waiting for a
core), the AWS calls per start, the ratio of the seed path's p50 to
certrotor's, the CPU medians side by side, and last one line with the
three wall-clock medians.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

import certrotor
from certrotor.aws.secrets import SecretStore
from certrotor.client.fetch import fetch_set, secrets_client
from certrotor.client.files import write_material
from certrotor.local.driver import RotationDriver
from certrotor.local.emulator import Emulator
from certrotor.local.provision import provision
from certrotor.services.reader import SetReader

PYTHON_LABEL = "python -c pass (the interpreter alone)"
INPROC_LABEL = "certrotor in-process (fetch+verify+write)"
FETCH_LABEL = "certrotor-fetch, AWS mode (awscrt), exec'ing"
BOTOCORE_LABEL = "certrotor-fetch, AWS mode (botocore), exec'ing"
ENV_LABEL = "certrotor-fetch --from-env, exec'ing"
SEED_LABEL = "seed path (openssl + aws acm-pca x3)"
BIN = Path(sys.executable).parent
AWS = str(BIN / "aws")


SEED_RUNS = 10


def console_script(name: str) -> str:
    """The entry point pyproject.toml gives the console script `name` (what pip's script imports)."""
    with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["scripts"][name])


def container_install(where: Path) -> Path:
    """certrotor as a container image holds it: a virtual environment of its
    own with the package installed, not editable, bytecode compiled (what
    `pip install` does), its dependencies taken from this venv as a plain
    path (so none of this venv's .pth hooks run). Returns its
    certrotor-fetch, the script pip would write."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "certrotor-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    package = site / "certrotor"
    shutil.copytree(Path(certrotor.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    if not compileall.compile_dir(str(package), quiet=1):
        raise SystemExit("compiling the installed certrotor failed")
    module, function = console_script("certrotor-fetch").split(":")
    script = where / "bin" / "certrotor-fetch"
    script.write_text(
        f"#!{python}\nimport sys\nfrom {module} import {function}\n"
        f"if __name__ == '__main__':\n    sys.exit({function}())\n"
    )
    script.chmod(0o755)
    return script


def files_root() -> str | None:
    """A tmpfs for the written files when the machine has one (else the scratch directory)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def percentile(samples: list[float], pct: int) -> float:
    """The pct-th percentile (inclusive method; exact median for p50)."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def timed(action: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and the children it waited for)."""

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    started, started_cpu = time.perf_counter(), cpu()
    action()
    return time.perf_counter() - started, cpu() - started_cpu


def run(command: list[str], environ: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(command, env=environ, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} {command[1] if len(command) > 1 else ''} failed: {result.stderr.strip()}")
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="runs per path (default 20)")
    options = parser.parse_args()
    if shutil.which("openssl") is None:
        raise SystemExit("openssl is not on PATH; the seed path needs it")
    if not Path(AWS).exists():
        raise SystemExit(f"{AWS} not found; install awscli into the venv (requirements-dev.txt)")

    with (
        Emulator() as emulator,
        tempfile.TemporaryDirectory() as install_dir,
        tempfile.TemporaryDirectory(dir=files_root()) as scratch_dir,
    ):
        scratch = Path(scratch_dir)
        fetch_command = str(container_install(Path(install_dir) / "venv"))
        image_python = str(Path(install_dir) / "venv" / "bin" / "python")
        env = provision(emulator)
        name = env.config.sets[0].name
        RotationDriver(env).rotate(name)
        environ = {**os.environ, **emulator.env()}
        endpoint = ["--endpoint-url", emulator.endpoint_url]
        pca = emulator.client("acm-pca")
        signing = pca.describe_certificate_authority(CertificateAuthorityArn=env.ca_arn)["CertificateAuthority"][
            "CertificateAuthorityConfiguration"
        ]["SigningAlgorithm"]
        calls: list[int] = []

        def certrotor_in_process(i: int) -> None:
            with emulator.activated():
                reader = SetReader(SecretStore(secrets_client(60)))
                verified = fetch_set(reader, name)
            write_material(scratch / f"inproc-{i}", verified.key_pem, verified.bundle)
            calls.append(reader.last.calls)

        def python_alone(i: int) -> None:
            run([image_python, "-c", "pass"], environ)

        def certrotor_fetch(i: int) -> None:
            run([fetch_command, "--set", name, "--dir", str(scratch / f"fetch-{i}"), "--", "/bin/true"], environ)

        # A shared config file in the environment: certrotor-fetch leaves the reads to botocore.
        (Path(install_dir) / "aws-config").write_text("[default]\n")
        botocore_environ = {**environ, "AWS_CONFIG_FILE": str(Path(install_dir) / "aws-config")}

        def certrotor_fetch_botocore(i: int) -> None:
            command = [fetch_command, "--set", name, "--dir", str(scratch / f"boto-{i}"), "--", "/bin/true"]
            run(command, botocore_environ)

        current = SetReader(SecretStore(emulator.client("secretsmanager"))).read(name)
        secrets = emulator.client("secretsmanager")

        def value(secret: str) -> str:
            return str(secrets.get_secret_value(SecretId=secret)["SecretString"])

        # As ECS injects them (valueFrom, each secret's AWSCURRENT): docs/CONTAINERS.md.
        injected = {
            "CERTROTOR_MANIFEST": value(name),
            "CERTROTOR_KEY": value(current.manifest.key_part.name),
            **{f"CERTROTOR_CHAIN_{i}": value(part.name) for i, part in enumerate(current.manifest.chain_parts)},
        }
        env_mode = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | injected

        def certrotor_env(i: int) -> None:
            command = [
                fetch_command,
                "--from-env",
                "--set",
                name,
                "--dir",
                str(scratch / f"env-{i}"),
                "--",
                "/bin/true",
            ]
            run(command, env_mode)

        def seed_path(i: int) -> None:
            folder = scratch / f"seed-{i}"
            folder.mkdir(mode=0o700)
            run(
                [
                    "openssl",
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    "k.pem",
                    "-out",
                    "csr.pem",
                    "-subj",
                    "/CN=localhost",
                ],
                environ,
                cwd=folder,
            )
            issued = run(
                [
                    AWS,
                    "acm-pca",
                    "issue-certificate",
                    *endpoint,
                    "--certificate-authority-arn",
                    env.ca_arn,
                    "--csr",
                    "fileb://csr.pem",
                    "--signing-algorithm",
                    signing,
                    "--validity",
                    "Value=30,Type=DAYS",
                    "--output",
                    "json",
                ],
                environ,
                cwd=folder,
            )
            arn = json.loads(issued)["CertificateArn"]
            ids = ["--certificate-authority-arn", env.ca_arn, "--certificate-arn", arn]
            run([AWS, "acm-pca", "wait", "certificate-issued", *endpoint, *ids], environ)
            got = json.loads(run([AWS, "acm-pca", "get-certificate", *endpoint, *ids, "--output", "json"], environ))
            (folder / "cert.pem").write_text(got["Certificate"] + "\n")
            (folder / "chain.pem").write_text(got.get("CertificateChain", "") + "\n")

        paths: dict[str, Callable[[int], None]] = {
            PYTHON_LABEL: python_alone,
            INPROC_LABEL: certrotor_in_process,
            FETCH_LABEL: certrotor_fetch,
            BOTOCORE_LABEL: certrotor_fetch_botocore,
            ENV_LABEL: certrotor_env,
            SEED_LABEL: seed_path,
        }
        for action in paths.values():  # warm-up: first-call costs are not a container's
            action(-1)
        calls.clear()
        samples: dict[str, list[float]] = {label: [] for label in paths}
        cpu: dict[str, list[float]] = {label: [] for label in paths}
        for i in range(options.runs):
            for label, action in paths.items():
                if label == SEED_LABEL and i >= SEED_RUNS:
                    continue  # seconds per run, and far from the others: fewer runs keep the bench short
                wall, spent = timed(lambda action=action, i=i: action(i))  # type: ignore[misc]
                samples[label].append(wall)
                cpu[label].append(spent)

    print(
        f"container start, {options.runs} runs per path ({min(options.runs, SEED_RUNS)} of the seed path), "
        f"emulator on loopback ({os.cpu_count()} CPUs), "
        f"Python {sys.version.split()[0]}, files on {files_root() or 'disk'}"
    )
    print(f"{'path':<46} {'p50 ms':>9} {'p95 ms':>9} {'min ms':>9} {'max ms':>9} {'CPU p50':>9}")
    for label, values in samples.items():
        row = [percentile(values, 50), percentile(values, 95), min(values), max(values), percentile(cpu[label], 50)]
        print(f"{label:<46} " + " ".join(f"{v * 1000:>9.1f}" for v in row))
    print("(in-process CPU includes the emulator answering in this process)")
    print(f"AWS API calls per certrotor fetch (SetReader.last.calls): {sorted(set(calls))}")
    print("AWS API calls per seed start: 3+ (IssueCertificate, GetCertificate by the waiter, GetCertificate)")
    seed_p50 = percentile(samples[SEED_LABEL], 50)
    sub_p50 = percentile(samples[FETCH_LABEL], 50)
    inproc_p50 = percentile(samples[INPROC_LABEL], 50)
    print(
        f"ratio seed p50 / certrotor p50: {seed_p50 / sub_p50:.1f}x (certrotor-fetch subprocess), "
        f"{seed_p50 / inproc_p50:.1f}x (in-process)"
    )
    env_p50 = percentile(samples[ENV_LABEL], 50)

    def cpu_ms(label: str) -> float:
        return percentile(cpu[label], 50) * 1000

    print(
        f"container start CPU: fetch {cpu_ms(FETCH_LABEL):.0f} ms (botocore {cpu_ms(BOTOCORE_LABEL):.0f} ms), "
        f"env {cpu_ms(ENV_LABEL):.0f} ms, seed path {cpu_ms(SEED_LABEL):.0f} ms, "
        f"interpreter alone {cpu_ms(PYTHON_LABEL):.0f} ms (median)"
    )
    print(
        f"container start: fetch {sub_p50 * 1000:.0f} ms, env {env_p50 * 1000:.0f} ms, "
        f"seed path {seed_p50 * 1000:.0f} ms (median)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
