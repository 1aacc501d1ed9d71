"""The CA is referenced by ARN, or created, signed and activated by the stack."""

from __future__ import annotations

import json
from typing import Any

from .conftest import NEXT_CA_ARN, PREVIOUS_CA_ARN


def test_a_referenced_ca_creates_no_private_ca_resources(main: Any) -> None:
    main.template.resource_count_is("AWS::ACMPCA::CertificateAuthority", 0)
    main.template.resource_count_is("AWS::ACMPCA::Certificate", 0)


def template(name: str) -> Any:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":acm-pca:::template/{name}"]]}


def test_a_created_ca_is_a_root_and_an_issuing_subordinate_in_the_configured_usage_mode(created_ca: Any) -> None:
    created_ca.template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthority",
        {"Type": "ROOT", "KeyAlgorithm": "RSA_2048", "Subject": {"CommonName": "Example Root CA Root"}},
    )
    created_ca.template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthority",
        {
            "Type": "SUBORDINATE",
            "UsageMode": "SHORT_LIVED_CERTIFICATE",
            "KeyAlgorithm": "RSA_2048",
            "SigningAlgorithm": "SHA256WITHRSA",
            "Subject": {"CommonName": "Example Root CA"},
        },
    )


def test_the_root_signs_itself_and_the_subordinate_which_is_activated_with_the_roots_chain(created_ca: Any) -> None:
    authority = created_ca.stack.certrotor.certificate_authority
    root, issuing = created_ca.resolve(authority.root_arn), created_ca.resolve(authority.arn)

    created_ca.template.has_resource_properties(
        "AWS::ACMPCA::Certificate",
        {
            "CertificateAuthorityArn": root,
            "TemplateArn": template("RootCACertificate/V1"),
            "Validity": {"Type": "YEARS", "Value": 10},
        },
    )
    created_ca.template.has_resource_properties(
        "AWS::ACMPCA::Certificate",
        {
            "CertificateAuthorityArn": root,
            "TemplateArn": template("SubordinateCACertificate_PathLen0/V1"),
            "Validity": {"Type": "YEARS", "Value": 5},
        },
    )
    activations = created_ca.resources_of_type("AWS::ACMPCA::CertificateAuthorityActivation")
    issuing_activation = next(a for a in activations.values() if a["Properties"]["CertificateAuthorityArn"] == issuing)
    assert issuing_activation["Properties"]["Status"] == "ACTIVE"
    assert "Fn::GetAtt" in issuing_activation["Properties"]["CertificateChain"]


def test_nothing_is_granted_on_the_root(created_ca: Any) -> None:
    root = created_ca.resolve(created_ca.stack.certrotor.certificate_authority.root_arn)
    for logical_id, _, statement in created_ca.policy_statements():
        assert root not in statement["Resource"], logical_id


def test_a_created_ca_publishes_a_crl_to_a_private_encrypted_versioned_bucket(created_ca: Any) -> None:
    authority = created_ca.stack.certrotor.certificate_authority
    bucket_id = created_ca.logical_id(authority.crl_bucket)
    bucket = created_ca.resources[bucket_id]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    for ca in created_ca.resources_of_type("AWS::ACMPCA::CertificateAuthority").values():
        revocation = ca["Properties"]["RevocationConfiguration"]
        assert revocation["CrlConfiguration"] == {
            "Enabled": True,
            "ExpirationInDays": 7,
            "S3BucketName": {"Ref": bucket_id},
            "S3ObjectAcl": "BUCKET_OWNER_FULL_CONTROL",
        }
        assert "OcspConfiguration" not in revocation


def test_only_private_ca_of_this_account_may_write_the_crl_bucket_and_only_over_tls(created_ca: Any) -> None:
    bucket_id = created_ca.logical_id(created_ca.stack.certrotor.certificate_authority.crl_bucket)
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in created_ca.resources_of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    statements = [
        {**s, "Action": s["Action"] if isinstance(s["Action"], list) else [s["Action"]]} for s in policy["Statement"]
    ]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    (allow,) = allows
    assert allow["Principal"] == {"Service": "acm-pca.amazonaws.com"}
    assert sorted(allow["Action"]) == sorted(
        ["s3:PutObject", "s3:PutObjectAcl", "s3:GetBucketAcl", "s3:GetBucketLocation"]
    )
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "aws:SourceArn" in allow["Condition"]["ArnLike"]
    assert [d["Condition"] for d in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_the_cas_are_created_after_the_crl_bucket_policy(created_ca: Any) -> None:
    authority = created_ca.stack.certrotor.certificate_authority
    policy_id = created_ca.stack.get_logical_id(authority.crl_bucket.policy.node.default_child)
    for ca in created_ca.resources_of_type("AWS::ACMPCA::CertificateAuthority").values():
        assert policy_id in ca["DependsOn"]


def test_a_created_ca_is_retained_when_removed_from_the_stack(created_ca: Any) -> None:
    authorities = created_ca.resources_of_type("AWS::ACMPCA::CertificateAuthority")

    assert [a["DeletionPolicy"] for a in authorities.values()] == ["Retain", "Retain"]


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

    # The created CA, and the CA a CA rotation moves to (ca.next_arn).
    assert [s["Resource"] for s in issuing] == [[created_ca.resolve(certrotor.certificate_authority.arn), NEXT_CA_ARN]]


def test_the_next_ca_may_issue_only_end_entity_templates_and_the_monitor_may_revoke_on_it(created_ca: Any) -> None:
    certrotor = created_ca.stack.certrotor
    rotation = created_ca.role_statements(certrotor.rotation.role)
    monitor = created_ca.role_statements(certrotor.monitor.role)

    (issue,) = [s for s in rotation if NEXT_CA_ARN in s["Resource"] and "acm-pca:IssueCertificate" in s["Action"]]
    revoke = [s for s in monitor if "acm-pca:RevokeCertificate" in s["Action"]]

    # One rotator serves sets of every usage: the end-entity templates, never a CA's.
    assert issue["Condition"] == {
        "StringEquals": {
            "acm-pca:TemplateArn": [
                template("EndEntityServerAuthCertificate/V1"),
                template("EndEntityClientAuthCertificate/V1"),
                template("EndEntityCertificate/V1"),
            ]
        }
    }
    # (and on the previous CA, in a statement of its own)
    assert [NEXT_CA_ARN in s["Resource"] for s in revoke] == [True, False]


def test_a_previous_ca_is_only_revoked_on_by_the_monitor(created_ca: Any) -> None:
    certrotor = created_ca.stack.certrotor
    rotation = created_ca.role_statements(certrotor.rotation.role)
    monitor = created_ca.role_statements(certrotor.monitor.role)

    on_previous = [s for s in monitor if PREVIOUS_CA_ARN in s["Resource"]]

    # Its certificates still in grace are revoked by it; nothing is issued or read from it.
    assert [(sorted(s["Action"]), s["Resource"]) for s in on_previous] == [
        (["acm-pca:DescribeCertificateAuthority", "acm-pca:RevokeCertificate"], [PREVIOUS_CA_ARN])
    ]
    assert not [s for s in rotation if PREVIOUS_CA_ARN in json.dumps(s["Resource"])]
