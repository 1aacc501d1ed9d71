"""The Kubernetes sidecar manifests (docs/examples/kubernetes) are valid
resources for the Kubernetes versions EKS runs, with no cluster: each is
checked against the API's OpenAPI schemas in strict mode (kubernetes-validate),
and the sidecar's arguments are parsed by certrotor-fetch itself."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from certrotor.client.entrypoint import parse_args

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples" / "kubernetes"
# Native sidecars (init containers with restartPolicy: Always) need 1.29.
VERSIONS = ["1.29.0", "1.31.0", "1.33.0"]


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def resource(kind: str) -> dict[str, Any]:
    return next(doc for _, doc in documents() if doc["kind"] == kind)


def pod_spec() -> dict[str, Any]:
    return resource("Deployment")["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_the_examples_hold_a_service_account_a_deployment_and_its_config():
    assert sorted(doc["kind"] for _, doc in documents()) == ["ConfigMap", "Deployment", "ServiceAccount"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "document"), documents(), ids=lambda value: str(value)[:40])
def test_each_manifest_is_valid_in_strict_mode(name, document, version):
    kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_refuses_an_unknown_field():
    # A field Kubernetes does not define would be silently dropped by the API
    # server; strict validation must refuse it, or the test above proves nothing.
    broken = copy.deepcopy(resource("Deployment"))
    broken["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["medium "] = "Memory"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_the_key_is_on_a_memory_backed_volume():
    volume = next(v for v in pod_spec()["volumes"] if v["name"] == "certrotor")
    assert volume["emptyDir"]["medium"] == "Memory"


def test_the_sidecar_is_native_and_runs_certrotor_fetch_sidecar_with_valid_arguments():
    sidecar = pod_spec()["initContainers"][0]
    assert sidecar["restartPolicy"] == "Always"
    args = parse_args(sidecar["args"])
    assert args.watch is not None
    assert not args.watch.supervise
    assert args.watch.reload_command == ("pkill", "-HUP", "-o", "-x", "nginx")
    assert args.ca_file is not None
    # and the app waits for the key: the startup probe looks for it in --dir
    assert sidecar["startupProbe"]["exec"]["command"][-1] == str(args.directory / "key.pem")


def test_server_and_sidecar_share_the_volume_the_user_and_the_process_namespace():
    spec = pod_spec()
    sidecar, server = spec["initContainers"][0], spec["containers"][0]
    mounts = {c["name"]: {m["name"]: m for m in c["volumeMounts"]} for c in (sidecar, server)}
    assert mounts[sidecar["name"]]["certrotor"]["mountPath"] == mounts[server["name"]]["certrotor"]["mountPath"]
    assert mounts[server["name"]]["certrotor"]["readOnly"] is True
    assert spec["securityContext"]["runAsUser"] == 101
    assert spec["shareProcessNamespace"] is True
    assert "runAsUser" not in sidecar["securityContext"] and "runAsUser" not in server["securityContext"]


def test_nginx_reads_the_stable_names_the_sidecar_writes():
    args = parse_args(pod_spec()["initContainers"][0]["args"])
    config = "".join(resource("ConfigMap")["data"].values())
    assert f"ssl_certificate     {args.directory / 'fullchain.pem'};" in config
    assert f"ssl_certificate_key {args.directory / 'key.pem'};" in config


def test_the_pod_runs_as_the_service_account_that_carries_the_role():
    account = resource("ServiceAccount")
    assert pod_spec()["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
