"""The Private CA that issues every certificate of a deployment.

Referenced by ARN (the usual case: a CA hierarchy owned elsewhere), or
created by the stack as a self-signed root that the stack also activates,
in general-purpose or short-lived-certificate usage mode.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_acmpca as acmpca
from constructs import Construct

from certrotor.config import CaConfig
from certrotor_cdk.constants import (
    CA_KEY_ALGORITHM,
    CA_SIGNING_ALGORITHM,
    CA_VALIDITY_YEARS,
    ROOT_CA_TEMPLATE,
)


class CertificateAuthority(Construct):
    """``arn`` is the CA to issue from, whichever way it came to exist.

    A created CA has no revocation list (a CRL needs an S3 bucket and an
    OCSP responder costs per query); certrotor keeps certificates short
    and rotates them instead. Reference a CA by ARN to get revocation.
    """

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
        if not ca.create:
            # load_config guarantees an ARN when the CA is not created.
            assert ca.arn is not None
            self.arn: str = ca.arn
            return
        authority = acmpca.CfnCertificateAuthority(
            self,
            "Authority",
            type="ROOT",
            key_algorithm=CA_KEY_ALGORITHM,
            signing_algorithm=CA_SIGNING_ALGORITHM,
            subject=acmpca.CfnCertificateAuthority.SubjectProperty(common_name=ca.common_name),
            usage_mode=ca.usage_mode,
        )
        # Deleting the CA would orphan every certificate in service; it also
        # bills until deleted, so keeping it is a decision the docs call out.
        authority.apply_removal_policy(removal_policy)
        certificate = acmpca.CfnCertificate(
            self,
            "RootCertificate",
            certificate_authority_arn=authority.attr_arn,
            certificate_signing_request=authority.attr_certificate_signing_request,
            signing_algorithm=CA_SIGNING_ALGORITHM,
            template_arn=_template_arn(self, ROOT_CA_TEMPLATE),
            validity=acmpca.CfnCertificate.ValidityProperty(type="YEARS", value=CA_VALIDITY_YEARS),
        )
        activation = acmpca.CfnCertificateAuthorityActivation(
            self,
            "Activation",
            certificate_authority_arn=authority.attr_arn,
            certificate=certificate.attr_certificate,
            status="ACTIVE",
        )
        self.arn = authority.attr_arn
        self.activation = activation


def _template_arn(scope: Construct, template: str) -> str:
    """A Private CA template ARN in the stack's partition.

    ``certrotor.config.template_arn`` covers the end-entity templates of a
    set's usage; the root CA template is not one of them. Same shape:
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
