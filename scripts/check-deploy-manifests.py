#!/usr/bin/env python3
"""Checks what schema validation cannot see in rendered Kubernetes manifests (`kubectl kustomize` output).

kubernetes-validate checks each object against the Kubernetes API schema; this script checks the
promises deploy/README.md makes about them, and the references between objects, including the custom
resources (Istio, Prometheus Operator) for which no schema is available offline:

- every pod runs non-root with a read-only root filesystem, no capabilities, seccomp RuntimeDefault,
  and has liveness and readiness probes on the ops port, resource requests and a memory limit;
- Deployments that roll do so with maxUnavailable 0 and a preStop delay;
- Services, HPAs, PDBs, NetworkPolicies, DestinationRules, VirtualServices, AuthorizationPolicies and
  ServiceMonitors point at things that exist in the same rendering.

Usage: check-deploy-manifests.py RENDERED.yaml...   (exit status 1 and one line per problem on failure)
"""

import sys

import yaml


def load(paths):
    objects = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for document in yaml.safe_load_all(handle):
                if document:
                    objects.append((path, document))
    return objects


def name_of(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def matches(selector, labels):
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def check_container(problems, where, container, *, server):
    context = container.get("securityContext", {})
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if context.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append(f"{where}: capabilities are not all dropped")
    resources = container.get("resources", {})
    if not resources.get("requests", {}).get("memory") or not resources.get("requests", {}).get("cpu"):
        problems.append(f"{where}: no cpu and memory requests")
    if not resources.get("limits", {}).get("memory"):
        problems.append(f"{where}: no memory limit")
    if not server:
        return
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") != "ops":
            problems.append(f"{where}: {probe} is not GET {path} on the ops port")
    if "sleep" not in container.get("lifecycle", {}).get("preStop", {}):
        problems.append(f"{where}: no preStop delay")


def check_workload(problems, obj):
    where = name_of(obj)
    spec = obj["spec"]
    pod = spec["template"]["spec"]
    context = pod.get("securityContext", {})
    if context.get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod does not set runAsNonRoot")
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccomp profile is not RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: the service account token is mounted")
    for container in pod.get("initContainers", []):
        check_container(problems, f"{where} init container {container['name']}", container, server=False)
    for container in pod.get("containers", []):
        check_container(problems, f"{where} container {container['name']}", container, server=True)
    strategy = spec.get("strategy", {})
    if strategy.get("type") == "RollingUpdate" and strategy.get("rollingUpdate", {}).get("maxUnavailable") != 0:
        problems.append(f"{where}: rolling update does not keep maxUnavailable at 0")
    if spec.get("replicas", 1) > 1 and not pod.get("topologySpreadConstraints"):
        problems.append(f"{where}: replicas are not spread over zones")


def check_references(problems, objects):
    by_kind = {}
    for _, obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    pods = [
        (name_of(d), d["spec"]["template"]["metadata"].get("labels", {}), d["spec"]["template"]["spec"])
        for d in by_kind.get("Deployment", [])
    ]
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    deployments = {d["metadata"]["name"] for d in by_kind.get("Deployment", [])}
    namespace = next((n["metadata"]["name"] for n in by_kind.get("Namespace", [])), None)

    def selects_a_pod(where, selector):
        if not any(matches(selector, labels) for _, labels, _ in pods):
            problems.append(f"{where}: selector {selector} matches no pod")

    for service in services.values():
        selects_a_pod(name_of(service), service["spec"].get("selector", {}))
        for port in service["spec"]["ports"]:
            target = port.get("targetPort")
            named = [
                p.get("name")
                for _, labels, pod in pods
                if matches(service["spec"].get("selector", {}), labels)
                for c in pod["containers"]
                for p in c.get("ports", [])
            ]
            if isinstance(target, str) and target not in named:
                problems.append(f"{name_of(service)}: targetPort {target} is not a container port")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        selects_a_pod(name_of(pdb), pdb["spec"]["selector"]["matchLabels"])
    for policy in by_kind.get("NetworkPolicy", []):
        selects_a_pod(name_of(policy), policy["spec"]["podSelector"].get("matchLabels", {}))
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        if hpa["spec"]["scaleTargetRef"]["name"] not in deployments:
            problems.append(f"{name_of(hpa)}: scales a Deployment that does not exist")
    for ingress in by_kind.get("Ingress", []):
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                if path["backend"]["service"]["name"] not in services:
                    problems.append(f"{name_of(ingress)}: backend service does not exist")

    def service_of(host):
        short, _, rest = host.partition(".")
        if rest and namespace and not rest.startswith(f"{namespace}."):
            return None
        return services.get(short)

    for rule in by_kind.get("DestinationRule", []):
        if service_of(rule["spec"]["host"]) is None:
            problems.append(f"{name_of(rule)}: host {rule['spec']['host']} is no Service of this rendering")
    gateways = {g["metadata"]["name"] for g in by_kind.get("Gateway", [])}
    for vs in by_kind.get("VirtualService", []):
        for gateway in vs["spec"].get("gateways", []):
            if gateway != "mesh" and gateway not in gateways:
                problems.append(f"{name_of(vs)}: gateway {gateway} does not exist")
        for route in vs["spec"].get("http", []):
            if "timeout" not in route:
                problems.append(f"{name_of(vs)} route {route.get('name')}: no timeout")
            if "retries" not in route:
                problems.append(f"{name_of(vs)} route {route.get('name')}: retries not stated")
            for destination in route.get("route", []):
                target = destination["destination"]
                service = service_of(target["host"])
                if service is None:
                    problems.append(f"{name_of(vs)}: destination {target['host']} is no Service of this rendering")
                elif target.get("port", {}).get("number") not in [p["port"] for p in service["spec"]["ports"]]:
                    problems.append(f"{name_of(vs)}: destination port is not a port of {target['host']}")
    for policy in by_kind.get("AuthorizationPolicy", []) + by_kind.get("PeerAuthentication", []):
        selector = policy["spec"].get("selector", {}).get("matchLabels")
        if selector is not None:
            selects_a_pod(name_of(policy), selector)
    for monitor in by_kind.get("ServiceMonitor", []):
        selector = monitor["spec"]["selector"]["matchLabels"]
        ports = {e["port"] for e in monitor["spec"]["endpoints"]}
        selected = [s for s in services.values() if matches(selector, s["metadata"].get("labels", {}))]
        if services and not selected:
            problems.append(f"{name_of(monitor)}: selector {selector} matches no Service")
        for service in selected:
            if not ports <= {p["name"] for p in service["spec"]["ports"]}:
                problems.append(f"{name_of(monitor)}: {name_of(service)} has no port named {sorted(ports)}")


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    problems = []
    objects = load(paths)
    for _, obj in objects:
        if obj["kind"] == "Deployment":
            check_workload(problems, obj)
    check_references(problems, objects)
    for problem in problems:
        print(f"manifests: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
