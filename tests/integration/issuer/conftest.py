"""Fixtures for the issuer: an environment whose config has issuer policies,
the loopback gateway in front of the real handler, and signed clients that
act as different task roles."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from certrotor.client.request import FunctionUrlClient
from certrotor.config import load_config
from certrotor.local.ca import LocalCA
from certrotor.local.emulator import ACCOUNT, Emulator
from certrotor.local.gateway import Identity, IssuerGateway
from certrotor.local.provision import DEFAULT_CONFIG, LocalEnvironment, provision

ORDERS_ROLE = "orders-task"
ORDERS_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ORDERS_ROLE}/task-1"
STRANGER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/stranger-task/task-9"
BILLING_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/billing-task/task-2"


def orders_policy(set_name: str, **overrides: Any) -> dict[str, Any]:
    policy = {
        "principal": ORDERS_ROLE,
        "allowed_dns": ["orders.internal", "*.svc.internal"],
        "max_validity_days": 30,
        "usage": "server",
        "rate_per_minute": 1000,
        "sets": [set_name],
    }
    policy.update(overrides)
    return policy


@pytest.fixture
def make_issuer_env(emulator: Emulator, root_ca: LocalCA) -> Callable[..., LocalEnvironment]:
    """An environment with a uniquely named set and issuer policies.

    `policies` replaces the default (orders-task, plus billing-task by ARN
    pattern with IP addresses allowed); `ca` overrides CA fields."""

    def build(policies: list[dict[str, Any]] | None = None, **ca: Any) -> LocalEnvironment:
        data = copy.deepcopy(DEFAULT_CONFIG)
        prefix = uuid.uuid4().hex[:8]
        name = f"t{prefix}/web"
        # A rotator of its own (its trust bundle lists only this test's CA)
        data["service_name"] = f"t{prefix}"
        data["sets"][0]["name"] = name
        data["sets"][0]["services"] = [{"cluster": f"c{prefix}", "service": "web"}]
        data["ca"].update(ca)
        data["issuer_policies"] = policies or [
            orders_policy(name),
            {
                "principal": f"arn:aws:iam::{ACCOUNT}:role/billing-*",
                "allowed_dns": ["billing.internal"],
                "allowed_ips": ["10.0.0.0/8"],
                "max_validity_days": 7,
            },
        ]
        return provision(emulator, load_config(data), root_ca)

    return build


@pytest.fixture
def issuer_env(make_issuer_env: Callable[..., LocalEnvironment]) -> LocalEnvironment:
    return make_issuer_env()


IDENTITIES = {
    "AKIAORDERS": Identity("orders-secret", ORDERS_ARN),
    "AKIASTRANGER": Identity("stranger-secret", STRANGER_ARN),
    "AKIABILLING": Identity("billing-secret", BILLING_ARN),
}


@pytest.fixture
def gateway(issuer_env: LocalEnvironment) -> Iterator[IssuerGateway]:
    with IssuerGateway(issuer_env, identities=IDENTITIES) as running:
        yield running


@pytest.fixture
def client_as(gateway: IssuerGateway) -> Callable[[str], FunctionUrlClient]:
    """A signed client for one of IDENTITIES' access keys."""

    def build(access_key: str = "AKIAORDERS", secret_key: str | None = None) -> FunctionUrlClient:
        secret = secret_key or IDENTITIES[access_key].secret_key
        return FunctionUrlClient(gateway.url, Credentials(access_key, secret), region="us-east-1")

    return build


@pytest.fixture
def orders(client_as: Callable[[str], FunctionUrlClient]) -> FunctionUrlClient:
    return client_as("AKIAORDERS")
