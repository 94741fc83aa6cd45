"""The NetworkPolicies allow exactly the flows of the design and nothing else."""

from __future__ import annotations

import pytest

from tests.k8s.conftest import OVERLAYS
from tests.k8s.manifests import Pod, PolicyModel, pods_of

#: Stand-ins for callers outside lanesight's namespaces.
ATTENDANT_APP = Pod("attendant-app", "store-apps", (("lanesight.io/client", "attendant"),))
MANAGER_TOOL = Pod("manager-tool", "office", (("lanesight.io/client", "manager"),))
STRANGER = Pod("stranger", "default", (("app", "something-else"),))
CLIENTS = (ATTENDANT_APP, MANAGER_TOOL, STRANGER)
CLIENT_NAMESPACES = {
    pod.namespace: {"kubernetes.io/metadata.name": pod.namespace} for pod in CLIENTS
}


def expected(source: Pod, destination: Pod, port: int) -> bool:
    """The flows of the design (docs/deploy.md, "Network flows")."""
    src, dst = source.name, destination.name
    if dst == "otel-collector":
        return port == 4317 and source.namespace in ("lanesight", "lanesight-lane")
    if dst == "device":
        # The lane's POS via the hostPort (and attendants' lane commands); mTLS + tokens
        # still decide who is served. Of lanesight's own services only the attendant
        # console calls the agent (pause, resume, device health).
        return port == 50061 and (source.namespace not in ("lanesight",) or src == "console")
    if dst == "console":
        # Browsers on the store network, to the HTTPS port only; sign-in decides the rest.
        # lanesight's own pods have no egress to it.
        return port == 8443 and source.namespace not in ("lanesight", "lanesight-lane")
    allowed = {
        ("device", "vision", 50062),
        ("device", "fusion", 50063),
        ("fusion", "reporting", 50064),
        ("console", "fusion", 50063),
        ("console", "reporting", 50064),
        ("attendant-app", "fusion", 50063),
        ("manager-tool", "fusion", 50063),
        ("manager-tool", "reporting", 50064),
    }
    return (src, dst, port) in allowed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_designed_flows_are_allowed(rendered, overlay):
    docs = rendered[overlay]
    model = PolicyModel(docs, CLIENT_NAMESPACES)
    pods = pods_of(docs)
    assert {p.name for p in pods} >= {"vision", "fusion", "reporting", "otel-collector"}
    wrong = []
    for destination in pods:
        for port in destination.ports:
            for source in [*pods, *CLIENTS]:
                if source == destination:
                    continue
                allowed = model.allows(source, destination, port)
                if allowed != expected(source, destination, port):
                    verdict = "allowed" if allowed else "denied"
                    wrong.append(f"{source.name} -> {destination.name}:{port} {verdict}")
    assert wrong == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespace_denies_by_default(rendered, overlay):
    docs = rendered[overlay]
    namespaces = {
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    }
    for namespace in namespaces:
        deny = [
            d
            for d in docs
            if d["kind"] == "NetworkPolicy"
            and d["metadata"]["namespace"] == namespace
            and d["spec"]["podSelector"] == {}
            and set(d["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not d["spec"].get("ingress")
            and not d["spec"].get("egress")
        ]
        assert deny, f"no default-deny policy in {namespace}"


def test_the_model_notices_a_policy_that_lets_everything_in(rendered):
    docs = [dict(d) for d in rendered["store-edge"]]
    docs.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "oops", "namespace": "lanesight"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
        }
    )
    model = PolicyModel(docs, CLIENT_NAMESPACES)
    reporting = next(p for p in pods_of(docs) if p.name == "reporting")
    assert model.allows(ATTENDANT_APP, reporting, 50064)
    assert not PolicyModel(rendered["store-edge"], CLIENT_NAMESPACES).allows(
        ATTENDANT_APP, reporting, 50064
    )
