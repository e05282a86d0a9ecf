#!/usr/bin/env bash
# The deployment files in deploy/, checked without a cluster or a container runtime:
# 1. every Kubernetes manifest against the Kubernetes API schemas, strictly (unknown fields are
#    errors), with kubernetes-validate from PyPI, installed once into a venv under target/;
# 2. the gateway.toml inside the ConfigMap, and the compose one, with
#    `tonic-msgpack-gateway --check-config`, and that the gateway Deployment's SIGKILL comes
#    after its preStop sleep and the gateway's grace period;
# 3. the compose file's structure (two replicas of each example service, the gateway), and
#    `docker compose config` where a docker CLI with the compose plugin is installed.
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
