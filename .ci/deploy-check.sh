#!/usr/bin/env bash
# The deployment files in deploy/, checked without a cluster or a container runtime:
# 1. every Kubernetes manifest against the Kubernetes API schemas, strictly (unknown fields are
#    errors), with kubernetes-validate from PyPI, installed once into a venv under target/;
# 2. the gateway.toml inside the ConfigMap, and the compose one, with
#    `tonic-msgpack-gateway --check-config`, and that the gateway Deployment's SIGKILL comes
#    after its preStop sleep and the gateway's grace period;
# 3. the compose file's structure (two replicas of each example service, the gateway), and
#    `docker compose config` where a docker CLI with the compose plugin is installed;
# 4. the observability configs: the OpenTelemetry Collector's pipelines name only defined
#    components, the gateways ([tracing]) and services export to their collector, and the
#    Prometheus scrape configs pass `promtool check config`.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=1.30.0
# Wherever cargo builds (CARGO_TARGET_DIR included).
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
venv=$target_dir/deploy-check-venv
if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
    echo "installing kubernetes-validate into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi

echo "== Kubernetes manifests (kubernetes-validate --strict, Kubernetes $KUBERNETES_VERSION)"
manifests=()
for file in deploy/k8s/*.yaml; do
    # kustomize's own file is not an API object.
    [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
"$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" "${manifests[@]}"
echo "${#manifests[@]} manifest files valid"

echo "== gateway.toml of the ConfigMap and of compose (--check-config)"
cargo build --quiet --all-features -p tonic-msgpack-gateway --bin tonic-msgpack-gateway
gateway=$target_dir/debug/tonic-msgpack-gateway
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" - "$work/configmap-gateway.toml" <<'PY'
import sys
import yaml  # installed with kubernetes-validate

found = [
    doc["data"]["gateway.toml"]
    for doc in yaml.safe_load_all(open("deploy/k8s/gateway-config.yaml"))
    if doc and doc.get("kind") == "ConfigMap" and "gateway.toml" in doc.get("data", {})
]
if len(found) != 1:
    sys.exit("deploy/k8s/gateway-config.yaml: expected one ConfigMap with data.gateway.toml")
if "dns://" not in found[0]:
    sys.exit("deploy/k8s/gateway-config.yaml: the upstreams should be dns:// names")
open(sys.argv[1], "w").write(found[0])
PY
"$gateway" --check-config "$work/configmap-gateway.toml"
# The kubelet's SIGKILL must come after the preStop sleep and the gateway's own grace period.
"$venv/bin/python" - "$work/configmap-gateway.toml" <<'PY'
import re
import sys
import tomllib

import yaml

grace = tomllib.load(open(sys.argv[1], "rb")).get("grace_period", "10s")
number, unit = re.fullmatch(r"(\d+)(ms|s|m)", grace).groups()
grace_s = int(number) * {"ms": 0.001, "s": 1, "m": 60}[unit]
for doc in yaml.safe_load_all(open("deploy/k8s/gateway.yaml")):
    if not doc or doc.get("kind") != "Deployment":
        continue
    pod = doc["spec"]["template"]["spec"]
    container = pod["containers"][0]
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop = int(command[1]) if command[:1] == ["sleep"] else 0
    termination = pod.get("terminationGracePeriodSeconds", 30)
    if termination <= pre_stop + grace_s:
        sys.exit(
            f"deploy/k8s/gateway.yaml: terminationGracePeriodSeconds {termination} must exceed "
            f"preStop {pre_stop} s + grace_period {grace}"
        )
    print(f"terminationGracePeriodSeconds {termination} > preStop {pre_stop} s + grace_period {grace}")
PY
"$gateway" --check-config deploy/compose/gateway.toml

echo "== observability: OpenTelemetry Collector and Prometheus configs (compose and Kubernetes)"
"$venv/bin/python" - "$work" <<'PY'
import sys
import tomllib

import yaml

work = sys.argv[1]


def check_collector(config, where):
    """Every component a pipeline names is defined, and OTLP/gRPC listens on 4317."""
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                if component not in (config.get(kind) or {}):
                    sys.exit(f"{where}: pipeline {name} names {kind[:-1]} {component}, not defined")
    endpoint = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    if not endpoint.endswith(":4317"):
        sys.exit(f"{where}: the OTLP/gRPC receiver listens on {endpoint}, want port 4317")


def check_tracing(toml_text, want, where):
    tracing = tomllib.loads(toml_text).get("tracing", {})
    if not tracing.get("enabled") or tracing.get("otlp_endpoint") != want:
        sys.exit(f"{where}: [tracing] should be enabled with otlp_endpoint = {want!r}")


# compose
check_collector(yaml.safe_load(open("deploy/compose/otel-collector.yaml")), "deploy/compose/otel-collector.yaml")
services = yaml.safe_load(open("deploy/docker-compose.yml"))["services"]
for name in ("otel-collector", "prometheus"):
    if name not in services:
        sys.exit(f"deploy/docker-compose.yml: no {name} service")
check_tracing(open("deploy/compose/gateway.toml").read(), "http://otel-collector:4317", "deploy/compose/gateway.toml")
for name in ("greeter", "calculator"):
    env = services[name].get("environment", {})
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") != "http://otel-collector:4317":
        sys.exit(f"deploy/docker-compose.yml: {name} does not export to the collector")

# Kubernetes
docs = [doc for doc in yaml.safe_load_all(open("deploy/k8s/observability.yaml")) if doc]
maps = {doc["metadata"]["name"]: doc["data"] for doc in docs if doc["kind"] == "ConfigMap"}
check_collector(yaml.safe_load(maps["otel-collector-config"]["config.yaml"]), "otel-collector-config")
open(f"{work}/k8s-prometheus.yml", "w").write(maps["prometheus-config"]["prometheus.yml"])
collector = "http://otel-collector.tonic-msgpack.svc.cluster.local:4317"
gateway_map = next(
    doc for doc in yaml.safe_load_all(open("deploy/k8s/gateway-config.yaml"))
    if doc and doc.get("kind") == "ConfigMap"
)
check_tracing(gateway_map["data"]["gateway.toml"], collector, "deploy/k8s/gateway-config.yaml")
for doc in yaml.safe_load_all(open("deploy/k8s/example-services.yaml")):
    if doc and doc["kind"] == "Deployment":
        env = {e["name"]: e.get("value") for e in doc["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") != collector:
            sys.exit(f"deploy/k8s/example-services.yaml: {doc['metadata']['name']} does not export to the collector")
print("collector pipelines defined; gateways and services export to their collector")
PY
# Debian's prometheus package (.ci/run installs it for the metrics tests).
if command -v promtool >/dev/null; then
    promtool check config --syntax-only deploy/compose/prometheus.yml
    promtool check config --syntax-only "$work/k8s-prometheus.yml"
else
    echo "promtool not installed: the Prometheus configs' own check skipped"
fi

echo "== docker-compose.yml"
"$venv/bin/python" - <<'PY'
import sys
import yaml

compose = yaml.safe_load(open("deploy/docker-compose.yml"))
services = compose["services"]
for name in ("greeter", "calculator"):
    replicas = services[name].get("deploy", {}).get("replicas")
    if replicas != 2:
        sys.exit(f"deploy/docker-compose.yml: services.{name}.deploy.replicas is {replicas}, want 2")
if "gateway" not in services:
    sys.exit("deploy/docker-compose.yml: no gateway service")
print("compose: greeter x2, calculator x2, gateway")
PY
if docker compose version >/dev/null 2>&1; then
    docker compose -f deploy/docker-compose.yml config --quiet
    echo "docker compose config: ok"
else
    echo "docker compose not installed: its own check skipped"
fi
echo "deploy-check: ok"
