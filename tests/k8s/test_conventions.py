"""Operability conventions of the rendered overlays: recommended labels on everything,
fusion shards wired from one number, priorities, pinnable images, the optional
cert-manager and Prometheus Operator components, and the narrowed collector egress."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml
from lanesight.common.sharding import lane_shard
from lanesight.device.config import DeviceConfig
from lanesight.fusion.config import FusionConfig

from tests.conftest import REPO_ROOT
from tests.k8s.conftest import K8S, OVERLAYS, kubectl
from tests.k8s.manifests import (
    container_env,
    find,
    lanesight_containers,
    mounted_config,
    one,
    pod_spec,
    workloads,
)

COMMON = (
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)
NAMED = ("app.kubernetes.io/name", "app.kubernetes.io/component")
#: Objects that belong to one component carry its name and component too.
COMPONENT_KINDS = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Service",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ServiceAccount",
)
LANE_CRITICAL = {"device", "fusion", "vision"}
PRODUCTION = ("store-edge", "gpu")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_and_pod_has_the_recommended_labels(rendered, overlay):
    missing = []
    for doc in rendered[overlay]:
        labels = doc["metadata"].get("labels", {})
        wanted = COMMON + (NAMED if doc["kind"] in COMPONENT_KINDS else ())
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        missing += [f"{where}: {key}" for key in wanted if not labels.get(key)]
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            template = doc["spec"]["template"]["metadata"]["labels"]
            missing += [f"{where} pods: {key}" for key in COMMON + NAMED if key not in template]
            assert template["app.kubernetes.io/name"] == labels["app.kubernetes.io/name"]
    assert missing == []
    instances = {d["metadata"]["labels"]["app.kubernetes.io/instance"] for d in rendered[overlay]}
    assert len(instances) == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_version_label_is_the_release_the_images_carry(rendered, overlay):
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    for doc in rendered[overlay]:
        assert doc["metadata"]["labels"]["app.kubernetes.io/version"] == version
    for workload in workloads(rendered[overlay]):
        for container in lanesight_containers(workload):
            tag = container["image"].rsplit(":", 1)[-1]
            if overlay != "dev":
                assert tag.startswith(version), container["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_lane_critical_pods_have_priority(rendered, overlay):
    docs = rendered[overlay]
    classes = {d["metadata"]["name"]: d for d in find(docs, "PriorityClass")}
    critical = classes["lanesight-lane-critical"]
    assert 0 < critical["value"] < 1_000_000_000 and not critical.get("globalDefault")
    for workload in workloads(docs):
        name = workload["metadata"]["name"]
        priority = pod_spec(workload).get("priorityClassName")
        if name in LANE_CRITICAL:
            assert priority == "lanesight-lane-critical", name
        else:
            assert priority in (None, *classes), name


def _store_data(docs: list[dict], namespace: str) -> dict[str, str]:
    """ConfigMap lanesight-store of a namespace (its name carries the generator's hash)."""
    (store,) = [
        d
        for d in find(docs, "ConfigMap", namespace=namespace)
        if re.fullmatch(r"lanesight-store-[a-z0-9]+", d["metadata"]["name"])
    ]
    return store["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_fusion_shards_come_from_one_number(rendered, overlay):
    docs = rendered[overlay]
    replicas = int(_store_data(docs, "lanesight")["fusion_replicas"])
    fusion = one(docs, "StatefulSet", "fusion")
    assert fusion["spec"]["replicas"] == replicas
    (container,) = lanesight_containers(fusion)
    env = container_env(docs, fusion, container)
    assert env["LANESIGHT_FUSION__REPLICA_COUNT"] == str(replicas)
    assert "LANESIGHT_FUSION__REPLICA_INDEX" not in env  # each pod's ordinal is its index
    settings = FusionConfig(replica_count=replicas)
    pods = [f"{fusion['metadata']['name']}-{n}" for n in range(replicas)]
    assert [settings.replica(pod) for pod in pods] == list(range(replicas))
    assert len({settings.sender(settings.replica(pod)) for pod in pods}) == replicas
    agents = list(find(docs, "DaemonSet", "device"))
    if not agents:
        return
    (agent,) = agents
    (agent_container,) = lanesight_containers(agent)
    agent_env = container_env(docs, agent, agent_container)
    assert agent_env["LANESIGHT_DEVICE__FUSION_SHARDS"] == str(replicas)
    assert _store_data(docs, "lanesight-lane")["fusion_replicas"] == str(replicas)
    config = tomllib.loads(
        mounted_config(docs, agent, agent_container, "/etc/lanesight/config/lanesight.toml")
    )
    template = config["device"]["fusion_shard_address"]
    headless = one(docs, "Service", fusion["spec"]["serviceName"])
    port = headless["spec"]["ports"][0]["port"]
    assert template == f"fusion-{{shard}}.{headless['metadata']['name']}.lanesight.svc:{port}"
    device = DeviceConfig(fusion_shards=replicas, fusion_shard_address=template)
    for n in range(30):
        address = device.fusion_address("store-1", f"lane-{n}", config["peers"]["fusion"])
        owner = lane_shard("store-1", f"lane-{n}", replicas)
        assert address.startswith(f"{pods[owner]}.") or replicas == 1


def test_the_regional_pool_runs_three_shards(rendered):
    assert one(rendered["gpu"], "StatefulSet", "fusion")["spec"]["replicas"] == 3


def test_collector_egress_leaves_out_private_and_metadata_addresses(rendered):
    policy = one(rendered["store-edge"], "NetworkPolicy", "otel-collector")
    blocks = [p["ipBlock"] for rule in policy["spec"]["egress"] for p in rule.get("to", [])]
    assert blocks and all(b["cidr"] == "0.0.0.0/0" for b in blocks)
    excluded = [ipaddress.ip_network(c) for b in blocks for c in b.get("except", [])]
    for address in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1"):
        assert any(ipaddress.ip_address(address) in net for net in excluded), address


@pytest.mark.parametrize("overlay", PRODUCTION)
def test_every_production_image_can_be_pinned_by_digest(rendered, overlay, tmp_path):
    """deploy/pin_images.py covers every image the overlay runs, and the render uses the
    digests it wrote."""
    binary = kubectl()
    assert binary is not None
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    folder = tree / "overlays" / overlay
    pin = [sys.executable, str(REPO_ROOT / "deploy" / "pin_images.py"), str(folder)]
    assert subprocess.run([*pin, "--check"], capture_output=True).returncode == 1
    text = (folder / "kustomization.yaml").read_text()
    names = re.findall(r"^  - name: (\S+)$", text.split("\nimages:\n", 1)[1], re.MULTILINE)
    digests = {name: f"sha256:{n:064x}" for n, name in enumerate(names, start=1)}
    args = [f"--set={name}={digest}" for name, digest in digests.items()]
    assert subprocess.run([*pin, *args], capture_output=True).returncode == 0
    assert subprocess.run([*pin, "--check"], capture_output=True).returncode == 0
    render = subprocess.run(
        [binary, "kustomize", str(folder)], capture_output=True, text=True, check=True
    )
    images = {
        c["image"]
        for doc in yaml.safe_load_all(render.stdout)
        if doc and doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
        for c in pod_spec(doc)["containers"]
    }
    assert images and all(re.search(r"@sha256:[0-9a-f]{64}$", image) for image in images)
    assert {image.rsplit("@", 1)[1] for image in images} <= set(digests.values())


def _render_with(component: str, tmp_path) -> list[dict]:
    """store-edge plus an optional component, rendered."""
    binary = kubectl()
    assert binary is not None
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    kustomization = tree / "overlays" / "store-edge" / "kustomization.yaml"
    text = kustomization.read_text()
    text = text.replace("components:\n", f"components:\n  - ../../components/{component}\n", 1)
    kustomization.write_text(text)
    render = subprocess.run(
        [binary, "kustomize", str(kustomization.parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(render.stdout) if doc]


def test_cert_manager_component_issues_every_mounted_tls_secret(rendered, tmp_path):
    docs = _render_with("cert-manager", tmp_path)
    certificates = {
        (d["metadata"]["namespace"], d["spec"]["secretName"]): d for d in find(docs, "Certificate")
    }
    for workload in workloads(docs):
        namespace = workload["metadata"]["namespace"]
        for volume in pod_spec(workload).get("volumes", []):
            secret = volume.get("secret", {}).get("secretName", "")
            if secret.startswith("lanesight-tls-"):
                certificate = certificates[(namespace, secret)]
                assert {"server auth", "client auth"} <= set(certificate["spec"]["usages"])
                assert certificate["spec"]["issuerRef"]["kind"] == "ClusterIssuer"
    services = {d["metadata"]["name"] for d in find(docs, "Service", namespace="lanesight")}
    names = {n for c in certificates.values() for n in c["spec"].get("dnsNames", [])}
    for service in services - {"otel-collector"}:
        assert f"{service}.lanesight.svc" in names or f"*.{service}.lanesight.svc" in names
    assert "*.fusion-headless.lanesight.svc" in names  # every shard's own name
    assert len(certificates) == len(list(find(docs, "Certificate")))


def test_service_monitor_scrapes_the_collectors_prometheus_port(rendered, tmp_path):
    docs = _render_with("prometheus-operator", tmp_path)
    (monitor,) = find(docs, "ServiceMonitor")
    service = one(docs, "Service", "otel-collector", "lanesight")
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert ports[endpoint["port"]] == 8889
    for key in COMMON:
        assert monitor["metadata"]["labels"][key]


@pytest.mark.parametrize(
    "example", sorted(p.name for p in (K8S / "examples").iterdir() if p.is_dir())
)
def test_examples_carry_the_recommended_labels_too(example):
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed")
    render = subprocess.run(
        [binary, "kustomize", str(K8S / "examples" / example)],
        capture_output=True,
        text=True,
        check=True,
    )
    docs = [doc for doc in yaml.safe_load_all(render.stdout) if doc]
    missing = [
        f"{doc['kind']}/{doc['metadata']['name']}: {key}"
        for doc in docs
        for key in COMMON
        if not doc["metadata"].get("labels", {}).get(key)
    ]
    assert docs and missing == []
