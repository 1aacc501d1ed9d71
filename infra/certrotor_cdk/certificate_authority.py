"""The Private CA that issues every certificate of a deployment.

Referenced by ARN (the usual case: a CA hierarchy owned elsewhere; whether it
publishes revocation is reported at run time by the monitor), or created by
the stack as a root and an issuing subordinate (path length 0) signed by it,
both activated by the stack. Leaves come from the subordinate only: the root
signs nothing else and nothing is granted on it, so it stays offline by
design. With ``ca.crl`` (default) both publish a CRL to an S3 bucket the
stack creates: private (public access blocked, objects written with
bucket-owner-full-control), encrypted (SSE-S3), versioned, TLS only, writable
by Private CA of this account only. ``ca.ocsp`` turns on OCSP as well.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_acmpca as acmpca
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import NagSuppressions
from constructs import Construct

from certrotor.config import CaConfig
from certrotor_cdk.compliance import accept
from certrotor_cdk.constants import (
    CA_KEY_ALGORITHM,
    CA_SIGNING_ALGORITHM,
    CA_VALIDITY_YEARS,
    CRL_EXPIRATION_DAYS,
    ROOT_CA_TEMPLATE,
    SUBORDINATE_CA_TEMPLATE,
    SUBORDINATE_CA_VALIDITY_YEARS,
)

# What Private CA does to a CRL bucket (AWS Private CA user guide, "Access
# policies for CRLs in Amazon S3").
CRL_BUCKET_ACTIONS = ("s3:PutObject", "s3:PutObjectAcl", "s3:GetBucketAcl", "s3:GetBucketLocation")


class CertificateAuthority(Construct):
    """``arn`` is the CA to issue from, whichever way it came to exist;
    ``root_arn`` and ``crl_bucket`` are set when the stack creates it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ca: CaConfig,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.created = ca.create
        self.activation: acmpca.CfnCertificateAuthorityActivation | None = None
        """Set when the stack creates the CA: issuing must wait for it."""
        self.root_arn: str | None = None
        self.crl_bucket: s3.Bucket | None = None
        if not ca.create:
            # load_config guarantees an ARN when the CA is not created.
            assert ca.arn is not None
            self.arn: str = ca.arn
            return
        revocation = self._revocation(ca, removal_policy)
        root = acmpca.CfnCertificateAuthority(
            self,
            "RootAuthority",
            type="ROOT",
            key_algorithm=CA_KEY_ALGORITHM,
            signing_algorithm=CA_SIGNING_ALGORITHM,
            subject=acmpca.CfnCertificateAuthority.SubjectProperty(common_name=f"{ca.common_name} Root"),
            usage_mode="GENERAL_PURPOSE",
            revocation_configuration=revocation,
        )
        issuing = acmpca.CfnCertificateAuthority(
            self,
            "Authority",
            type="SUBORDINATE",
            key_algorithm=CA_KEY_ALGORITHM,
            signing_algorithm=CA_SIGNING_ALGORITHM,
            subject=acmpca.CfnCertificateAuthority.SubjectProperty(common_name=ca.common_name),
            usage_mode=ca.usage_mode,
            revocation_configuration=revocation,
        )
        # Deleting a CA would orphan every certificate in service; it also
        # bills until deleted, so keeping it is a decision the docs call out.
        for authority in (root, issuing):
            authority.apply_removal_policy(removal_policy)
            if self.crl_bucket is not None and self.crl_bucket.policy is not None:
                # Private CA checks it may write the CRL when the CA is created.
                authority.node.add_dependency(self.crl_bucket.policy)
        root_certificate = acmpca.CfnCertificate(
            self,
            "RootCertificate",
            certificate_authority_arn=root.attr_arn,
            certificate_signing_request=root.attr_certificate_signing_request,
            signing_algorithm=CA_SIGNING_ALGORITHM,
            template_arn=_template_arn(self, ROOT_CA_TEMPLATE),
            validity=acmpca.CfnCertificate.ValidityProperty(type="YEARS", value=CA_VALIDITY_YEARS),
        )
        root_activation = acmpca.CfnCertificateAuthorityActivation(
            self,
            "RootActivation",
            certificate_authority_arn=root.attr_arn,
            certificate=root_certificate.attr_certificate,
            status="ACTIVE",
        )
        issuing_certificate = acmpca.CfnCertificate(
            self,
            "IssuingCertificate",
            certificate_authority_arn=root.attr_arn,
            certificate_signing_request=issuing.attr_certificate_signing_request,
            signing_algorithm=CA_SIGNING_ALGORITHM,
            template_arn=_template_arn(self, SUBORDINATE_CA_TEMPLATE),
            validity=acmpca.CfnCertificate.ValidityProperty(type="YEARS", value=SUBORDINATE_CA_VALIDITY_YEARS),
        )
        issuing_certificate.node.add_dependency(root_activation)
        activation = acmpca.CfnCertificateAuthorityActivation(
            self,
            "Activation",
            certificate_authority_arn=issuing.attr_arn,
            certificate=issuing_certificate.attr_certificate,
            certificate_chain=root_activation.attr_complete_certificate_chain,
            status="ACTIVE",
        )
        self.root_arn = root.attr_arn
        self.arn = issuing.attr_arn
        self.activation = activation

    def _revocation(
        self, ca: CaConfig, removal_policy: RemovalPolicy
    ) -> acmpca.CfnCertificateAuthority.RevocationConfigurationProperty | None:
        if not ca.crl and not ca.ocsp:
            return None
        crl = None
        if ca.crl:
            bucket = s3.Bucket(
                self,
                "CrlBucket",
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                encryption=s3.BucketEncryption.S3_MANAGED,
                versioned=True,
                enforce_ssl=True,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                removal_policy=removal_policy,
            )
            stack = Stack.of(self)
            # The CA's ARN is not known before the CA, which needs the policy
            # in place: any CA of this account and region, through Private CA.
            cas_here = stack.format_arn(
                service="acm-pca",
                resource="certificate-authority",
                resource_name="*",
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("acm-pca.amazonaws.com")],
                    actions=list(CRL_BUCKET_ACTIONS),
                    resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
                    conditions={
                        "StringEquals": {"aws:SourceAccount": stack.account},
                        "ArnLike": {"aws:SourceArn": cas_here},
                    },
                )
            )
            NagSuppressions.add_resource_suppressions(
                bucket,
                [
                    {
                        "id": "AwsSolutions-S1",
                        "reason": "The CRL bucket only receives CRLs that Private CA writes; every write is "
                        "a CloudTrail event of the CA, and readers fetch a public list, so access logs "
                        "would record nothing worth keeping.",
                    }
                ],
            )
            accept(
                bucket,
                ["S3BucketLoggingEnabled"],
                "Only Private CA writes to the CRL bucket, each write a CloudTrail event of the CA; access "
                "logs would record nothing worth keeping.",
            )
            accept(
                bucket,
                ["S3BucketReplicationEnabled", "S3DefaultEncryptionKMS"],
                "A CRL is public by design (relying parties must fetch it) and Private CA writes a new one "
                "after every revocation and before the last expires: a replica or a KMS key would protect "
                "nothing; SSE-S3 encrypts it at rest.",
            )
            self.crl_bucket = bucket
            crl = acmpca.CfnCertificateAuthority.CrlConfigurationProperty(
                enabled=True,
                expiration_in_days=CRL_EXPIRATION_DAYS,
                s3_bucket_name=bucket.bucket_name,
                # With public access blocked the objects stay private.
                s3_object_acl="BUCKET_OWNER_FULL_CONTROL",
            )
        ocsp = acmpca.CfnCertificateAuthority.OcspConfigurationProperty(enabled=True) if ca.ocsp else None
        return acmpca.CfnCertificateAuthority.RevocationConfigurationProperty(
            crl_configuration=crl, ocsp_configuration=ocsp
        )


def _template_arn(scope: Construct, template: str) -> str:
    """A Private CA template ARN in the stack's partition.

    ``certrotor.config.template_arn`` covers the end-entity templates of a
    set's usage; the CA templates are not among them. Same shape:
    ``arn:<partition>:acm-pca:::template/<name>``.
    """
    return Stack.of(scope).format_arn(
        service="acm-pca",
        region="",
        account="",
        resource="template",
        resource_name=template,
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )
