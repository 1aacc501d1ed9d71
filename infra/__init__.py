"""certrotor's CDK constructs.

- ``RotatingCertificate`` (infra.rotating_certificate): one certificate set.
- ``Certrotor`` (infra.certrotor_construct): a whole configuration.
- ``CertrotorStack`` (infra.stack): certrotor's own stack, used by app.py.
"""
