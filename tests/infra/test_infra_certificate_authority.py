"""The CA is referenced by ARN, or created, signed and activated by the stack."""

from __future__ import annotations

from typing import Any


def test_a_referenced_ca_creates_no_private_ca_resources(main: Any) -> None:
    main.template.resource_count_is("AWS::ACMPCA::CertificateAuthority", 0)
    main.template.resource_count_is("AWS::ACMPCA::Certificate", 0)


def test_a_created_ca_is_a_root_in_the_configured_usage_mode(created_ca: Any) -> None:
    created_ca.template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthority",
        {
            "Type": "ROOT",
            "UsageMode": "SHORT_LIVED_CERTIFICATE",
            "KeyAlgorithm": "RSA_2048",
            "SigningAlgorithm": "SHA256WITHRSA",
            "Subject": {"CommonName": "Example Root CA"},
        },
    )


def test_a_created_ca_signs_its_own_root_certificate_and_is_activated(created_ca: Any) -> None:
    authority = created_ca.stack.certrotor.certificate_authority
    arn = created_ca.resolve(authority.arn)

    created_ca.template.has_resource_properties(
        "AWS::ACMPCA::Certificate",
        {
            "CertificateAuthorityArn": arn,
            "TemplateArn": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":acm-pca:::template/RootCACertificate/V1"],
                ]
            },
            "Validity": {"Type": "YEARS", "Value": 10},
        },
    )
    created_ca.template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthorityActivation",
        {"CertificateAuthorityArn": arn, "Status": "ACTIVE"},
    )


def test_a_created_ca_is_retained_when_removed_from_the_stack(created_ca: Any) -> None:
    authorities = created_ca.resources_of_type("AWS::ACMPCA::CertificateAuthority")

    assert [a["DeletionPolicy"] for a in authorities.values()] == ["Retain"]


def test_rotation_is_scheduled_only_after_the_created_ca_is_active(created_ca: Any) -> None:
    certrotor = created_ca.stack.certrotor
    activation = created_ca.stack.get_logical_id(certrotor.certificate_authority.activation)

    for cert in certrotor.certificates:
        schedule = created_ca.resources[created_ca.stack.get_logical_id(cert.rotation_schedule)]
        assert activation in schedule["DependsOn"]


def test_functions_learn_the_created_ca_arn_from_the_environment(created_ca: Any) -> None:
    certrotor = created_ca.stack.certrotor
    function = created_ca.resources[created_ca.logical_id(certrotor.rotation.function)]

    variables = function["Properties"]["Environment"]["Variables"]

    assert variables["CERTROTOR_CA_ARN"] == created_ca.resolve(certrotor.certificate_authority.arn)


def test_issuing_is_granted_on_the_created_ca(created_ca: Any) -> None:
    certrotor = created_ca.stack.certrotor
    statements = created_ca.role_statements(certrotor.rotation.role)

    issuing = [s for s in statements if "acm-pca:IssueCertificate" in s["Action"]]

    assert [s["Resource"] for s in issuing] == [[created_ca.resolve(certrotor.certificate_authority.arn)]]
