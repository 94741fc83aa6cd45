"""Every overlay renders, validates offline against the Kubernetes schemas and lints clean."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from yamllint import linter
from yamllint.config import YamlLintConfig

from tests.k8s.conftest import K8S, OVERLAYS
from tests.k8s.manifests import find, one, pod_spec, workloads

#: The Kubernetes version the manifests target (schemas ship inside kubernetes-validate).
KUBERNETES_VERSION = "1.31.0"

#: Secrets the platform team creates (cert-manager, kubectl); only dev generates them.
EXTERNAL_SECRETS = {
    "lanesight-tls-vision",
    "lanesight-tls-fusion",
    "lanesight-tls-reporting",
    "lanesight-tls-device",
    "lanesight-tls-console",
    "lanesight-tokens",
    "lanesight-token-fusion",
    "lanesight-token-device",
    "lanesight-token-console",
}


def validation_errors(doc: dict) -> list[str]:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        return [f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}"]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_validates_against_the_schemas(rendered, overlay):
    docs = rendered[overlay]
    kinds = {doc["kind"] for doc in docs}
    assert {"Namespace", "StatefulSet", "Deployment", "NetworkPolicy", "ConfigMap"} <= kinds
    errors = [error for doc in docs for error in validation_errors(doc)]
    assert errors == []


def test_the_offline_validator_does_catch_mistakes(rendered):
    deployment = one(rendered["dev"], "Deployment", "vision")
    misspelt = copy.deepcopy(deployment)
    pod_spec(misspelt)["containers"][0]["imagePullPolcy"] = "Always"
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    assert validation_errors(deployment) == []
    assert validation_errors(misspelt) and validation_errors(wrong_type)


def test_yaml_sources_are_lint_clean():
    config = YamlLintConfig(file=str(K8S / ".yamllint"))
    files = sorted(
        [*K8S.rglob("*.yaml"), *K8S.rglob("*.yml"), K8S / ".yamllint"],
    )
    assert len(files) > 10
    problems = [
        f"{path.relative_to(K8S)}:{problem.line}: {problem.desc}"
        for path in files
        for problem in linter.run(path.read_text(), config, str(path))
    ]
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves_in_its_namespace(rendered, overlay):
    docs = rendered[overlay]
    generated = overlay == "dev"
    missing = []
    for workload in workloads(docs):
        namespace = workload["metadata"]["namespace"]
        spec = pod_spec(workload)
        account = spec.get("serviceAccountName")
        if account and not list(find(docs, "ServiceAccount", account, namespace)):
            missing.append(f"ServiceAccount {namespace}/{account}")
        refs = [("ConfigMap", v["configMap"]["name"]) for v in spec["volumes"] if "configMap" in v]
        refs += [("Secret", v["secret"]["secretName"]) for v in spec["volumes"] if "secret" in v]
        for container in spec["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    refs.append(("ConfigMap", ref["name"]))
        for kind, name in refs:
            if list(find(docs, kind, name, namespace)):
                continue
            if kind == "Secret" and not generated and name in EXTERNAL_SECRETS:
                continue  # created by the platform team, docs/deploy.md
            missing.append(f"{kind} {namespace}/{name} (used by {workload['metadata']['name']})")
    assert missing == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_pods_and_name_their_ports(rendered, overlay):
    docs = rendered[overlay]
    pods = [
        (w["metadata"]["namespace"], w["spec"]["template"]["metadata"]["labels"], w)
        for w in workloads(docs)
    ]
    for service in find(docs, "Service"):
        namespace = service["metadata"]["namespace"]
        selector = service["spec"]["selector"]
        targets = [
            w
            for ns, labels, w in pods
            if ns == namespace and all(labels.get(k) == v for k, v in selector.items())
        ]
        assert targets, f"Service {service['metadata']['name']} selects no pods"
        port_names = {
            p["name"] for c in pod_spec(targets[0])["containers"] for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, (service["metadata"]["name"], port)


@pytest.mark.parametrize("overlay", ["dev", "store-edge"])
def test_store_id_is_the_same_in_both_namespaces(rendered, overlay):
    docs = rendered[overlay]
    store_ids = {
        cm["metadata"]["namespace"]: cm["data"]["store_id"]
        for cm in docs
        if cm["kind"] == "ConfigMap" and cm["metadata"]["name"].startswith("lanesight-store")
    }
    assert set(store_ids) == {"lanesight", "lanesight-lane"}
    assert len(set(store_ids.values())) == 1, store_ids
