"""What each rendered workload promises: its config validates, it runs locked down, it is
probed natively over gRPC, drains within its grace period and is sized and budgeted."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
import yaml
from lanesight.common import cli, registry
from lanesight.common.config import LanesightConfig, load_config

from tests.k8s.conftest import OVERLAYS
from tests.k8s.manifests import (
    container_env,
    find,
    lanesight_containers,
    mounted_config,
    one,
    pod_spec,
    workloads,
)

CONFIG_PATH = "/etc/lanesight/config/lanesight.toml"
LANE_NAMESPACE = "lanesight-lane"


def validate_with_cli(text: str, env: dict[str, str], tmp_path: Path, monkeypatch, capsys):
    """Run `lanesight validate-config` on the config as the container would see it."""
    path = tmp_path / "lanesight.toml"
    path.write_text(text)
    for name in [n for n in os.environ if n.startswith("LANESIGHT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Offline: the certificate and token files exist only in the pod's mounted secrets.
    code = cli.main(["validate-config", "--offline", str(path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return load_config(path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configs_validate_and_match_the_pod(rendered, overlay, tmp_path, monkeypatch, capsys):
    docs = rendered[overlay]
    seen = set()
    for workload in workloads(docs):
        spec = pod_spec(workload)
        for container in lanesight_containers(workload):
            service = container["args"][1]
            assert container["args"] == ["serve", service, "--config", CONFIG_PATH]
            text = mounted_config(docs, workload, container, CONFIG_PATH)
            env = container_env(docs, workload, container)
            folder = tmp_path / workload["metadata"]["name"]
            folder.mkdir()
            config: LanesightConfig = validate_with_cli(text, env, folder, monkeypatch, capsys)
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert config.listen_port(service) == ports["grpc"]
            health_port = config.tls.plaintext_health_port
            if config.tls.mode != "plaintext":
                assert health_port is not None, "kubelet probes cannot use TLS"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == (health_port or ports["grpc"])
            # Ready once its API serves; the console (no lanesight.v1 API): overall health.
            assert container["readinessProbe"]["grpc"].get("service", "") == (
                registry.service(service).grpc_service
            )
            pre_stop_s = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
            assert spec["terminationGracePeriodSeconds"] >= pre_stop_s + config.server.grace_s + 5
            assert config.telemetry.exporter == "otlp"
            assert config.telemetry.otlp_endpoint == "http://otel-collector.lanesight.svc:4317"
            if overlay != "dev":
                assert config.tls.mode == "mtls" and config.auth.enabled
                assert config.tls.cert_file and config.tls.cert_file.parent == Path(
                    "/etc/lanesight/tls"
                )
            seen.add(service)
    expected = {"vision", "fusion", "reporting", "console"} | (
        {"device"} if overlay != "gpu" else set()
    )
    assert seen == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_locked_down(rendered, overlay):
    docs = rendered[overlay]
    namespace = one(docs, "Namespace", "lanesight")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in workloads(docs):
        name, ns = workload["metadata"]["name"], workload["metadata"]["namespace"]
        spec = pod_spec(workload)
        lane_agent = ns == LANE_NAMESPACE and name == "device"
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        host_paths = [v for v in spec.get("volumes", []) if "hostPath" in v]
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            host_ports = [p for p in container.get("ports", []) if "hostPort" in p]
            if lane_agent:
                # The one exception: host serial devices (see the DaemonSet's note).
                assert context.get("privileged") is True
                assert 20 in spec["securityContext"]["supplementalGroups"]  # dialout
                assert {v["hostPath"]["path"] for v in host_paths} == {
                    "/dev/lanesight",
                    "/var/lib/lanesight",
                }
                assert [p["hostPort"] for p in host_ports] == [50061]
            else:
                assert context["allowPrivilegeEscalation"] is False, name
                assert context.get("privileged", False) is False, name
                assert host_paths == [] and host_ports == [], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_sized_and_probed(rendered, overlay):
    for workload in workloads(rendered[overlay]):
        for container in pod_spec(workload)["containers"]:
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (container["name"], kind)
            assert "livenessProbe" in container and "readinessProbe" in container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_and_statefulsets_have_disruption_budgets(rendered, overlay):
    docs = rendered[overlay]
    budgets = list(find(docs, "PodDisruptionBudget"))
    for workload in workloads(docs):
        if workload["kind"] == "DaemonSet":
            continue  # drains skip DaemonSet pods; the lane agent stays on its lane
        labels = workload["spec"]["template"]["metadata"]["labels"]
        covering = [
            b
            for b in budgets
            if b["metadata"]["namespace"] == workload["metadata"]["namespace"]
            and all(labels.get(k) == v for k, v in b["spec"]["selector"]["matchLabels"].items())
        ]
        assert len(covering) == 1, workload["metadata"]["name"]
        assert covering[0]["spec"].get("maxUnavailable") == 1


def test_gpu_overlay_puts_vision_on_gpu_nodes_with_cuda(rendered, tmp_path, monkeypatch, capsys):
    docs = rendered["gpu"]
    vision = one(docs, "Deployment", "vision", "lanesight")
    spec = pod_spec(vision)
    [container] = spec["containers"]
    assert container["image"].endswith("-gpu")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    config_text = mounted_config(docs, vision, container, CONFIG_PATH)
    providers = tomllib.loads(config_text)["vision"]["providers"]
    assert providers[0] == "CUDAExecutionProvider" and providers[-1] == "CPUExecutionProvider"
    hpa = one(docs, "HorizontalPodAutoscaler", "vision", "lanesight")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "vision",
    }
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert one(docs, "StatefulSet", "fusion", "lanesight")["spec"]["replicas"] == 3
    assert not list(find(docs, "DaemonSet"))
    # The CPU variant (base, store-edge) asks for no GPU and runs the CPU image.
    cpu = one(rendered["store-edge"], "Deployment", "vision", "lanesight")
    cpu_container = pod_spec(cpu)["containers"][0]
    assert "nvidia.com/gpu" not in cpu_container["resources"]["limits"]
    assert not cpu_container["image"].endswith("-gpu")
    assert "nodeSelector" not in pod_spec(cpu)


def test_store_edge_runs_lane_agents_on_lane_nodes(rendered):
    docs = rendered["store-edge"]
    device = one(docs, "DaemonSet", "device", LANE_NAMESPACE)
    spec = pod_spec(device)
    assert spec["nodeSelector"] == {"lanesight.io/lane": "true"}
    assert spec["containers"][0]["workingDir"] == "/var/lib/lanesight"
    reporting = one(docs, "StatefulSet", "reporting", "lanesight")
    assert reporting["spec"]["replicas"] == 1
    [claim] = reporting["spec"]["volumeClaimTemplates"]
    mounts = {
        m["name"]: m["mountPath"] for m in pod_spec(reporting)["containers"][0]["volumeMounts"]
    }
    assert mounts[claim["metadata"]["name"]] == "/var/lib/lanesight"
    fusion = one(docs, "StatefulSet", "fusion", "lanesight")
    assert fusion["spec"]["serviceName"] == "fusion-headless"
    headless = one(docs, "Service", "fusion-headless", "lanesight")
    assert headless["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_collector_receives_otlp_from_every_service(rendered, overlay):
    docs = rendered[overlay]
    collector = one(docs, "Deployment", "otel-collector", "lanesight")
    container = pod_spec(collector)["containers"][0]
    config = yaml.safe_load(
        mounted_config(docs, collector, container, "/etc/otelcol/collector.yaml")
    )
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    service = config["service"]
    for name, pipeline in service["pipelines"].items():
        assert "otlp" in pipeline["receivers"], name
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{name}: {kind} {component} is not defined"
    for extension in service.get("extensions", []):
        assert extension in config["extensions"]
    ports = {
        p["port"] for p in one(docs, "Service", "otel-collector", "lanesight")["spec"]["ports"]
    }
    assert {4317, 4318} <= ports
