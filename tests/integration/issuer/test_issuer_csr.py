"""POST /certificates through the loopback Function URL: what is issued, what
is refused (and that a refusal issues nothing), and that retries and
throttling never pay twice."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certrotor.aws.ledger import Ledger
from certrotor.client.request import (
    FunctionUrlClient,
    IssuerHttpError,
    request_certificate,
)
from certrotor.config import KeyAlgorithm
from certrotor.handlers import issuer
from certrotor.local.gateway import IssuerGateway
from certrotor.local.provision import LocalEnvironment
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key

from .conftest import IDENTITIES, orders_policy


def no_sleep(_: float) -> None:
    return None


def csr_for(*names: str, common_name: str | None = None, ips: tuple[str, ...] = ()) -> str:
    key = generate_key(KeyAlgorithm.EC_P256)
    return build_csr(key, common_name or (names or ips)[0], names, ips)


def refusal(client: FunctionUrlClient, body: dict[str, Any]) -> IssuerHttpError:
    with pytest.raises(IssuerHttpError) as caught:
        client.call("POST", "/certificates", body)
    return caught.value


def issued(gateway: IssuerGateway) -> int:
    return gateway.emulator.issued_certificates(gateway.environment.ca_arn)


def ledger(gateway: IssuerGateway) -> Ledger:
    return Ledger(gateway.tables.ledger, gateway.emulator.client("dynamodb"))


# -- issued -------------------------------------------------------------------


def test_an_allowed_csr_gets_its_certificate_and_chain(orders: FunctionUrlClient) -> None:
    # Given a CSR for a name the orders policy allows
    csr = csr_for("api.svc.internal")
    # When the orders task asks for it
    answer = orders.call("POST", "/certificates", {"csr": csr, "validity_days": 7})
    # Then it is created, with certificate, chain, serial and expiry
    assert answer.status == 201
    assert answer.body["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "BEGIN CERTIFICATE" in answer.body["chain"]
    assert answer.body["serial"] and answer.body["not_after"]


def test_the_client_verifies_what_it_receives(orders: FunctionUrlClient) -> None:
    # Given the request client (key made locally)
    # When it requests a certificate
    requested = request_certificate(orders, ["orders.internal"], sleep=no_sleep)
    # Then the certificate is for its key and names
    assert requested.bundle.leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == serialization.load_pem_private_key(requested.key_pem.encode(), None).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_an_arn_pattern_policy_allows_ip_addresses(client_as: Callable[..., FunctionUrlClient]) -> None:
    # Given the billing policy (matched by role ARN pattern) allows IP SANs
    billing = client_as("AKIABILLING")
    # When billing asks for a name and an IP
    answer = billing.call(
        "POST", "/certificates", {"csr": csr_for("billing.internal", ips=("10.0.0.5",)), "validity_days": 7}
    )
    # Then it is issued
    assert answer.status == 201


# -- refused, and nothing issued -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "rule"),
    [
        ({"csr": "hello", "validity_days": 7}, 400, "not_pem"),
        ({"validity_days": 7}, 400, "not_pem"),
        ({"csr": "CSR", "validity_days": "seven"}, 400, "invalid_request"),
        ({"csr": "CSR", "validity_days": 31}, 422, "validity_exceeds_policy"),
    ],
)
def test_a_malformed_request_is_refused_with_its_rule(
    gateway: IssuerGateway, orders: FunctionUrlClient, body: dict[str, Any], status: int, rule: str
) -> None:
    # Given a request broken in one way
    if body.get("csr") == "CSR":
        body = {**body, "csr": csr_for("orders.internal")}
    before = issued(gateway)
    # When it is sent
    error = refusal(orders, body)
    # Then the rule is named and nothing is issued
    assert (error.status, error.error) == (status, rule)
    assert issued(gateway) == before


def test_a_csr_with_a_broken_signature_is_refused(gateway: IssuerGateway, orders: FunctionUrlClient) -> None:
    # Given a CSR whose signature no longer matches its content
    pem = csr_for("orders.internal")
    der = bytearray(base64.b64decode("".join(pem.strip().splitlines()[1:-1])))
    der[-5] ^= 0x01
    lines = base64.b64encode(bytes(der)).decode()
    tampered = (
        "-----BEGIN CERTIFICATE REQUEST-----\n"
        + "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
        + "\n-----END CERTIFICATE REQUEST-----\n"
    )
    before = issued(gateway)
    # When it is sent
    error = refusal(orders, {"csr": tampered, "validity_days": 7})
    # Then it is refused as bad_signature, nothing issued
    assert (error.status, error.error) == (422, "bad_signature")
    assert issued(gateway) == before


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 - the weak key under test
            id="rsa-1024",
        ),
        pytest.param(lambda: ec.generate_private_key(ec.SECP521R1()), id="p-521-not-allowed"),
    ],
)
def test_a_weak_key_is_refused(gateway: IssuerGateway, orders: FunctionUrlClient, key: Callable[[], Any]) -> None:
    # Given a CSR signed by a key outside the policy
    csr = build_csr(key(), "orders.internal", ["orders.internal"])
    before = issued(gateway)
    # When it is sent
    error = refusal(orders, {"csr": csr, "validity_days": 7})
    # Then weak_key, nothing issued
    assert (error.status, error.error) == (422, "weak_key")
    assert issued(gateway) == before


@pytest.mark.parametrize(
    ("csr", "rule"),
    [
        (lambda: csr_for("payments.internal"), "name_not_allowed"),
        (lambda: csr_for("a.b.svc.internal"), "name_not_allowed"),
        (lambda: csr_for("orders.internal", ips=("10.0.0.1",)), "ip_not_allowed"),
        (lambda: csr_for("orders.internal", common_name="other.internal"), "cn_not_in_sans"),
    ],
    ids=["other-name", "two-labels-for-one-wildcard", "ip", "cn-not-a-san"],
)
def test_names_outside_the_policy_are_refused(
    gateway: IssuerGateway, orders: FunctionUrlClient, csr: Callable[[], str], rule: str
) -> None:
    # Given a CSR asking for a name the policy does not allow
    before = issued(gateway)
    # When it is sent
    error = refusal(orders, {"csr": csr(), "validity_days": 7})
    # Then the rule is named, nothing issued
    assert (error.status, error.error) == (422, rule)
    assert issued(gateway) == before


def test_a_body_over_the_limit_is_refused_as_too_large(gateway: IssuerGateway, orders: FunctionUrlClient) -> None:
    # Given a body of 20 KiB
    before = issued(gateway)
    # When it is sent
    error = refusal(orders, {"csr": "x" * 20_000, "validity_days": 7})
    # Then 413 too_large
    assert (error.status, error.error) == (413, "too_large")
    assert issued(gateway) == before


def test_validity_beyond_the_ca_is_refused(make_issuer_env: Callable[..., LocalEnvironment]) -> None:
    # Given a policy allowing ten years under a CA valid for five
    env = make_issuer_env(policies=[orders_policy("none", max_validity_days=3650)])
    with IssuerGateway(env, identities=IDENTITIES) as gateway:
        client = FunctionUrlClient(gateway.url, _credentials("AKIAORDERS"), region="us-east-1")
        # When nine years are asked for
        error = refusal(client, {"csr": csr_for("orders.internal"), "validity_days": 9 * 365})
        # Then validity_exceeds_ca, nothing issued
        assert (error.status, error.error) == (422, "validity_exceeds_ca")
        assert issued(gateway) == 0


def test_an_unknown_principal_is_forbidden(gateway: IssuerGateway, client_as: Callable[..., FunctionUrlClient]) -> None:
    # Given a correctly signed caller with no issuer policy
    stranger = client_as("AKIASTRANGER")
    # When it asks for a certificate
    error = refusal(stranger, {"csr": csr_for("orders.internal"), "validity_days": 7})
    # Then 403 unknown_principal, nothing issued
    assert (error.status, error.error) == (403, "unknown_principal")
    assert issued(gateway) == 0


def test_a_wrongly_signed_request_is_forbidden_before_the_function(
    gateway: IssuerGateway, client_as: Callable[..., FunctionUrlClient]
) -> None:
    # Given a known access key signing with the wrong secret
    forger = client_as("AKIAORDERS", "not-the-secret")
    # When it asks for a certificate
    error = refusal(forger, {"csr": csr_for("orders.internal"), "validity_days": 7})
    # Then the gateway answers 403 and nothing is issued
    assert (error.status, error.error) == (403, "forbidden")
    assert issued(gateway) == 0


def test_an_unsigned_request_is_forbidden(gateway: IssuerGateway) -> None:
    # Given a plain HTTP POST with no signature
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - loopback
        gateway.url + "/certificates", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
    )
    # When it is sent
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    # Then 403 with a JSON reason
    assert caught.value.code == 403
    assert json.loads(caught.value.read())["error"] == "forbidden"


def test_a_principal_over_its_rate_is_told_when_to_retry(gateway: IssuerGateway, orders: FunctionUrlClient) -> None:
    # Given the orders role already used its whole rate this minute and the next
    now = dt.datetime.now(dt.UTC)
    role = "arn:aws:iam::123456789012:role/orders-task"
    for minute in (now, now + dt.timedelta(minutes=1)):
        gateway.emulator.client("dynamodb").put_item(
            TableName=gateway.tables.ledger,
            Item={
                "pk": {"S": f"RATE#{role}"},
                "sk": {"S": f"MIN#{int(minute.timestamp()) // 60}"},
                "requests": {"N": "1000"},
            },
        )
    # When it asks for a certificate
    error = refusal(orders, {"csr": csr_for("orders.internal"), "validity_days": 7})
    # Then 429 rate_limited with Retry-After, nothing issued
    assert (error.status, error.error) == (429, "rate_limited")
    assert error.retry_after is not None
    assert issued(gateway) == 0


# -- never pay twice -----------------------------------------------------------------


def test_a_retried_request_returns_the_identical_certificate(gateway: IssuerGateway, orders: FunctionUrlClient) -> None:
    # Given a request that was answered
    body = {"csr": csr_for("orders.internal"), "validity_days": 7}
    first = orders.call("POST", "/certificates", body)
    # When the same request is sent again
    second = orders.call("POST", "/certificates", body)
    # Then the same certificate comes back and only one was issued
    assert second.body["certificate"] == first.body["certificate"]
    assert issued(gateway) == 1


def test_ten_concurrent_requests_each_get_their_own_certificate(
    gateway: IssuerGateway, orders: FunctionUrlClient
) -> None:
    # Given ten containers with their own keys
    # When they all ask at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(lambda i: request_certificate(orders, [f"w{i}.svc.internal"], sleep=no_sleep), range(10))
        )
    # Then ten distinct certificates, ten issued, ten in the ledger
    assert len({r.serial for r in results}) == 10
    assert issued(gateway) == 10
    assert ledger(gateway).count(gateway.environment.ca_arn) == 10


def test_ten_concurrent_identical_requests_pay_for_one_certificate(
    gateway: IssuerGateway, orders: FunctionUrlClient
) -> None:
    # Given one CSR sent by ten retrying callers at once
    from certrotor.client.request import with_retries

    body = {"csr": csr_for("orders.internal"), "validity_days": 7}

    def send(_: int) -> str:
        answer = with_retries(lambda: orders.call("POST", "/certificates", body), 60, sleep=lambda s: None)
        return str(answer.body["serial"])

    # When they all send it
    with ThreadPoolExecutor(max_workers=10) as pool:
        serials = set(pool.map(send, range(10)))
    # Then everyone gets the same certificate, issued once
    assert len(serials) == 1
    assert issued(gateway) == 1


def _throttle(operation: str, times: int) -> list[int]:
    """Answer the next `times` calls of `operation` with ThrottlingException."""
    calls = [0]

    def hook(**_: Any) -> Any:
        calls[0] += 1
        if calls[0] > times:
            return None
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return AWSResponse("https://acm-pca", 400, {}, None), {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    issuer.wiring().pca_client.meta.events.register(f"before-call.acm-pca.{operation}", hook)
    return calls


def test_throttled_issuance_answers_429_and_the_retry_issues_once(
    gateway: IssuerGateway, orders: FunctionUrlClient
) -> None:
    # Given Private CA throttles the next three IssueCertificate calls
    calls = _throttle("IssueCertificate", 3)
    seen: list[str] = []
    # When the client asks (and retries after each 429)
    requested = request_certificate(orders, ["orders.internal"], say=seen.append, sleep=no_sleep)
    # Then it got its certificate, saw the throttling, and one was issued
    assert requested.serial
    assert calls[0] == 4
    assert sum("ca_throttled" in line for line in seen) == 3
    assert issued(gateway) == 1
    assert ledger(gateway).count(gateway.environment.ca_arn) == 1


def test_a_certificate_slow_to_be_ready_is_not_issued_again_on_retry(
    issuer_env: LocalEnvironment,
) -> None:
    # Given a function with little time, and GetCertificate throttled for a while
    with IssuerGateway(issuer_env, identities=IDENTITIES, function_timeout=4.0) as gateway:
        client = FunctionUrlClient(gateway.url, _credentials("AKIAORDERS"), region="us-east-1")
        _throttle("GetCertificate", 6)
        seen: list[str] = []
        # When the client asks, runs out of function time, and retries
        requested = request_certificate(client, ["orders.internal"], say=seen.append, sleep=no_sleep)
        # Then the retry found the certificate already issued: one paid for
        assert requested.serial
        assert any("unavailable" in line for line in seen)
        assert issued(gateway) == 1


def _credentials(access_key: str) -> Any:
    from botocore.credentials import Credentials

    return Credentials(access_key, IDENTITIES[access_key].secret_key)
