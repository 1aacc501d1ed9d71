"""The whole rotation against the emulator over HTTP, through the real handler."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509

import certrotor.handlers.rotate as rotate_handler
from certrotor.aws.ecs import EcsServices
from certrotor.aws.pca import PrivateCA
from certrotor.aws.secrets import SecretStore
from certrotor.errors import AwsError, RotationError
from certrotor.handlers.runtime import adapters
from certrotor.local.driver import RotationDriver, RotationFailed
from certrotor.local.provision import LocalEnvironment
from certrotor.pki.bundle import parse_bundle
from certrotor.pki.keys import key_from_pem
from certrotor.ports import pending_version
from certrotor.services.reader import SetReader
from certrotor.services.rotation import RotationService
from certrotor.services.verify import verify_set


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def read_current(env: LocalEnvironment, name: str) -> Any:
    return SetReader(SecretStore(env.emulator.client("secretsmanager"))).read(name)


def stages(env: LocalEnvironment, name: str) -> dict[str, list[str]]:
    return env.emulator.client("secretsmanager").describe_secret(SecretId=name)["VersionIdsToStages"]


class FlakyCA:
    """The real PrivateCA, failing the named method for its first `failures` calls."""

    def __init__(self, real: PrivateCA, method: str, failures: int = 1) -> None:
        self._real = real
        self._method = method
        self._failures = failures
        self.ca_arn = real.ca_arn

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name != self._method:
            return attr

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if self._failures > 0:
                self._failures -= 1
                raise AwsError(f"injected failure in {name}")
            return attr(*args, **kwargs)

        return flaky


class CountingServices(EcsServices):
    def __init__(self, real: EcsServices) -> None:
        self._real = real
        self.calls: list[str] = []

    def redeploy(self, cluster: str, service: str) -> str:
        self.calls.append(f"{cluster}/{service}")
        return self._real.redeploy(cluster, service)

    def missing(self, services: Any) -> list[str]:
        return self._real.missing(services)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make the real handler use wrapped adapters (fault injection only)."""

    def install(ca: Callable[[PrivateCA], Any] | None = None, ecs: Any = None) -> None:
        wrapped: dict[str, Any] = {}

        def service() -> RotationService:
            # Built on first use (inside the emulator's environment), then kept,
            # like adapters across warm invocations.
            real = adapters()
            if "ca" not in wrapped:
                wrapped["ca"] = ca(real.ca) if ca else real.ca
            return RotationService(
                real.settings.config,
                real.secrets,
                wrapped["ca"],
                ecs if ecs is not None else real.ecs,
                logger=rotate_handler.logger,  # type: ignore[arg-type]
            )

        monkeypatch.setattr(rotate_handler, "rotation_service", service)

    return install


def test_a_rotation_makes_a_verified_set_current(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a provisioned set
    env = make_env()
    name = env.config.sets[0].name
    # When it is rotated
    report = RotationDriver(env).rotate(name)
    # Then the current set is the token's, complete, and proves itself in a TLS handshake
    current = read_current(env, name)
    assert current.manifest.version == report.token
    verified = verify_set(current, now(), anchor=env.root.certificate, expected=env.config.sets[0], handshake=True)
    assert verified.handshake is not None and verified.handshake.serial == verified.bundle.leaf.serial_number
    # AWSPENDING may stay on the current version (Secrets Manager accepts it
    # there): no secret shows a rotation in progress
    for secret in (name, *env.config.sets[0].part_secret_names):
        assert "AWSCURRENT" in stages(env, secret)[report.token]
        assert pending_version(stages(env, secret)) is None, secret


def test_a_rotation_starts_and_completes_after_one_that_left_awspending_on_the_current_version(
    make_env: Callable[..., LocalEnvironment],
) -> None:
    # Given a set rotated once, AWSPENDING left on its current version
    env = make_env()
    name = env.config.sets[0].name
    first = RotationDriver(env).rotate(name)
    assert "AWSPENDING" in stages(env, name)[first.token]
    # When it is rotated again
    second = RotationDriver(env).rotate(name)
    # Then the second token's set is current and the first is previous
    assert read_current(env, name).manifest.version == second.token
    for secret in (name, *env.config.sets[0].part_secret_names):
        assert "AWSPREVIOUS" in stages(env, secret)[first.token], secret
        assert pending_version(stages(env, secret)) is None, secret


def test_each_step_called_twice_issues_one_certificate_and_redeploys_once(
    make_env: Callable[..., LocalEnvironment], wire: Callable[..., None]
) -> None:
    # Given a rotation started and a counting ECS adapter
    env = make_env()
    name = env.config.sets[0].name
    driver = RotationDriver(env)
    counting = CountingServices(EcsServices(env.emulator.client("ecs")))
    wire(ecs=counting)
    token = driver.start(name)
    # When every step is invoked twice
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        driver.invoke(name, step, token)
        driver.invoke(name, step, token)
    # Then one certificate was issued, the set is current, and one redeploy happened
    assert env.emulator.issued_certificates(env.ca_arn) == 1
    assert read_current(env, name).manifest.version == token
    assert counting.calls == [f"{s.cluster}/{s.service}" for s in env.config.sets[0].services]


def test_a_crash_before_issuing_reuses_the_stored_key_and_issues_once(
    make_env: Callable[..., LocalEnvironment], wire: Callable[..., None]
) -> None:
    # Given IssueCertificate fails once, after the key part was stored
    env = make_env()
    name = env.config.sets[0].name
    wire(ca=lambda real: FlakyCA(real, "issue", failures=1))
    driver = RotationDriver(env)
    token = driver.start(name)
    with pytest.raises(AwsError):
        driver.invoke(name, "createSecret", token)
    store = SecretStore(env.emulator.client("secretsmanager"))
    stored_key = store.get(env.config.sets[0].key_secret_name, version=token).value
    assert env.emulator.issued_certificates(env.ca_arn) == 0
    # When Secrets Manager retries the rotation
    driver.rotate(name)
    # Then the same key was certified, and only one certificate was issued
    current = read_current(env, name)
    assert current.key_pem == stored_key
    leaf = parse_bundle(current.bundle_pem).leaf
    assert leaf.public_key() == key_from_pem(stored_key).public_key()
    assert env.emulator.issued_certificates(env.ca_arn) == 1


def test_a_crash_after_issuing_waits_for_the_same_certificate(
    make_env: Callable[..., LocalEnvironment], wire: Callable[..., None]
) -> None:
    # Given GetCertificate fails once after IssueCertificate succeeded
    env = make_env()
    name = env.config.sets[0].name
    wire(ca=lambda real: FlakyCA(real, "wait", failures=1))
    # When the driver retries the failed createSecret
    report = RotationDriver(env).rotate(name)
    # Then the retry used the recorded certificate instead of paying for another
    assert [a.step for a in report.attempts].count("createSecret") == 2
    assert env.emulator.issued_certificates(env.ca_arn) == 1


def test_a_failing_rotation_leaves_awscurrent_untouched(
    make_env: Callable[..., LocalEnvironment], wire: Callable[..., None]
) -> None:
    # Given a set rotated once, then a CA that keeps failing
    env = make_env()
    name = env.config.sets[0].name
    first = RotationDriver(env).rotate(name)
    wire(ca=lambda real: FlakyCA(real, "issue", failures=99))
    # When a second rotation exhausts its retries
    with pytest.raises(RotationFailed) as failed:
        RotationDriver(env).rotate(name)
    # Then readers still get the first rotation's set, and the new version stays pending
    assert failed.value.step == "createSecret"
    assert read_current(env, name).manifest.version == first.token
    assert "AWSPENDING" in stages(env, name)[failed.value.report.token]


def test_a_reader_during_a_rotation_gets_the_complete_previous_set(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a current set and a second rotation stopped half way through finishSecret:
    # every part already moved to the new version, the manifest not yet
    env = make_env()
    cert_set = env.config.sets[0]
    first = RotationDriver(env).rotate(cert_set.name)
    driver = RotationDriver(env)
    token = driver.start(cert_set.name)
    for step in ("createSecret", "setSecret", "testSecret"):
        driver.invoke(cert_set.name, step, token)
    client = env.emulator.client("secretsmanager")
    for part in cert_set.part_secret_names:
        current = next(v for v, s in stages(env, part).items() if "AWSCURRENT" in s)
        client.update_secret_version_stage(
            SecretId=part, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current
        )
    # When a container reads the set
    reader = SetReader(SecretStore(client))
    current_set = reader.read(cert_set.name)
    # Then it gets the whole previous set, each part read by the manifest's VersionId
    assert current_set.manifest.version == first.token
    verify_set(current_set, now(), anchor=env.root.certificate, expected=cert_set)
    assert reader.last.calls == 2 + len(cert_set.part_secret_names)


def test_a_steady_state_read_takes_two_calls(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a rotated set
    env = make_env()
    name = env.config.sets[0].name
    RotationDriver(env).rotate(name)
    # When it is read
    reader = SetReader(SecretStore(env.emulator.client("secretsmanager")))
    reader.read(name)
    # Then one GetSecretValue and one BatchGetSecretValue were enough
    assert reader.last.calls == 2


def test_rotation_disabled_is_refused_and_writes_nothing(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a set whose rotation is disabled
    env = make_env()
    cert_set = env.config.sets[0]
    env.emulator.set_rotation_enabled(cert_set.name, False)
    driver = RotationDriver(env)
    token = driver.start(cert_set.name)
    # When createSecret is invoked
    with pytest.raises(RotationError, match="rotation is not enabled"):
        driver.invoke(cert_set.name, "createSecret", token)
    # Then no part was written for the token
    for part in cert_set.part_secret_names:
        assert token not in stages(env, part)


def test_a_token_that_is_not_staged_is_refused(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a set and a token Secrets Manager never staged
    env = make_env()
    cert_set = env.config.sets[0]
    token = "00000000-0000-4000-8000-000000000000"
    # When createSecret is invoked with it
    with pytest.raises(RotationError, match="is not a version"):
        RotationDriver(env).invoke(cert_set.name, "createSecret", token)
    # Then nothing was written
    for part in cert_set.part_secret_names:
        assert token not in stages(env, part)


def test_an_unknown_step_is_refused(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a staged rotation
    env = make_env()
    cert_set = env.config.sets[0]
    driver = RotationDriver(env)
    token = driver.start(cert_set.name)
    # When an unknown step is invoked, then it is refused by name
    with pytest.raises(RotationError, match="unknown rotation step 'rollbackSecret'"):
        driver.invoke(cert_set.name, "rollbackSecret", token)


def test_reads_without_a_stage_follow_awscurrent_as_on_aws(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a set rotated twice (AWSCURRENT moved by UpdateSecretVersionStage)
    env = make_env()
    name = env.config.sets[0].name
    RotationDriver(env).rotate(name)
    second = RotationDriver(env).rotate(name)
    client = env.emulator.client("secretsmanager")
    # When it is read without a stage, singly and in a batch
    single = client.get_secret_value(SecretId=name)
    batch = client.batch_get_secret_value(SecretIdList=[name])["SecretValues"][0]
    # Then both return the version AWSCURRENT is on, as AWS does
    assert single["VersionId"] == second.token
    assert batch["VersionId"] == second.token


def without_service(env: LocalEnvironment) -> LocalEnvironment:
    for ref in env.config.sets[0].services:
        env.emulator.client("ecs").delete_service(cluster=ref.cluster, service=ref.service, force=True)
    return env


def test_a_missing_service_is_reported_without_undoing_the_rotation(
    make_env: Callable[..., LocalEnvironment],
) -> None:
    # Given a set whose configured service does not exist
    env = without_service(make_env(services=[{"cluster": "nowhere", "service": "ghost"}]))
    name = env.config.sets[0].name
    # When it is rotated
    report = RotationDriver(env).rotate(name)
    # Then the rotation completed and the failure is reported
    assert read_current(env, name).manifest.version == report.token
    assert report.results["finishSecret"]["redeploy_failures"] == ["nowhere/ghost"]


def test_redeploy_strict_refuses_to_finish_when_a_service_is_missing(
    make_env: Callable[..., LocalEnvironment],
) -> None:
    # Given a strict set whose configured service does not exist
    env = without_service(make_env(services=[{"cluster": "nowhere", "service": "ghost"}], redeploy_strict=True))
    name = env.config.sets[0].name
    # When it is rotated, then finishSecret fails and AWSCURRENT stays on the initial value
    with pytest.raises(RotationFailed) as failed:
        RotationDriver(env).rotate(name)
    assert failed.value.step == "finishSecret"
    assert "AWSPENDING" in stages(env, name)[failed.value.report.token]


def test_no_key_material_reaches_the_logs(make_env: Callable[..., LocalEnvironment], wire: Callable[..., None]) -> None:
    # Given debug logging into a buffer, and a first createSecret that fails after the key is stored
    env = make_env()
    name = env.config.sets[0].name
    wire(ca=lambda real: FlakyCA(real, "wait", failures=1))
    buffer = io.StringIO()
    handler = rotate_handler.logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    rotate_handler.logger.setLevel("DEBUG")
    try:
        # When the rotation runs, fails once and is retried
        RotationDriver(env).rotate(name)
    finally:
        rotate_handler.logger.setLevel("WARNING")
        handler.setStream(previous)  # type: ignore[attr-defined]
    # Then both the failure and the steps were logged, and nothing of the private key was:
    # neither its PEM armour nor any of its secret bytes (the middle of its base64 body,
    # past the algorithm header every key of one type shares)
    key_pem = read_current(env, name).key_pem
    body = "".join(key_pem.splitlines()[1:-1])
    logged = buffer.getvalue().replace("\\n", "")
    assert "rotation step failed" in logged and "rotation step done" in logged
    assert "PRIVATE KEY" not in logged
    middle = len(body) // 2
    assert body[middle : middle + 24] not in logged


def test_a_configuration_test_before_the_first_issuance_passes(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a new set, and Secrets Manager testing the rotation configuration
    # (rotation set up without rotating now: testSecret alone on a copy of the current value)
    env = make_env()
    name = env.config.sets[0].name
    token = str(uuid.uuid4())
    env.emulator.stage_pending(name, token, copy_current=True)
    # When testSecret runs, then it passes without anything to prove
    result = RotationDriver(env).invoke(name, "testSecret", token)
    assert result["action"] == "nothing issued yet to test"


def test_a_configuration_test_after_issuance_proves_the_current_set(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a rotated set, then a configuration test on a copy of its current manifest
    env = make_env()
    name = env.config.sets[0].name
    first = RotationDriver(env).rotate(name)
    token = str(uuid.uuid4())
    env.emulator.stage_pending(name, token, copy_current=True)
    # When testSecret runs, then the set the copy names is proved
    result = RotationDriver(env).invoke(name, "testSecret", token)
    assert result["action"] == "verified"
    assert result["serial"] == read_current(env, name).manifest.serial
    assert read_current(env, name).manifest.version == first.token


def test_testsecret_without_a_created_set_is_refused(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a staged rotation whose createSecret never ran
    env = make_env()
    name = env.config.sets[0].name
    driver = RotationDriver(env)
    token = driver.start(name)
    # When testSecret runs, then it fails naming the missing step
    with pytest.raises(RotationError, match="createSecret did not complete"):
        driver.invoke(name, "testSecret", token)


def test_a_chain_that_cannot_fit_is_refused_before_anything_is_stored_or_issued(
    make_env: Callable[..., LocalEnvironment],
) -> None:
    # Given a set whose CA chain needs more parts than provisioned at its limit
    env = make_env(value_limit=1024, chain_parts=1)
    cert_set = env.config.sets[0]
    driver = RotationDriver(env, max_attempts=1)
    # When it is rotated
    with pytest.raises(RotationFailed) as failed:
        driver.rotate(cert_set.name)
    # Then createSecret names the setting to raise, stored no key and paid for no certificate
    assert failed.value.step == "createSecret"
    assert "raise chain_parts" in str(failed.value)
    assert failed.value.report.token not in stages(env, cert_set.key_secret_name)
    assert env.emulator.issued_certificates(env.ca_arn) == 0


class NoBatchStore(SecretStore):
    """A reader whose role lacks secretsmanager:BatchGetSecretValue."""

    def get_current_many(self, secret_ids: Any) -> Any:
        raise AwsError("BatchGetSecretValue: AccessDeniedException")


def test_a_reader_without_the_batch_permission_reads_each_part(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a rotated set and a reader that may not call BatchGetSecretValue
    env = make_env()
    cert_set = env.config.sets[0]
    report = RotationDriver(env).rotate(cert_set.name)
    reader = SetReader(NoBatchStore(env.emulator.client("secretsmanager")))
    # When it reads the set, then it gets the whole set, one GetSecretValue per part
    current = reader.read(cert_set.name)
    assert current.manifest.version == report.token
    assert reader.last.calls == 2 + len(cert_set.part_secret_names)


@pytest.mark.parametrize(
    ("usage", "eku"), [("client", ["clientAuth"]), ("both", ["serverAuth", "clientAuth"]), ("server", ["serverAuth"])]
)
def test_a_set_of_each_usage_rotates_on_the_emulator_with_its_template_and_validity(
    make_env: Callable[..., LocalEnvironment], usage: str, eku: list[str]
) -> None:
    # Given a set with this usage, valid 45 days
    env = make_env(usage=usage, validity_days=45)
    name = env.config.sets[0].name
    # When it is rotated through the real handler (testSecret proves it in its roles)
    report = RotationDriver(env).rotate(name)
    # Then the current certificate has the template's extended key usage and the validity asked for
    leaf = parse_bundle(read_current(env, name).bundle_pem).leaf
    assert [oid._name for oid in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value] == eku
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=45)
    assert read_current(env, name).manifest.version == report.token
