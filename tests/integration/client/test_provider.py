"""CertificateSetProvider (Powertools Parameters) against the emulator: a
verified set, cached for max_age, refreshed with one call when unchanged,
refused when tampered; and an mTLS call made with what it returns."""

from __future__ import annotations

import json
import socket
import ssl
import threading

import pytest
from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from certrotor.client.provider import CertificateSet, CertificateSetProvider
from certrotor.local.driver import RotationDriver
from tests.integration.client.conftest import rotated_set


def provider_for(rotated) -> CertificateSetProvider:
    return CertificateSetProvider(ca_pem=rotated.env.root.pem, boto3_client=rotated.secrets)


def manifest_of(rotated) -> dict:
    return json.loads(rotated.current(rotated.name)["SecretString"])


def test_it_is_a_powertools_provider_returning_the_verified_current_set(rotated):
    provider = provider_for(rotated)
    assert isinstance(provider, BaseProvider)
    got = provider.get(rotated.name)
    manifest = manifest_of(rotated)
    assert isinstance(got, CertificateSet)
    assert (got.serial, got.version) == (manifest["serial"], manifest["version"])
    assert got.key_pem == rotated.current(f"{rotated.name}/key")["SecretString"]
    assert got.certificate_pem == manifest["certificate"]
    # and its repr never shows the key
    assert "PRIVATE" not in repr(got)
    assert provider.calls == 2


def test_within_max_age_the_cached_set_is_returned_without_a_call(rotated):
    provider = provider_for(rotated)
    first = provider.get(rotated.name, max_age=300)
    RotationDriver(rotated.env).rotate(rotated.name)
    again = provider.get(rotated.name, max_age=300)
    assert again is first
    assert provider.calls == 2


def test_after_max_age_an_unchanged_set_costs_one_call_and_a_new_one_is_read_and_verified(rotated):
    provider = provider_for(rotated)
    first = provider.get(rotated.name, max_age=0)
    unchanged = provider.get(rotated.name, max_age=0)
    assert unchanged == first
    assert provider.calls == 3
    RotationDriver(rotated.env).rotate(rotated.name)
    rotated_set = provider.get(rotated.name, max_age=0)
    assert rotated_set.serial == manifest_of(rotated)["serial"] != first.serial
    assert provider.calls == 5


def test_a_tampered_set_raises_get_parameter_error_with_the_reason(rotated):
    rotated.put_tampered_chain()
    with pytest.raises(GetParameterError, match="chain-0 does not match the manifest's digest") as raised:
        provider_for(rotated).get(rotated.name)
    assert "PRIVATE" not in str(raised.value)


def test_a_chain_from_another_ca_is_refused(rotated, root_ca):
    from certrotor.local.ca import LocalCA

    stranger = LocalCA.create_root("someone else's root")
    provider = CertificateSetProvider(ca_pem=stranger.pem, boto3_client=rotated.secrets)
    with pytest.raises(GetParameterError):
        provider.get(rotated.name)


def test_a_lambda_calls_a_private_mtls_service_with_the_set(emulator, root_ca):
    # Given a set issued for client authentication too (usage both), and a
    # private service that requires a client certificate from the CA
    rotated = rotated_set(emulator, root_ca, usage="both")
    got = provider_for(rotated).get(rotated.name)
    server = got.server_context()
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(cadata=rotated.env.root.pem)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        connection, _ = listener.accept()
        with server.wrap_socket(connection, server_side=True) as tls:
            seen["client"] = tls.getpeercert()
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    # When the function connects with the provider's client context
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        got.client_context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        answer = tls.recv(2)
    thread.join(10)
    listener.close()
    # Then the service saw the set's certificate
    assert answer == b"ok"
    subject = dict(item[0] for item in seen["client"]["subject"])  # type: ignore[index]
    assert subject["commonName"] == "localhost"


def test_without_ca_pem_the_set_is_verified_against_the_rotators_trust_bundle(rotated):
    # Given a provider with no CA of its own
    got = CertificateSetProvider(boto3_client=rotated.secrets).get(rotated.name)
    # Then the set verified against the published trust bundle, which names the root
    assert got.ca_pem is not None
    assert rotated.env.root.pem.strip() in got.ca_pem
