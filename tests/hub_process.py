"""Run a function in a child Python process whose Hub clients talk to a `FakeHub`.

`huggingface_hub` and `datasets` read `HF_ENDPOINT` and `HF_HUB_OFFLINE` once, at import
time, and the test session imports them early with `HF_HUB_OFFLINE=1` (tests/conftest.py);
`datasets` even builds URLs from the endpoint then. A child started with the environment
set before its first import needs no patching: `HF_ENDPOINT` is the fake Hub, offline mode
is off, `HF_HOME` is a fresh folder (no cache can stand in for the Hub), Xet, telemetry
and the download counter of `datasets` (a HEAD to s3.amazonaws.com) are off, and `HTTP(S)_PROXY` is the fake Hub too, so a request for any other host is
recorded there (`FakeHub.escaped()`) instead of leaving the machine.

The child runs `python -m tests.hub_process <module:function> <args.json> <result.json>`:
it calls the function with the JSON arguments and writes its JSON-able return value. The
function's module must not import tests/conftest.py (it sets `HF_HUB_OFFLINE=1`).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.hub_server import FakeHub

REPO_ROOT = Path(__file__).resolve().parent.parent


def hub_environment(hub: FakeHub, home: Path) -> dict[str, str]:
    """This process's environment with every Hub client pointed at `hub`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "HUGGING_FACE_")) and "proxy" not in key.lower()
    }
    proxies = {name: hub.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_OFFLINE="0",
        HF_DATASETS_OFFLINE="0",
        HF_HOME=str(home),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_UPDATE_DOWNLOAD_COUNTS="0",  # else `datasets` HEADs a file on s3.amazonaws.com
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        NO_PROXY="127.0.0.1",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        **proxies,
        **{name.lower(): value for name, value in proxies.items()},
        no_proxy="127.0.0.1",
    )
    return env


def call_with_hub(
    hub: FakeHub, target: str, args: dict[str, Any], work: Path, timeout: float = 600
) -> Any:
    """`target(**args)` (`module:function`) in a child process pointed at `hub`; its
    return value. Fails with the child's output tail when it fails."""
    work.mkdir(parents=True, exist_ok=True)
    args_file, result_file = work / "args.json", work / "result.json"
    args_file.write_text(json.dumps(args))
    done = subprocess.run(
        [sys.executable, "-m", "tests.hub_process", target, str(args_file), str(result_file)],
        cwd=REPO_ROOT,
        env=hub_environment(hub, work / "hf-home"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-6000:]
        raise AssertionError(f"{target} failed in the child (rc {done.returncode}):\n{output}")
    return json.loads(result_file.read_text())


def _main(target: str, args_file: str, result_file: str) -> None:
    from huggingface_hub import constants

    assert not constants.HF_HUB_OFFLINE, "the child must start with HF_HUB_OFFLINE=0"
    module, function = target.split(":")
    result = getattr(importlib.import_module(module), function)(
        **json.loads(Path(args_file).read_text())
    )
    Path(result_file).write_text(json.dumps(result))


if __name__ == "__main__":
    _main(*sys.argv[1:])
