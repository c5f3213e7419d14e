"""docker/compose.yaml: one profile per way of running Quorum, published on loopback only."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.conftest import ROOT


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    return data


def test_two_profiles_cpu_alone_and_in_front_of_vllm() -> None:
    services = compose()["services"]
    profiles = {name: service["profiles"] for name, service in services.items()}
    assert profiles == {
        "quorum-cpu": ["cpu"],
        "vllm": ["upstream"],
        "quorum-upstream": ["upstream"],
    }
    front = services["quorum-upstream"]
    assert front["command"][:2] == ["--upstream", "http://vllm:8000"]
    assert front["depends_on"]["vllm"]["condition"] == "service_healthy"


def test_only_quorum_is_published_and_only_on_loopback() -> None:
    services = compose()["services"]
    assert "ports" not in services["vllm"]
    for name in ("quorum-cpu", "quorum-upstream"):
        for port in services[name]["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_quorum_services_match_the_kubernetes_contract() -> None:
    services = compose()["services"]
    dockerfiles = {
        "quorum-cpu": "docker/Dockerfile.cpu",
        "quorum-upstream": "docker/Dockerfile.gateway",
    }
    for name, dockerfile in dockerfiles.items():
        service = services[name]
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert service["build"]["dockerfile"] == dockerfile
    assert "quorum-cache:/var/cache/quorum" in services["quorum-cpu"]["volumes"]
