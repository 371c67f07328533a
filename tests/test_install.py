"""The pinned set installs beyond this machine: constraints.txt resolves on the public index.

This machine has a local wheel folder and pip configuration (find-links, extra indexes, a
global constraint); an ordinary machine has only PyPI. The resolution test runs pip's
resolver (`pip install --dry-run --report`) for the project and its `dev` extra under
`-c constraints.txt` with every local setting off: no pip config file, no `PIP_*`
variables, `--index-url https://pypi.org/simple`, no cache. Nothing is installed, and no
wheel is downloaded whole: pip reads each wheel's metadata (PEP 658 files where the index
has them, else HTTP range requests into the wheel, `fast-deps`); the test fails if any
download exceeds 20 MB (torch's CUDA wheel on PyPI is 527 MB). Measured here: 52-69 s,
about 100 MB received, mostly PyPI's index pages.

torch resolves to PyPI's 2.13.0 (a CUDA build on Linux x86_64), whose CUDA libraries are not
in constraints.txt: the tested build is the CPU wheel, which has none of them. Everything
else the resolver picks must be pinned, and every pin must be picked.

Skipped only when PyPI cannot be reached at all; CI reaches it.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.slow  # processes, pipelines or the network: see pyproject.toml

REPO_ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO_ROOT / "constraints.txt"
PYPI = "https://pypi.org/simple"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# torch's Linux CUDA runtime (PyPI's build), absent from the tested CPU wheel.
CUDA_ONLY = re.compile(r"^(nvidia-.+|cuda-.+|triton)$")
# Installed by scripts/install.sh before the project; nothing requires it.
INSTALLER_ONLY = {"pip"}
# A dry run downloads in full only sdists and build requirements (tens of kB to ~1 MB).
MAX_FULL_DOWNLOAD_MB = 20


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and name and version, f"constraints.txt: not a `name==version` pin: {line!r}"
        pins[canonicalize_name(name)] = version
    return pins


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _python_floor(specifier: str | None) -> tuple[int, int]:
    """The oldest Python 3 minor version a Requires-Python specifier admits."""
    spec = SpecifierSet(specifier or "")
    for minor in range(0, 40):
        if spec.contains(f"3.{minor}", prereleases=True):
            return (3, minor)
    raise AssertionError(f"no Python 3 version satisfies {specifier!r}")


def test_constraints_pin_public_versions_only():
    """No `+cpu`-style local version: such a wheel exists only in one machine's folder."""
    local = {name: version for name, version in _pins().items() if "+" in version}
    assert not local, (
        f"local-version pins in constraints.txt, not on PyPI: {local}; pin the public version "
        "(torch==2.13.0 is satisfied by 2.13.0+cpu too)"
    )


def test_python_floor_is_stated_once():
    """requires-python and ruff's target-version name the same oldest Python."""
    project = _pyproject()
    major, minor = _python_floor(project["project"]["requires-python"])
    assert project["tool"]["ruff"]["target-version"] == f"py{major}{minor}"


def _pypi_unreachable() -> str | None:
    """Why PyPI cannot be reached at all, or None when it answers (whatever it answers)."""
    context = ssl.create_default_context(cafile=str(SYSTEM_CA) if SYSTEM_CA.is_file() else None)
    try:
        urllib.request.urlopen(f"{PYPI}/pip/", timeout=20, context=context).close()
    except urllib.error.HTTPError:
        return None  # it answered; pip will say what is wrong
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            return None  # reachable, but TLS fails: pip's failure is the useful message
        return f"PyPI ({PYPI}) is not reachable: {exc.reason}"
    except OSError as exc:
        return f"PyPI ({PYPI}) is not reachable: {exc}"
    return None


@pytest.fixture(scope="module")
def public_resolution(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict | None]:
    reason = _pypi_unreachable()
    if reason:
        pytest.skip(reason)
    report = tmp_path_factory.mktemp("resolution") / "report.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--report",
        str(report),
        "--index-url",
        PYPI,
        "--no-cache-dir",
        # Metadata through HTTP range requests where the index offers no PEP 658 file.
        "--use-feature=fast-deps",
        # kfp-server-api is an sdist only: its metadata is built (setuptools, ~1 MB).
        "--prefer-binary",
        "--progress-bar",
        "off",
        "-c",
        str(CONSTRAINTS),
        f"{REPO_ROOT}[dev]",
    ]
    if SYSTEM_CA.is_file():
        command[4:4] = ["--cert", str(SYSTEM_CA)]
    result = subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    return result, json.loads(report.read_text()) if result.returncode == 0 else None


def _resolved(public_resolution) -> dict[str, dict]:
    result, report = public_resolution
    assert result.returncode == 0, (
        "the pinned set does not resolve on PyPI without this machine's local wheels:\n"
        + (result.stderr[-4000:] or result.stdout[-4000:])
    )
    return {canonicalize_name(item["metadata"]["name"]): item for item in report["install"]}


def test_pinned_set_resolves_on_public_index(public_resolution):
    resolved = _resolved(public_resolution)
    resolved.pop("st-finetune")
    pins = _pins()
    versions = {name: item["metadata"]["version"] for name, item in resolved.items()}

    unpinned = {
        name: version
        for name, version in versions.items()
        if name not in pins and not CUDA_ONLY.match(name)
    }
    assert not unpinned, f"resolved but not pinned in constraints.txt: {unpinned}"
    wrong = {
        name: (pins[name], version)
        for name, version in versions.items()
        if name in pins and Version(version) != Version(pins[name])
    }
    assert not wrong, f"resolved to other versions than pinned (pin, resolved): {wrong}"
    stale = sorted(set(pins) - set(versions) - INSTALLER_ONLY)
    assert not stale, f"pinned in constraints.txt but not needed by the project: {stale}"

    # No large wheel was fetched whole (metadata only): the dry run stays cheap.
    downloads = re.findall(
        r"Downloading (\S+) \(([\d.]+) (kB|MB|GB)\)", public_resolution[0].stdout
    )
    big = [
        f"{name} ({size} {unit})"
        for name, size, unit in downloads
        if float(size) * {"kB": 1e-3, "MB": 1.0, "GB": 1e3}[unit] > MAX_FULL_DOWNLOAD_MB
    ]
    assert not big, f"the dry run downloaded whole wheels: {big}"


def test_requires_python_is_the_floor_of_the_pinned_set(public_resolution):
    """requires-python is exactly the oldest Python every pinned release supports."""
    resolved = _resolved(public_resolution)
    resolved.pop("st-finetune")
    floors = {
        name: _python_floor(item["metadata"].get("requires_python"))
        for name, item in resolved.items()
    }
    floor = max(floors.values())
    declared = _python_floor(_pyproject()["project"]["requires-python"])
    pins = _pins()
    setting = sorted((n for n, v in floors.items() if v == floor), key=lambda n: (n not in pins, n))
    assert declared == floor, (
        f"pyproject requires-python admits {declared[0]}.{declared[1]}, the pinned set needs "
        f"{floor[0]}.{floor[1]} (set by {', '.join(setting[:8])})"
    )
