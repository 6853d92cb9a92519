"""The deployment checks of `make test` (target `deploy-checks`), over what users apply:

1. the generated files are what generate.py writes now (no drift from the services);
2. `kubectl kustomize` builds every overlay (dev, prod, and each inside Istio and Linkerd);
3. every core resource validates strictly (unknown fields refused) against the Kubernetes
   schemas of kubernetes-validate, and every Istio and Gateway API resource against the types
   generated from their CRD schemas (deploy/schemas, `crd-check`);
4. deploy/docker/compose.yaml follows the compose-spec schema;
5. policy: every workload's security settings, probes, resources, drain and disruption budget,
   no credential anywhere, and the call graph: each workload's upstream clients, read from its
   binary's `show-config` with the rendered configuration, must be exactly the callers the mesh
   policies admit (a missing edge or an extra one fails).

    python deploy/tools/check.py        (needs the debug binaries: `cargo build --bins`)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import yaml

import generate
import model
from model import GATEWAY, NAMESPACE

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.34.0"
MESH_GROUPS = ("security.istio.io", "networking.istio.io", "policy.linkerd.io", "gateway.networking.k8s.io")
failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)


def render(overlay: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"kubectl kustomize {overlay.name} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def group(doc: dict) -> str:
    return doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# --- 3. schemas ---------------------------------------------------------------------------------

def validate_core(name: str, docs: list[dict]) -> int:
    checked = 0
    for doc in docs:
        if group(doc) in MESH_GROUPS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as err:
            fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {err.message} at {list(err.path)}")
    return checked


def validate_custom(name: str, docs: list[dict]) -> str:
    """The mesh resources against their CRD schemas: `crd-check` (deploy/schemas) reads each into
    the types generated from Istio's and the Gateway API's CRDs and reports what does not fit."""
    custom = [d for d in docs if group(d) in MESH_GROUPS]
    if not custom:
        return ""
    done = subprocess.run([str(model.binary_dir() / "crd-check")], input=json.dumps(custom),
                          capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{name}: mesh resources do not fit their CRD schemas:\n{done.stderr}")
    return "; ".join(line for line in done.stdout.splitlines())


# --- 4. policy ----------------------------------------------------------------------------------

CREDENTIAL_VALUE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY|\$2[aby]\$\d\d\$|\b(hvs|s|b)\.[A-Za-z0-9]{20,}|"
    r"(password|passwd|secret_id|token|api_key)\s*[=:]\s*\S", re.IGNORECASE)
CREDENTIAL_NAME = re.compile(r"password|passwd|secret|token|api_?key|credential", re.IGNORECASE)


def strings(value, path=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from strings(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from strings(inner, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def no_credentials(name: str, docs: list[dict]) -> None:
    for doc in docs:
        where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Secret":
            fail(f"{where}: a Secret in the manifests (secrets come from Vault or provision.sh)")
        for key in doc.get("data", {}) if doc["kind"] == "ConfigMap" else ():
            if CREDENTIAL_NAME.search(key):
                fail(f"{where}: data key {key} names a credential; it belongs in Vault")
        for path, text in strings(doc):
            if CREDENTIAL_VALUE.search(text):
                fail(f"{where}: {path} looks like a credential")
        for pod in pod_specs(doc):
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                for env in container.get("env", []):
                    if CREDENTIAL_NAME.search(env["name"]) and "value" in env:
                        fail(f"{where}: env {env['name']} is given inline, not from a Secret")


def pod_specs(doc: dict) -> list[dict]:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [doc["spec"]["template"]["spec"]]
    return []


def security(name: str, docs: list[dict], workloads: dict[str, model.Workload]) -> None:
    pdbs = by_kind(docs, "PodDisruptionBudget")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    services = by_kind(docs, "Service")
    accounts = by_kind(docs, "ServiceAccount")
    for doc in docs:
        for pod in pod_specs(doc):
            where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
            context = pod.get("securityContext", {})
            if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                fail(f"{where}: seccompProfile is not RuntimeDefault")
            for container in pod.get("containers", []):
                c = container.get("securityContext", {})
                if not (c.get("runAsNonRoot", context.get("runAsNonRoot"))):
                    fail(f"{where}: {container['name']} may run as root")
                if c.get("allowPrivilegeEscalation") is not False:
                    fail(f"{where}: {container['name']} allows privilege escalation")
                if c.get("readOnlyRootFilesystem") is not True:
                    fail(f"{where}: {container['name']} has a writable root filesystem")
                if c.get("capabilities", {}).get("drop") != ["ALL"]:
                    fail(f"{where}: {container['name']} keeps capabilities")
                resources = container.get("resources", {})
                if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
                    fail(f"{where}: {container['name']} lacks cpu/memory requests or a memory limit")
                named = {p.get("name") for p in container.get("ports", [])}
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if doc["kind"] == "Deployment" and probe not in container:
                        fail(f"{where}: {container['name']} has no {probe}")
                    handler = next((v for k, v in container.get(probe, {}).items() if k in ("httpGet", "grpc", "tcpSocket")), {})
                    if isinstance(handler.get("port"), str) and handler["port"] not in named:
                        fail(f"{where}: {container['name']}'s {probe} names port {handler['port']}, which it does not have")
    for workload in workloads.values():
        deployment = by_kind(docs, "Deployment").get(workload.name)
        where = f"{name}: {workload.name}"
        if deployment is None:
            fail(f"{where}: no Deployment")
            continue
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        if spec.get("replicas", 1) < 2:
            fail(f"{where}: fewer than 2 replicas")
        if pod.get("serviceAccountName") != workload.name or workload.name not in accounts:
            fail(f"{where}: not running as its own ServiceAccount")
        if not pod.get("topologySpreadConstraints"):
            fail(f"{where}: no topology spread")
        container = pod["containers"][0]
        drain = generate.PRE_STOP_SECONDS + workload.grace_ms / 1000
        if pod.get("terminationGracePeriodSeconds", 30) <= drain:
            fail(f"{where}: terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} does not cover "
                 f"the pre-stop pause and the {workload.grace_ms} ms drain")
        if container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds") != generate.PRE_STOP_SECONDS:
            fail(f"{where}: no pre-stop pause")
        if workload.name not in pdbs:
            fail(f"{where}: no PodDisruptionBudget")
        if workload.name not in hpas:
            fail(f"{where}: no HorizontalPodAutoscaler")
        service = services.get(workload.name)
        grpc = [p for p in (service or {}).get("spec", {}).get("ports", []) if p["port"] == workload.grpc_port]
        if not grpc or grpc[0].get("appProtocol") != "grpc" or not grpc[0]["name"].startswith("grpc"):
            fail(f"{where}: its Service does not declare the gRPC port {workload.grpc_port} as grpc")


# --- 4. call graph ------------------------------------------------------------------------------

def configured_edges(name: str, docs: list[dict], workloads: dict[str, model.Workload]) -> dict[str, set[str]]:
    """Callee -> callers, from each rendered workload's configuration as its binary reads it."""
    config_maps = by_kind(docs, "ConfigMap")
    services = by_kind(docs, "Service")
    callers: dict[str, set[str]] = {w: set() for w in workloads}
    for workload in workloads:
        pod = by_kind(docs, "Deployment")[workload]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {}
        for source in container.get("envFrom", []):
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
        if workload != GATEWAY:
            env.setdefault("TASKMESH_VAULT__AUTH", "kubernetes")
        volume = next(v for v in pod["volumes"] if v["name"] == "config")
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as file:
            file.write(config_maps[volume["configMap"]["name"]]["data"]["config.toml"])
            file.flush()
            config = model.show_config(workload, Path(file.name), env)
        for key, url in model.upstream_urls(config):
            host, port = model.host_of(url)
            target = services.get(host.split(".")[0])
            if target is None or (host.count(".") and not host.startswith(f"{host.split('.')[0]}.{NAMESPACE}")):
                fail(f"{name}: {workload} calls {url} ({key}), which is no Service of the platform")
                continue
            callee = target["metadata"]["name"]
            if callee in callers and callee != workload:
                if not any(p["port"] == port for p in target["spec"]["ports"]):
                    fail(f"{name}: {workload} calls {url} ({key}), a port {callee}'s Service does not have")
                callers[callee].add(workload)
    return callers


def istio_edges(docs: list[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    prefix = f"cluster.local/ns/{NAMESPACE}/sa/"
    for policy in by_kind(docs, "AuthorizationPolicy").values():
        if group(policy) != "security.istio.io":
            continue
        callee = policy["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        callers = found.setdefault(callee, set())
        for rule in policy["spec"].get("rules", []):
            for source in rule.get("from", []):
                for principal in source["source"].get("principals", []):
                    if principal.startswith(prefix):
                        callers.add(principal[len(prefix):])
    return found


def linkerd_references(name: str, docs: list[dict]) -> None:
    """What Linkerd's kinds refer to exists (no schema for them is to be had, see docs/deploy.md):
    each Server selects pods that have its named port, each AuthorizationPolicy targets a Server
    and requires authentications that exist."""
    pods = [d["spec"]["template"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for server in by_kind(docs, "Server").values():
        selector = server["spec"]["podSelector"]["matchLabels"]
        selected = [p for p in pods if selector.items() <= p["metadata"]["labels"].items()]
        if not selected:
            fail(f"{name}: Server {server['metadata']['name']} selects no pod")
        for pod in selected:
            ports = {p.get("name") for c in pod["spec"]["containers"] for p in c.get("ports", [])}
            if server["spec"]["port"] not in ports:
                fail(f"{name}: Server {server['metadata']['name']}: its pods have no port {server['spec']['port']}")
    for policy in by_kind(docs, "AuthorizationPolicy").values():
        if group(policy) != "policy.linkerd.io":
            continue
        for ref in policy["spec"]["requiredAuthenticationRefs"]:
            if ref["name"] not in by_kind(docs, ref["kind"]):
                fail(f"{name}: AuthorizationPolicy {policy['metadata']['name']} requires a missing {ref['kind']} {ref['name']}")


def linkerd_edges(docs: list[dict]) -> dict[str, set[str]]:
    servers = by_kind(docs, "Server")
    authns = by_kind(docs, "MeshTLSAuthentication")
    found: dict[str, set[str]] = {}
    for policy in by_kind(docs, "AuthorizationPolicy").values():
        if group(policy) != "policy.linkerd.io":
            continue
        server = servers.get(policy["spec"]["targetRef"]["name"])
        if server is None:
            fail(f"linkerd AuthorizationPolicy {policy['metadata']['name']} targets no Server")
            continue
        callee = server["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        callers = found.setdefault(callee, set())
        for ref in policy["spec"]["requiredAuthenticationRefs"]:
            if ref["kind"] == "MeshTLSAuthentication":
                callers |= {i["name"] for i in authns[ref["name"]]["spec"]["identityRefs"]}
    return found


def compare_graph(name: str, configured: dict[str, set[str]], admitted: dict[str, set[str]]) -> list[str]:
    problems = []
    for callee in sorted(configured):
        missing = configured[callee] - admitted.get(callee, set())
        extra = admitted.get(callee, set()) - configured[callee]
        if callee not in admitted:
            problems.append(f"{name}: {callee} has no authorization policy")
        for caller in sorted(missing):
            problems.append(f"{name}: {caller} calls {callee}, but the policy does not admit it")
        for caller in sorted(extra):
            problems.append(f"{name}: the policy admits {caller} to {callee}, which never calls it")
    return problems


def graph_checks_can_fail() -> None:
    """The comparison itself: a dropped edge and an added one are both reported."""
    configured = {"projects": {"tasks", "gateway"}, "tasks": {"gateway"}}
    assert compare_graph("t", configured, configured) == []
    dropped = compare_graph("t", configured, {"projects": {"gateway"}, "tasks": {"gateway"}})
    assert dropped == ["t: tasks calls projects, but the policy does not admit it"], dropped
    added = compare_graph("t", configured, {"projects": {"tasks", "gateway"}, "tasks": {"gateway", "notes"}})
    assert added == ["t: the policy admits notes to tasks, which never calls it"], added
    assert compare_graph("t", configured, {"tasks": {"gateway"}}) [0] == "t: projects has no authorization policy"


def compose_file() -> None:
    """deploy/docker/compose.yaml against the compose-spec schema check-jsonschema bundles."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "deploy" / "docker" / "compose.yaml")], capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"compose.yaml does not follow the compose spec:\n{done.stdout}{done.stderr}")
    else:
        print("compose.yaml: valid against the compose-spec schema")


def main() -> int:
    graph_checks_can_fail()
    compose_file()
    found, configs = model.workloads()
    diffs = generate.stale(generate.files(found, configs))
    if diffs:
        sys.stdout.writelines(diffs)
        fail(f"{len(diffs)} generated file(s) out of date: run `make deploy-manifests`")
    workloads = {w.name: w for w in found}
    overlays = sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    for overlay in overlays:
        docs = render(overlay)
        name = overlay.name
        namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
        namespaces.discard(None)
        if namespaces != {NAMESPACE}:
            fail(f"{name}: resources in {namespaces}, the mesh identities name {NAMESPACE}")
        checked = validate_core(name, docs)
        crds = validate_custom(name, docs)
        no_credentials(name, docs)
        security(name, docs, workloads)
        configured = configured_edges(name, docs, workloads)
        meshes = []
        if any(group(d) == "security.istio.io" for d in docs):
            meshes.append(("istio", istio_edges(docs)))
        if any(group(d) == "policy.linkerd.io" for d in docs):
            linkerd_references(name, docs)
            meshes.append(("linkerd", linkerd_edges(docs)))
        for mesh, admitted in meshes:
            failures.extend(compare_graph(f"{name} ({mesh})", configured, admitted))
        edges = sum(len(c) for c in configured.values())
        custom = sum(1 for d in docs if group(d) in MESH_GROUPS)
        print(f"{name}: {len(docs)} resources, {checked} core ones valid against Kubernetes "
              f"{KUBERNETES_VERSION}, {custom} mesh resources, {edges} call-graph edges"
              + "".join(f", {mesh} policies match" for mesh, _ in meshes) + (f" ({crds})" if crds else ""))
    for message in failures:
        print(f"FAIL {message}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} deployment check(s) failed", file=sys.stderr)
        return 1
    print(json.dumps({"overlays": [o.name for o in overlays], "result": "pass"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
