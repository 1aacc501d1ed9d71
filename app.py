#!/usr/bin/env python3
"""CDK entry point: configuration from context -> CertrotorStack, checked by cdk-nag's
AWS Solutions, HIPAA Security and NIST 800-53 rev 5 packs (an unsuppressed
finding fails the synth).

``cdk synth`` / ``cdk deploy`` run this with cdk.json's context; ``python
app.py`` reads cdk.json itself and writes the cloud assembly to cdk.out/.
Context keys (cdk.json or ``-c key=value``):
- ``certrotor``: the configuration object (see docs/DEPLOY.md);
- ``certrotor_config_file``: a JSON file with the configuration instead;
- ``certrotor:skip_bundling``: true to skip pip bundling (not deployable);
- ``certrotor:architecture``: arm64 (default) or x86_64;
- ``certrotor:stack_name``: the stack name (default Certrotor);
- ``certrotor:allow_issuer_principal_patterns``: true to allow issuer
  principals with wildcards (they match roles created later).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects, Environment

from certrotor.errors import ConfigError
from certrotor_cdk.app_config import config_from_context, context_flag
from certrotor_cdk.compliance import compliance_packs
from certrotor_cdk.constants import (
    ARCHITECTURE_CONTEXT_KEY,
    CONFIG_CONTEXT_KEY,
    CONFIG_FILE_CONTEXT_KEY,
    DEFAULT_STACK_NAME,
    ISSUER_PATTERNS_CONTEXT_KEY,
    SKIP_BUNDLING_CONTEXT_KEY,
    STACK_NAME_CONTEXT_KEY,
)
from certrotor_cdk.stack import CertrotorStack

CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, CertrotorStack]:
    """The app with its one stack; configuration errors raise before any synth.

    Without ``context``, the cdk CLI's context is used, or cdk.json's
    when run as ``python app.py``.
    """
    # The cdk CLI passes context and the output directory through the
    # environment; on our own we read cdk.json and write to cdk.out.
    under_cli = "CDK_OUTDIR" in os.environ
    if context is None and not under_cli:
        context = _cdk_json_context()
    app = App(
        context=dict(context) if context is not None else None,
        outdir=outdir or (None if under_cli else "cdk.out"),
    )
    node = app.node
    config = config_from_context(
        {key: node.try_get_context(key) for key in (CONFIG_CONTEXT_KEY, CONFIG_FILE_CONTEXT_KEY)}
    )
    stack = CertrotorStack(
        app,
        node.try_get_context(STACK_NAME_CONTEXT_KEY) or DEFAULT_STACK_NAME,
        config=config,
        skip_bundling=context_flag(node.try_get_context(SKIP_BUNDLING_CONTEXT_KEY), SKIP_BUNDLING_CONTEXT_KEY),
        architecture=node.try_get_context(ARCHITECTURE_CONTEXT_KEY) or "arm64",
        allow_issuer_principal_patterns=context_flag(node.try_get_context(ISSUER_PATTERNS_CONTEXT_KEY)),
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    for pack in compliance_packs(verbose=True):
        Aspects.of(app).add(pack)
    return app, stack


def _cdk_json_context() -> dict[str, Any]:
    if not CDK_JSON.exists():
        return {}
    context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return dict(context)


def main() -> int:
    """Synthesize; a configuration error is one line naming the field, exit 2."""
    try:
        build_app()[0].synth()
    except ConfigError as exc:
        print(f"certrotor: configuration error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
