"""deploy/overlays/upstream-vllm-router: topology (b) as one piece (Quorum's gateway, vllm-router,
vLLM replicas), checked with ``kubernetes-validate --strict`` file by file and after rendering
with kustomize. The renderer is ``kubectl kustomize`` (kustomize built into kubectl): no package
on PyPI renders kustomizations (they generate manifests, or download the kustomize binary)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, venv_tool

OVERLAY = ROOT / "deploy" / "overlays" / "upstream-vllm-router"


def validate_strict(*paths: Path) -> str:
    """kubernetes-validate --strict on the files; its output, after asserting it passed."""
    result = subprocess.run(
        [venv_tool("kubernetes-validate"), "--strict", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_overlay_manifests_pass_strict_validation() -> None:
    manifests = sorted(p for p in OVERLAY.glob("*.yaml") if p.name != "kustomization.yaml")
    output = validate_strict(*manifests)
    for path in manifests:
        assert f"{path.relative_to(ROOT)} passed" in output, output


def test_overlay_lists_every_manifest_and_patches_the_base() -> None:
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    on_disk = {p.name for p in OVERLAY.glob("*.yaml")} - {"kustomization.yaml"}
    patches = {p["path"] for p in kustomization["patches"]}
    assert set(kustomization["resources"]) - {"../../upstream"} | patches == on_disk
    assert (OVERLAY / "../../upstream/kustomization.yaml").resolve().is_file()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The overlay rendered by kustomize: the file and its documents."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with kustomize built in) is not installed: nothing renders here")
    result = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("kustomize") / "rendered.yaml"
    path.write_text(result.stdout)
    return path, [d for d in yaml.safe_load_all(result.stdout) if d]


def by_name(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def flag(args: list[str], name: str) -> list[str]:
    """The values after ``name`` up to the next flag."""
    start = args.index(name) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("--")), len(args))
    return args[start:end]


def test_rendered_topology_passes_strict_validation(
    rendered: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, docs = rendered
    output = validate_strict(path)
    assert output.count(" passed for resource ") == len(docs), output
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} >= {
        ("Deployment", "quorum-upstream"),
        ("Deployment", "vllm-router"),
        ("Deployment", "vllm"),
        ("Service", "vllm-router"),
        ("Role", "vllm-router"),
        ("RoleBinding", "vllm-router"),
    }
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "quorum" for d in docs)


def test_quorum_reaches_the_router_and_the_router_finds_the_replicas(
    rendered: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    config = by_name(docs, "ConfigMap", "quorum-upstream-config")["data"]
    assert yaml.safe_load(config["QUORUM_UPSTREAMS"]) == ["http://vllm-router:8000"]
    assert config["QUORUM_UPSTREAM_HEALTH_PATH"] == "/readiness"
    quorum = by_name(docs, "Deployment", "quorum-upstream")["spec"]["template"]["spec"]
    assert quorum["containers"][0]["image"] == "registry.example.com/quorum:0.1.0-gateway"

    service = by_name(docs, "Service", "vllm-router")["spec"]
    router = by_name(docs, "Deployment", "vllm-router")["spec"]["template"]
    assert service["selector"].items() <= router["metadata"]["labels"].items()
    [container] = router["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert [(p["port"], ports[p["targetPort"]]) for p in service["ports"]] == [(8000, 8000)]

    vllm = by_name(docs, "Deployment", "vllm")["spec"]["template"]
    selector = dict(s.split("=", 1) for s in flag(container["args"], "--selector"))
    assert selector.items() <= vllm["metadata"]["labels"].items(), "the router finds vLLM pods"
    [engine] = vllm["spec"]["containers"]
    assert flag(container["args"], "--service-discovery-port") == [
        str(engine["ports"][0]["containerPort"])
    ]
    assert "--enable-prefix-caching" in engine["args"]
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == "1"

    # Discovery reads pods in its own namespace, with a service account bound to a Role.
    assert router["spec"]["serviceAccountName"] == "vllm-router"
    binding = by_name(docs, "RoleBinding", "vllm-router")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vllm-router"}]
    rules = by_name(docs, "Role", binding["roleRef"]["name"])["rules"]
    assert {"list", "watch"} <= set(rules[0]["verbs"]) and rules[0]["resources"] == ["pods"]


def test_every_pod_runs_non_root_with_a_read_only_root(
    rendered: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, deployment["metadata"]["name"]
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"livenessProbe", "readinessProbe"} <= container.keys()
