#!/usr/bin/env bash
# Every stage in its own container, from the project image, as a pod runs it:
#   1. a Docker engine (Debian's docker.io, started without a bridge network if needed);
#   2. a base image made with debootstrap and the project image from k8s/Dockerfile, built
#      offline from k8s/wheels/ (filled from constraints.txt and the local CPU torch wheel);
#      each is reused while its inputs are unchanged (the tag is a hash of them);
#   3. the image's installed versions compared with constraints.txt, inside the image;
#   4. the ZenML pipeline on a local_docker stack, the image built by ZenML from the
#      `settings.docker` block of configs/finetune-k8s.yaml, each step in its own container;
#   5. the compiled Kubeflow pipeline under kfp.local's DockerRunner, each component in
#      its own container, `train` running two processes under torchrun (gloo);
#   every container runs as the pod's user (10001), with a read-only root filesystem
#   (scratch on tmpfs) and no network; the evaluation metrics of 4 and 5 must equal the
#   same config's in-process run on this host.
# Needs root (apt-get, dockerd, debootstrap) and the project's .venv (scripts/install.sh).
# Scratch: .containers-test/ (git-ignored). Cold (nothing built yet) and warm timings are
# in README.md, "Run the stages in containers".
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

# --- the project's Python module paths this test depends on: update them here ----------
export ST_PIPELINE_SOURCE=pipelines.finetune.finetune_pipeline  # the ZenML pipeline
export ST_KFP_MODULE=pipelines.kfp_pipeline                     # `python -m` compiles KFP
export ST_STAGES_MODULE=trainer.stages   # load_stage, train_stage + TrainingSite, evaluate_stage
export ST_CONFIG_MODULE=trainer.config   # RunConfig
export ST_PIPELINE_DEFAULTS=k8s/pipeline-defaults.yaml  # the `docker` block ZenML builds from

# --- what the containers get: the pod's security context --------------------------------
export ST_CONTAINER_USER=10001:10001
export ST_CONTAINER_TMPFS="/tmp /app"   # scratch; the root filesystem is read-only
export ST_CONTAINER_NETWORK=none

SCRATCH=$REPO/.containers-test
PY=$REPO/.venv/bin/python
HARNESS=scripts/containers_test.py
BASE_SUITE=bookworm
BASE_MIRROR=http://deb.debian.org/debian
BASE_PACKAGES=python3,python3-venv,ca-certificates
SETUPTOOLS_SPEC=setuptools==84.2.1
WHEELS=k8s/wheels
IMAGE_REPO=st-finetune

started=$SECONDS
phase() { printf '\n=== %s (%d s so far)\n' "$1" $((SECONDS - started)); }
hash_of() { sha256sum | cut -c1-16; }

if [ ! -x "$PY" ]; then
  bash scripts/install.sh
fi
# Scratch is emptied, but for the name of the image this checkout built last.
mkdir -p "$SCRATCH"
find "$SCRATCH" -mindepth 1 -maxdepth 1 ! -name last-image -exec rm -rf {} +
# Images ZenML builds for this checkout: a repository of its own, since other checkouts
# may use the same Docker engine at the same time.
export ST_ZENML_REPOSITORY=$IMAGE_REPO-zenml-$(printf '%s' "$REPO" | hash_of | cut -c1-8)

# --- 1. Docker engine ---------------------------------------------------------------------
phase "Docker engine"
if ! command -v dockerd >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  # No bridge: containers use --network none (or host). The daemon outlives this script.
  nohup dockerd --iptables=false --ip-masq=false --bridge=none \
    >/var/log/st-finetune-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker info --format 'engine {{.ServerVersion}}, storage {{.Driver}}, root {{.DockerRootDir}}'

# --- 2a. base image (debootstrap) -------------------------------------------------------
phase "base image"
BASE_RECIPE="debootstrap --variant=minbase --include=$BASE_PACKAGES $BASE_SUITE $BASE_MIRROR; docs pruned"
BASE_TAG=$IMAGE_REPO-base:$BASE_SUITE-$(printf '%s' "$BASE_RECIPE" | hash_of)
if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  echo "reusing $BASE_TAG"
else
  command -v debootstrap >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  root=$(mktemp -d /var/tmp/st-finetune-base.XXXXXX)
  t0=$SECONDS
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" "$root/fs" "$BASE_MIRROR" \
    >"$SCRATCH/debootstrap.log" 2>&1 || { tail -20 "$SCRATCH/debootstrap.log"; exit 1; }
  rm -rf "$root"/fs/var/cache/apt/archives/*.deb "$root"/fs/var/lib/apt/lists/* \
    "$root"/fs/usr/share/man/* "$root"/fs/usr/share/locale/*
  find "$root/fs/usr/share/doc" -type f ! -name copyright -delete
  tar -C "$root/fs" -c . | docker import - "$BASE_TAG" >/dev/null
  rm -rf "$root"
  echo "built $BASE_TAG in $((SECONDS - t0)) s"
fi

# --- 2b. wheels for an offline build ----------------------------------------------------
phase "wheels ($WHEELS)"
# They are fetched for the host's Python, so it must be the base image's.
host_python=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
base_python=$(docker run --rm --network none "$BASE_TAG" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$host_python" != "$base_python" ]; then
  echo "the wheels would be for Python $host_python (.venv), the base image has $base_python" >&2
  exit 1
fi
# torch: constraints.txt's version, the CPU build (this machine's local wheel folder).
TORCH_VERSION=$(grep -iE '^torch==' constraints.txt | head -1 | cut -d= -f3 | cut -d+ -f1)
TORCH_SPEC="torch==$TORCH_VERSION+cpu"
WHEELS_KEY=$(cat constraints.txt pyproject.toml k8s/image_requirements.py <(echo "$TORCH_SPEC $SETUPTOOLS_SPEC") | hash_of)
if [ -f "$WHEELS/.inputs-$WHEELS_KEY" ]; then
  echo "reusing $WHEELS ($(du -sh "$WHEELS" | cut -f1))"
else
  find "$WHEELS" -mindepth 1 ! -name README.md -delete
  grep -viE '^torch([^a-z0-9_.-]|$)' constraints.txt >"$SCRATCH/constraints-no-torch.txt"
  "$PY" k8s/image_requirements.py pyproject.toml >"$SCRATCH/requirements.txt"
  t0=$SECONDS
  # `pip wheel`: wheels as published, and built here for the few sdist-only packages.
  "$PY" -m pip wheel --quiet --wheel-dir "$WHEELS" \
    -c "$SCRATCH/constraints-no-torch.txt" "$TORCH_SPEC" "$SETUPTOOLS_SPEC" \
    -r "$SCRATCH/requirements.txt" 2> >(grep -v '^WARNING: Location' >&2)
  touch "$WHEELS/.inputs-$WHEELS_KEY"
  echo "downloaded $(ls "$WHEELS"/*.whl | wc -l) wheels ($(du -sh "$WHEELS" | cut -f1)) in $((SECONDS - t0)) s"
fi

# --- 2c. project image (k8s/Dockerfile), offline ------------------------------------------
phase "project image"
BUILD_ARGS=(
  "BASE_IMAGE=$BASE_TAG"
  "TORCH_SPEC=$TORCH_SPEC"
  "TORCH_INDEX_URL="
  "PIP_OFFLINE=1"
)
# What the image is made of: the build arguments and every file the build context holds.
IMAGE_KEY=$({
  printf '%s\n' "${BUILD_ARGS[@]}" "wheels $WHEELS_KEY"
  git ls-files -co --exclude-standard -- k8s/Dockerfile k8s/Dockerfile.dockerignore \
    constraints.txt pyproject.toml README.md trainer steps pipelines configs data \
    | grep -v -e '__pycache__' -e '\.pyc$' | LC_ALL=C sort | while read -r file; do
      [ -f "$file" ] && printf '%s %s\n' "$(sha256sum <"$file" | cut -c1-64)" "$file"
    done
} | hash_of)
IMAGE=$IMAGE_REPO:$IMAGE_KEY
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "reusing $IMAGE"
else
  t0=$SECONDS
  build_flags=()
  for arg in "${BUILD_ARGS[@]}"; do build_flags+=(--build-arg "$arg"); done
  # The classic builder (no BuildKit here); .dockerignore links to k8s/Dockerfile.dockerignore.
  DOCKER_BUILDKIT=0 docker build --network none -f k8s/Dockerfile --target full \
    "${build_flags[@]}" -t "$IMAGE" . >"$SCRATCH/docker-build.log" 2>&1 \
    || { tail -40 "$SCRATCH/docker-build.log"; exit 1; }
  echo "built $IMAGE in $((SECONDS - t0)) s"
fi
docker tag "$IMAGE" "$IMAGE_REPO:local"
# The image this checkout built before (other inputs) goes; layers still used stay.
# Other checkouts' images are left alone.
last=$(cat "$SCRATCH/last-image" 2>/dev/null || true)
if [ -n "$last" ] && [ "$last" != "$IMAGE" ]; then
  docker rmi "$last" >/dev/null 2>&1 || true
fi
echo "$IMAGE" >"$SCRATCH/last-image"
docker image inspect "$IMAGE" --format "$IMAGE ({{.Id}}): {{.Size}} bytes, user {{.Config.User}}" \
  | sed 's/sha256:\([0-9a-f]\{12\}\)[0-9a-f]*/\1/'
docker run --rm --network none --read-only --tmpfs /tmp "$IMAGE"

# --- 3. installed versions = constraints.txt (inside the image) --------------------------
phase "versions inside the image"
docker run --rm -i --network none --read-only --tmpfs /tmp \
  -e CONSTRAINTS="$(cat constraints.txt)" "$IMAGE" python - versions <"$HARNESS"

# --- the tiny run configs and their in-process runs on this host --------------------------
phase "in-process runs on this host"
export ZENML_CONFIG_PATH=$SCRATCH/zenml/config
export ZENML_LOCAL_STORES_PATH=$SCRATCH/zenml/stores
# No repository: a `.zen/` of this checkout (its active stack) stays untouched; the
# harness sets the source root to the checkout itself.
export ZENML_REPOSITORY_PATH=$SCRATCH/zenml
export ZENML_ANALYTICS_OPT_IN=false ZENML_ENABLE_RICH_TRACEBACK=false
export ZENML_AUTO_OPEN_DASHBOARD=false ZENML_LOGGING_VERBOSITY=INFO
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
ST_BUILD_ARGS=$("$PY" -c 'import json, sys; print(json.dumps(dict(a.split("=", 1) for a in sys.argv[1:])))' "${BUILD_ARGS[@]}")
export ST_BUILD_ARGS
export ST_IMAGE=$IMAGE
"$PY" "$HARNESS" configs "$SCRATCH/configs"
for run in zenml kfp; do
  "$PY" "$HARNESS" inprocess "$SCRATCH/configs/$run.yaml" "$SCRATCH/inprocess-$run.json" \
    >"$SCRATCH/inprocess-$run.log" 2>&1 \
    || { tail -40 "$SCRATCH/inprocess-$run.log"; exit 1; }
  grep '^\[in-process\]' "$SCRATCH/inprocess-$run.log"
done

# --- 4. ZenML: local_docker orchestrator, image built by ZenML ---------------------------
phase "ZenML pipeline, one container per step"
"$PY" "$HARNESS" zenml "$SCRATCH/configs/zenml.yaml" "$SCRATCH/zenml.json" \
  2>&1 | tee "$SCRATCH/zenml.log" | grep -aE '^\[zenml\]|training with|exit status' | cut -c1-300 || true
[ -s "$SCRATCH/zenml.json" ] || { echo "ZenML run failed, log: $SCRATCH/zenml.log"; exit 1; }
"$PY" "$HARNESS" compare "$SCRATCH/inprocess-zenml.json" "$SCRATCH/zenml.json" zenml

# --- 5. Kubeflow: the compiled pipeline under kfp.local's DockerRunner ---------------------
phase "KFP pipeline, one container per component, train with 2 processes"
"$PY" "$HARNESS" kfp "$SCRATCH/configs/kfp.yaml" "$IMAGE" "$SCRATCH/kfp.json" \
  2>&1 | tee "$SCRATCH/kfp.log" | grep -aE '^\[kfp\]|training with|global batch|failed' | cut -c1-300 || true
[ -s "$SCRATCH/kfp.json" ] || { echo "KFP run failed, log: $SCRATCH/kfp.log"; exit 1; }
"$PY" "$HARNESS" compare "$SCRATCH/inprocess-kfp.json" "$SCRATCH/kfp.json" kfp

phase "all container checks passed"
