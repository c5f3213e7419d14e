"""Kubernetes manifests pass `kubernetes-validate --strict` and keep the operational contract:
probes on /health and /ready, non-root with a read-only root, a grace period that covers the
preStop sleep and the drain, secrets from a Secret, and an HPA, PDB and Service that match."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, venv_tool

# A topology is a folder kustomize can apply (deploy/grafana holds a dashboard, not manifests).
TOPOLOGIES = sorted(p for p in (ROOT / "deploy").iterdir() if (p / "kustomization.yaml").exists())
MANIFESTS = sorted(p for topology in TOPOLOGIES for p in topology.glob("*.yaml"))


def load(topology: Path) -> dict[str, Any]:
    """The topology's resources by kind (one of each kind per topology)."""
    resources: dict[str, Any] = {}
    for path in sorted(topology.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in resources, f"two {doc['kind']} in {topology.name}"
            resources[doc["kind"]] = doc
    return resources


def test_both_topologies_are_there() -> None:
    assert [p.name for p in TOPOLOGIES] == ["in-process-gpu", "upstream"]


def test_kubernetes_validate_strict_passes() -> None:
    result = subprocess.run(
        [venv_tool("kubernetes-validate"), "--strict", *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for path in MANIFESTS:
        if path.name != "kustomization.yaml":  # not a cluster resource: no schema to check
            assert f"{path.relative_to(ROOT)} passed" in output, output


def test_kubernetes_validate_strict_rejects_unknown_fields(tmp_path: Path) -> None:
    broken = tmp_path / "service.yaml"
    doc = yaml.safe_load((ROOT / "deploy" / "upstream" / "service.yaml").read_text())
    doc["spec"]["portz"] = []
    broken.write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [venv_tool("kubernetes-validate"), "--strict", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout + result.stderr


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda p: p.name)
def test_kustomization_lists_every_manifest(topology: Path) -> None:
    listed = load(topology)["Kustomization"]["resources"]
    on_disk = {p.name for p in topology.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(on_disk)


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda p: p.name)
def test_deployment_contract(topology: Path) -> None:
    resources = load(topology)
    deployment = resources["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]

    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]

    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/tmp", "/var/cache/quorum"):
        assert path in mounts, f"nothing writable at {path}"
        assert {"emptyDir", "persistentVolumeClaim"} & volumes[mounts[path]].keys()

    # Grace period >= preStop sleep + drain timeout + time for the server to stop.
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    config = resources["ConfigMap"]["data"]
    drain = float(config["QUORUM_DRAIN_TIMEOUT_S"])
    assert pod["terminationGracePeriodSeconds"] >= sleep + drain + 10

    # Settings from the ConfigMap, API keys from the Secret, never inline.
    config_name = resources["ConfigMap"]["metadata"]["name"]
    assert container["envFrom"] == [{"configMapRef": {"name": config_name}}]
    keys = {e["name"]: e for e in container["env"]}["QUORUM_API_KEYS"]
    assert keys["valueFrom"]["secretKeyRef"]["name"] == resources["Secret"]["metadata"]["name"]
    assert all("value" not in e for e in container["env"])
    assert all(key.startswith("QUORUM_") for key in config)
    json.loads(resources["Secret"]["stringData"]["QUORUM_API_KEYS"])  # the env form is a JSON list


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda p: p.name)
def test_service_hpa_and_pdb_point_at_the_deployment(topology: Path) -> None:
    resources = load(topology)
    deployment = resources["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}

    service = resources["Service"]["spec"]
    assert service["selector"].items() <= pod_labels.items()
    assert {p["targetPort"] for p in service["ports"]} <= port_names
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= (
        pod_labels.items()
    )
    hpa = resources["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]


def test_gpu_topology_runs_the_engine_on_a_gpu() -> None:
    resources = load(ROOT / "deploy" / "in-process-gpu")
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "QUORUM_UPSTREAMS" not in resources["ConfigMap"]["data"]
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in pod["volumes"])


def test_upstream_topology_is_stateless_and_points_at_the_router() -> None:
    resources = load(ROOT / "deploy" / "upstream")
    container = resources["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    upstreams = json.loads(resources["ConfigMap"]["data"]["QUORUM_UPSTREAMS"])
    assert upstreams and all(u.startswith(("http://", "https://")) for u in upstreams)
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "QUORUM_MODEL" not in resources["ConfigMap"]["data"]
