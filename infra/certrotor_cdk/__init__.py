"""certrotor's CDK constructs.

- ``RotatingCertificate`` (certrotor_cdk.rotating_certificate): one certificate set.
- ``Certrotor`` (certrotor_cdk.certrotor_construct): a whole configuration.
- ``CertrotorStack`` (certrotor_cdk.stack): certrotor's own stack, used by app.py.
"""
