#!/usr/bin/env bash
# Register the ZenML stack that runs this project on Kubernetes: Kubernetes orchestrator,
# remote artifact store, container registry, image builder, plus the Hugging Face token
# as a ZenML secret. Safe to re-run: existing components are updated, not duplicated.
# The orchestrator gets the cluster-wide settings of every run from k8s/orchestrator.yaml
# (service accounts, pod failure policy, security context, ...): after editing that file,
# run this script again.
#
# Prerequisites (k8s/README.md walks through them):
#   - `zenml login <server-url>` done: a remote stack needs a deployed ZenML server;
#   - kubectl context pointing at the cluster, k8s/namespace.yaml + k8s/rbac.yaml applied;
#   - the artifact-store client installed locally (see ARTIFACT_FLAVOR below);
#   - this project installed in the Python environment that has `zenml` (pip install -e .);
#   - Docker logged in to the registry (image builder "local" builds and pushes from here).
#
# Usage (values are examples):
#   ARTIFACT_FLAVOR=gcp ARTIFACT_PATH=gs://my-bucket/zenml \
#   REGISTRY_URI=europe-docker.pkg.dev/my-project/zenml \
#   HF_TOKEN=hf_... ./k8s/setup-stack.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_NAME="${STACK_NAME:-k8s-gpu}"
KUBE_CONTEXT="${KUBE_CONTEXT:-$(kubectl config current-context)}"
NAMESPACE="${NAMESPACE:-zenml}"
# s3 | gcp | azure. Needs the matching client here and in the image (EXTRA_PACKAGES):
# s3 -> "s3fs>2022.3.0 boto3", gcp -> gcsfs, azure -> adlfs. Install those packages,
# not `zenml integration install s3|gcp|azure|kubernetes`: the integration pins
# (kubernetes<26, urllib3<2.6) conflict with kfp's and would downgrade this environment.
ARTIFACT_FLAVOR="${ARTIFACT_FLAVOR:?set ARTIFACT_FLAVOR to s3, gcp or azure}"
ARTIFACT_PATH="${ARTIFACT_PATH:?set ARTIFACT_PATH, e.g. s3://bucket/zenml}"
REGISTRY_URI="${REGISTRY_URI:?set REGISTRY_URI, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com}"
# local: docker on this machine builds and pushes; kaniko: builds inside the cluster.
IMAGE_BUILDER_FLAVOR="${IMAGE_BUILDER_FLAVOR:-local}"
HF_SECRET_NAME="${HF_SECRET_NAME:-huggingface}"
ORCHESTRATOR_FILE="${ORCHESTRATOR_FILE:-${REPO_ROOT}/k8s/orchestrator.yaml}"
command -v zenml >/dev/null || { echo "zenml not found: activate the project's environment" >&2; exit 1; }
# The interpreter next to `zenml` (the one that has ZenML and this project).
PYTHON="${PYTHON:-$(dirname "$(command -v zenml)")/python}"

# register_or_update TYPE NAME FLAVOR [--key=value ...]
register_or_update() {
  local type="$1" name="$2" flavor="$3"
  shift 3
  if zenml "$type" describe "$name" >/dev/null 2>&1; then
    zenml "$type" update "$name" "$@"
  else
    zenml "$type" register "$name" --flavor="$flavor" "$@"
  fi
}

# k8s/orchestrator.yaml as `--key=value` arguments (nested values as JSON, which the CLI
# parses into the fields), one per line; validated against ZenML's orchestrator config.
orchestrator_file="$(cd "$(dirname "${ORCHESTRATOR_FILE}")" && pwd)/$(basename "${ORCHESTRATOR_FILE}")"
orchestrator_args="$(cd "${REPO_ROOT}" && "${PYTHON}" -m pipelines.k8s_stack "${orchestrator_file}")"
mapfile -t ORCHESTRATOR_ARGS <<<"${orchestrator_args}"
register_or_update orchestrator "${STACK_NAME}-orchestrator" kubernetes \
  --kubernetes_context="${KUBE_CONTEXT}" \
  --kubernetes_namespace="${NAMESPACE}" \
  "${ORCHESTRATOR_ARGS[@]}"

register_or_update artifact-store "${STACK_NAME}-artifacts" "${ARTIFACT_FLAVOR}" \
  --path="${ARTIFACT_PATH}"

register_or_update container-registry "${STACK_NAME}-registry" default \
  --uri="${REGISTRY_URI}"

if [[ "${IMAGE_BUILDER_FLAVOR}" == "kaniko" ]]; then
  register_or_update image-builder "${STACK_NAME}-builder" kaniko \
    --kubernetes_context="${KUBE_CONTEXT}" --kubernetes_namespace="${NAMESPACE}"
else
  register_or_update image-builder "${STACK_NAME}-builder" "${IMAGE_BUILDER_FLAVOR}"
fi

if zenml stack describe "${STACK_NAME}" >/dev/null 2>&1; then
  zenml stack update "${STACK_NAME}" \
    -o "${STACK_NAME}-orchestrator" -a "${STACK_NAME}-artifacts" \
    -c "${STACK_NAME}-registry" -i "${STACK_NAME}-builder"
else
  zenml stack register "${STACK_NAME}" \
    -o "${STACK_NAME}-orchestrator" -a "${STACK_NAME}-artifacts" \
    -c "${STACK_NAME}-registry" -i "${STACK_NAME}-builder"
fi

# The Hub token: steps that reach the Hub get it as HF_TOKEN (the pipeline attaches the
# secret named by parameters.config.hub.secret_name). It is
# passed through a private temp file so it never appears in the process list.
if [[ -n "${HF_TOKEN:-}" ]]; then
  token_file="$(mktemp)"
  trap 'rm -f "${token_file}"' EXIT
  chmod 600 "${token_file}"
  printf '%s' "${HF_TOKEN}" >"${token_file}"
  if zenml secret get "${HF_SECRET_NAME}" >/dev/null 2>&1; then
    zenml secret update "${HF_SECRET_NAME}" --HF_TOKEN=@"${token_file}"
  else
    zenml secret create "${HF_SECRET_NAME}" --HF_TOKEN=@"${token_file}"
  fi
else
  echo "HF_TOKEN not set: create the secret later with" \
    "'zenml secret create ${HF_SECRET_NAME} -i' (key HF_TOKEN)." >&2
fi

zenml stack describe "${STACK_NAME}"
echo "Run: zenml pipeline run pipelines.finetune.finetune_pipeline" \
  "-c configs/finetune-k8s.yaml -s ${STACK_NAME}"
