"""EcsServices against a recording client: DescribeServices in chunks of
ten per cluster, what counts as missing, and UpdateService's answer."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from certrotor.aws.ecs import EcsServices
from certrotor.config import ServiceRef
from certrotor.errors import AwsError, NotFoundError


class Client:
    def __init__(self, active: set[str], answer_services: bool = True) -> None:
        self.active = active
        self.answer_services = answer_services
        self.described: list[tuple[str, list[str]]] = []
        self.updated: list[dict[str, Any]] = []
        self.update_answer: dict[str, Any] = {
            "service": {
                "status": "ACTIVE",
                "deployments": [{"id": "ecs-svc/old", "status": "ACTIVE"}, {"id": "ecs-svc/new", "status": "PRIMARY"}],
            }
        }

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        self.described.append((cluster, list(services)))
        if len(services) > 10:
            raise ClientError(
                {"Error": {"Code": "InvalidParameterException", "Message": "10 at most"}}, "DescribeServices"
            )
        if not self.answer_services:
            return {"failures": []}
        return {
            "services": [
                {"serviceName": s, "status": "ACTIVE" if f"{cluster}/{s}" in self.active else "DRAINING"}
                for s in services
            ]
        }

    def update_service(self, **kwargs: Any) -> dict[str, Any]:
        self.updated.append(kwargs)
        return self.update_answer


def test_missing_services_are_found_in_chunks_of_ten_per_cluster() -> None:
    names = [f"s{i:02d}" for i in range(21)]
    refs = [ServiceRef("apps", n) for n in names] + [ServiceRef("jobs", "batch")]
    active = {f"apps/{n}" for n in names if n not in ("s00", "s10", "s20")} | {"jobs/batch"}
    client = Client(active)
    assert EcsServices(client).missing(refs) == ["apps/s00", "apps/s10", "apps/s20"]
    assert client.described == [("apps", names[:10]), ("apps", names[10:20]), ("apps", names[20:]), ("jobs", ["batch"])]


def test_an_answer_listing_no_services_means_all_are_missing() -> None:
    client = Client(set(), answer_services=False)
    assert EcsServices(client).missing([ServiceRef("apps", "web")]) == ["apps/web"]


def test_a_failed_describe_names_the_cluster() -> None:
    class Refusing(Client):
        def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ClusterNotFoundException", "Message": "no"}}, "DescribeServices")

    with pytest.raises(NotFoundError) as failed:
        EcsServices(Refusing(set())).missing([ServiceRef("apps", "web")])
    assert str(failed.value) == "DescribeServices apps: not found (ClusterNotFoundException)"


def test_a_redeploy_forces_a_new_deployment_and_returns_the_primary_one() -> None:
    client = Client(set())
    assert EcsServices(client).redeploy("apps", "web") == "ecs-svc/new"
    assert client.updated == [{"cluster": "apps", "service": "web", "forceNewDeployment": True}]
    client.update_answer = {"service": {"status": "ACTIVE"}}
    assert EcsServices(client).redeploy("apps", "web") == ""


def test_a_redeploy_of_a_service_that_is_not_active_is_refused() -> None:
    client = Client(set())
    client.update_answer = {"service": {"status": "DRAINING", "deployments": []}}
    with pytest.raises(NotFoundError) as refused:
        EcsServices(client).redeploy("apps", "web")
    assert str(refused.value) == "UpdateService apps/web: service is DRAINING"


def test_a_failed_redeploy_names_the_service() -> None:
    class Refusing(Client):
        def update_service(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "UpdateService")

    with pytest.raises(AwsError) as failed:
        EcsServices(Refusing(set())).redeploy("apps", "web")
    assert str(failed.value) == "UpdateService apps/web: AccessDeniedException"
