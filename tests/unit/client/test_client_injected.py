"""A set injected by ECS as environment variables: assemble, verify, hide."""

from __future__ import annotations

import datetime as dt

import pytest

from certrotor.client.fetch import verify_fetched
from certrotor.client.injected import assemble_from_env, without_material
from certrotor.errors import BundleError, IntegrityError

SET = "tls/orders"
V1 = "11111111-1111-4111-8111-111111111111"
V2 = "22222222-2222-4222-8222-222222222222"


def injected(layout) -> dict[str, str]:
    """The variables a task definition's `secrets` entries would set."""
    return {
        "CERTROTOR_MANIFEST": layout.manifest_value,
        "CERTROTOR_KEY": layout.parts[f"{SET}/key"],
        "CERTROTOR_CHAIN_0": layout.parts[f"{SET}/chain-0"],
        "CERTROTOR_CHAIN_1": layout.parts[f"{SET}/chain-1"],
    }


def test_a_set_assembles_and_verifies_from_its_variables(material):
    # Given the variables of one rotation
    environ = injected(material.layout(V1))
    # When
    verified = verify_fetched(assemble_from_env(SET, environ), SET)
    # Then the key and certificate are that rotation's
    assert verified.key_pem == material.key_pem
    assert verified.bundle.leaf == material.bundle.leaf


def test_a_key_from_another_rotation_is_refused(material, other_material):
    # Given the manifest of one rotation and the key of another (a task started mid-rotation)
    environ = {**injected(material.layout(V1)), "CERTROTOR_KEY": other_material.key_pem}
    # When / Then
    with pytest.raises(IntegrityError, match=f"part {SET}/key does not match the manifest's digest"):
        assemble_from_env(SET, environ)


def test_a_tampered_chain_part_is_refused(material):
    # Given a chain part that is not the one the manifest lists
    layout = material.layout(V1)
    environ = {**injected(layout), "CERTROTOR_CHAIN_0": layout.parts[f"{SET}/chain-0"] + "\n"}
    # When / Then
    with pytest.raises(IntegrityError, match=f"part {SET}/chain-0 does not match the manifest's digest"):
        assemble_from_env(SET, environ)


def test_a_missing_variable_is_named(material):
    # Given no CERTROTOR_CHAIN_1
    environ = injected(material.layout(V1))
    del environ["CERTROTOR_CHAIN_1"]
    # When / Then
    with pytest.raises(IntegrityError, match=f"part {SET}/chain-1 is missing: CERTROTOR_CHAIN_1 is not set"):
        assemble_from_env(SET, environ)


def test_without_a_manifest_variable_the_set_is_refused():
    # Given / When / Then
    with pytest.raises(IntegrityError, match="CERTROTOR_MANIFEST is not set"):
        assemble_from_env(SET, {"CERTROTOR_KEY": "x"})


def test_the_manifest_of_another_set_is_refused(material):
    # Given the variables of a set named tls/billing, fetched as tls/orders
    other = material.layout(V1, name="tls/billing")
    environ = {
        "CERTROTOR_MANIFEST": other.manifest_value,
        "CERTROTOR_KEY": other.parts["tls/billing/key"],
        "CERTROTOR_CHAIN_0": other.parts["tls/billing/chain-0"],
        "CERTROTOR_CHAIN_1": other.parts["tls/billing/chain-1"],
    }
    # When / Then
    with pytest.raises(IntegrityError, match="the manifest is for set tls/billing, not tls/orders"):
        verify_fetched(assemble_from_env(SET, environ), SET)


def test_a_certificate_expiring_sooner_than_required_is_refused(material):
    # Given a set whose certificate is valid for 30 days
    assembled = assemble_from_env(SET, injected(material.layout(V2)))
    # When it must stay valid for 31 / Then
    with pytest.raises(BundleError, match="sooner than required"):
        verify_fetched(assembled, SET, min_remaining=dt.timedelta(days=31))


def test_a_chain_that_does_not_lead_to_the_given_ca_is_refused(material):
    # Given a CA that did not issue the chain
    from certrotor.local.ca import LocalCA

    stranger = LocalCA.create_root("someone else's root")
    assembled = assemble_from_env(SET, injected(material.layout(V1)))
    # When / Then
    with pytest.raises(BundleError, match="chain does not lead to the trusted CA"):
        verify_fetched(assembled, SET, anchor_pem=stranger.pem)


def test_the_material_variables_are_removed_and_the_rest_kept():
    # Given an environment with the set's variables and others
    environ = {
        "CERTROTOR_MANIFEST": "m",
        "CERTROTOR_KEY": "k",
        "CERTROTOR_CHAIN_0": "c0",
        "CERTROTOR_CHAIN_12": "c12",
        "CERTROTOR_CHAIN_MODE": "kept: not a part",
        "PATH": "/usr/bin",
    }
    # When / Then
    assert without_material(environ) == {"CERTROTOR_CHAIN_MODE": "kept: not a part", "PATH": "/usr/bin"}
