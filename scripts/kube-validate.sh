#!/usr/bin/env bash
# kube-validate.sh (`make kube-validate`, part of `make check`): the
# Kubernetes manifests (deploy/kubernetes/) against the API schemas of a
# current Kubernetes, offline, strictly (unknown fields are errors), with
# kubernetes-validate from PyPI (pinned, in a virtualenv of its own).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=1.37.0
K8S=${KUBE_VALIDATE_K8S:-1.30.0}
venv=$ROOT/target/kubernetes-validate-$VERSION
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "kubernetes-validate==$VERSION"
fi
exec "$venv/bin/kubernetes-validate" --strict --quiet -k "$K8S" "$ROOT"/deploy/kubernetes/*.yaml "$ROOT"/deploy/podman/*.yaml
