"""Reading rendered manifests: workloads, their pods, configs and a NetworkPolicy model."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
LANESIGHT_SERVICES = ("device", "vision", "fusion", "reporting")


def find(docs: list[dict], kind: str, name: str | None = None, namespace: str | None = None):
    """The documents of a kind (and name/namespace); name may carry a generator hash."""
    for doc in docs:
        meta = doc.get("metadata", {})
        if doc.get("kind") != kind:
            continue
        if namespace is not None and meta.get("namespace") != namespace:
            continue
        if name is not None and meta.get("name") != name:
            continue
        yield doc


def one(docs: list[dict], kind: str, name: str, namespace: str | None = None) -> dict:
    found = list(find(docs, kind, name, namespace))
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def workloads(docs: list[dict]) -> Iterator[dict]:
    for doc in docs:
        if doc.get("kind") in WORKLOAD_KINDS:
            yield doc


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def lanesight_containers(workload: dict) -> Iterator[dict]:
    """Containers that run the lanesight image (`lanesight serve <service>`)."""
    for container in pod_spec(workload)["containers"]:
        args = container.get("args", [])
        if args[:1] == ["serve"]:
            yield container


def configmap_data(docs: list[dict], namespace: str, name: str) -> dict[str, str]:
    return one(docs, "ConfigMap", name, namespace).get("data", {})


def mounted_config(docs: list[dict], workload: dict, container: dict, path: str) -> str:
    """The text of the file at path inside the container, from its ConfigMap volume."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            volume = volumes[mount["name"]]
            assert "configMap" in volume, f"{path} is not from a ConfigMap"
            data = configmap_data(
                docs, workload["metadata"]["namespace"], volume["configMap"]["name"]
            )
            return data[path[len(prefix) :]]
    raise AssertionError(f"nothing mounted at {path}")


def container_env(docs: list[dict], workload: dict, container: dict) -> dict[str, str]:
    """The container's environment with ConfigMap references resolved; fieldRefs get a
    stand-in value (spec.nodeName -> "lane-07")."""
    namespace = workload["metadata"]["namespace"]
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[item["name"]] = configmap_data(docs, namespace, ref["name"])[ref["key"]]
        elif "fieldRef" in source:
            env[item["name"]] = {"spec.nodeName": "lane-07"}.get(
                source["fieldRef"]["fieldPath"], "stand-in"
            )
        else:
            raise AssertionError(f"unsupported env source {source}")
    return env


# --- a model of NetworkPolicy semantics, enough to check the allowed flows ---------------


@dataclass(frozen=True)
class Pod:
    """A pod (or a stand-in client) by name, namespace and labels."""

    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[int, ...] = field(default=())

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


class PolicyModel:
    """Decides whether a pod-to-pod connection is allowed by the rendered policies."""

    def __init__(self, docs: list[dict], extra_namespaces: dict[str, dict[str, str]]) -> None:
        self.policies = list(find(docs, "NetworkPolicy"))
        self.namespace_labels = dict(extra_namespaces)
        for namespace in find(docs, "Namespace"):
            name = namespace["metadata"]["name"]
            labels = dict(namespace["metadata"].get("labels", {}))
            labels["kubernetes.io/metadata.name"] = name
            self.namespace_labels[name] = labels

    def _peer_matches(self, peer: dict, policy_namespace: str, other: Pod) -> bool:
        if "ipBlock" in peer:
            # Pod IPs are unknown here: only an all-addresses block surely covers them.
            network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
            return network.prefixlen == 0
        ns_selector = peer.get("namespaceSelector")
        if ns_selector is None:
            ns_ok = other.namespace == policy_namespace
        else:
            ns_ok = matches(ns_selector, self.namespace_labels.get(other.namespace, {}))
        return ns_ok and matches(peer.get("podSelector"), other.label_map)

    def _allowed(self, direction: str, subject: Pod, other: Pod, port: int) -> bool:
        key = "ingress" if direction == "Ingress" else "egress"
        peers_key = "from" if direction == "Ingress" else "to"
        selecting = [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == subject.namespace
            and direction in p["spec"].get("policyTypes", ["Ingress"])
            and matches(p["spec"]["podSelector"], subject.label_map)
        ]
        if not selecting:
            return True
        for policy in selecting:
            for rule in policy["spec"].get(key, []):
                ports = rule.get("ports")
                if ports and not any(p.get("port") == port for p in ports):
                    continue
                peers = rule.get(peers_key)
                if not peers or any(
                    self._peer_matches(peer, policy["metadata"]["namespace"], other)
                    for peer in peers
                ):
                    return True
        return False

    def allows(self, source: Pod, destination: Pod, port: int) -> bool:
        """Both the source's egress and the destination's ingress must allow the flow."""
        return self._allowed("Egress", source, destination, port) and self._allowed(
            "Ingress", destination, source, port
        )


def pods_of(docs: list[dict]) -> list[Pod]:
    pods = []
    for workload in workloads(docs):
        template = workload["spec"]["template"]
        ports = tuple(
            port["containerPort"]
            for container in template["spec"]["containers"]
            for port in container.get("ports", [])
        )
        pods.append(
            Pod(
                workload["metadata"]["name"],
                workload["metadata"]["namespace"],
                tuple(sorted(template["metadata"]["labels"].items())),
                ports,
            )
        )
    return pods


def nested(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node
