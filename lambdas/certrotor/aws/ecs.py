"""ECS adapter: force a new deployment so new tasks read the new secrets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from certrotor.aws.clients import default_client
from certrotor.aws.errors import aws_call
from certrotor.config import ServiceRef
from certrotor.errors import NotFoundError


class EcsServices:
    """Redeploys ECS services; errors become certrotor errors."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or default_client("ecs")

    def redeploy(self, cluster: str, service: str) -> str:
        """UpdateService(forceNewDeployment); returns the new deployment's id."""
        with aws_call(f"UpdateService {cluster}/{service}"):
            resp = self._client.update_service(cluster=cluster, service=service, forceNewDeployment=True)
        if resp["service"].get("status") != "ACTIVE":
            # AWS answers ServiceNotActiveException; check the answer as well.
            raise NotFoundError(f"UpdateService {cluster}/{service}: service is {resp['service'].get('status')}")
        deployments = resp["service"].get("deployments", [])
        primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        return str(primary.get("id", ""))

    def missing(self, services: Sequence[ServiceRef]) -> list[str]:
        """The services (cluster/service) that do not exist or are not ACTIVE."""
        by_cluster: dict[str, list[str]] = {}
        for ref in services:
            by_cluster.setdefault(ref.cluster, []).append(ref.service)
        missing: list[str] = []
        for cluster, names in by_cluster.items():
            for start in range(0, len(names), 10):  # DescribeServices takes 10
                chunk = names[start : start + 10]
                with aws_call(f"DescribeServices {cluster}"):
                    resp = self._client.describe_services(cluster=cluster, services=chunk)
                active = {s["serviceName"] for s in resp.get("services", []) if s.get("status") == "ACTIVE"}
                missing += [f"{cluster}/{n}" for n in chunk if n not in active]
        return missing
