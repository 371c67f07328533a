"""The evaluation report in a real browser: headless Chromium renders `report.html` at
1280 and 640 px, and nothing overflows the window or its table cell.

Needs Debian's `chromium` (`apt-get install chromium`; `scripts/test.sh` installs it where
apt-get is available); skipped with that reason where it is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from trainer.reports import render_comparison_html, render_report_page
from trainer.results import Evaluation

pytestmark = pytest.mark.slow  # starts a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)

# Recorded into the DOM after layout: the window's width, the page's scroll width, every
# element reaching past the window's right edge, and every table cell whose content is
# wider than the cell (clipped or pushed out).
MEASURE = """
<script>
const width = window.innerWidth;
const outside = [...document.body.querySelectorAll("*")]
  .filter((el) => el.getBoundingClientRect().right > width + 0.5)
  .map((el) => el.tagName + ": " + (el.textContent || "").slice(0, 40));
const cells = [...document.querySelectorAll("td, th")]
  .filter((cell) => cell.scrollWidth > cell.clientWidth + 1)
  .map((cell) => cell.textContent.slice(0, 40));
const rows = document.querySelectorAll("tbody tr").length;
const charts = document.querySelectorAll("svg[viewBox]").length;
const pre = document.createElement("pre");
pre.id = "measured";
pre.textContent = JSON.stringify({
  width, scrollWidth: document.documentElement.scrollWidth, outside, cells, rows, charts,
});
document.body.appendChild(pre);
</script>
"""


def _report() -> str:
    """A report like the quickstart's: 18 IR metrics with long names, base, fine-tuned,
    change and production columns, and 38 steps of curves with evaluation during training."""
    prefix = "stdlib-docs-ir_cosine_"
    names = [
        f"{prefix}{metric}@{k}"
        for metric in ("accuracy", "precision", "recall")
        for k in (1, 3, 5, 10)
    ] + [f"{prefix}{metric}@10" for metric in ("mrr", "ndcg", "map")]
    base = {name: 0.41 + index / 100 for index, name in enumerate(names)}
    tuned = {name: value + 0.0465 for name, value in base.items()}
    evaluation = Evaluation(
        primary_metric=f"{prefix}ndcg@10",
        base=base,
        finetuned=tuned,
        improvement={name: tuned[name] - base[name] for name in names},
        production={name: value + 0.01 for name, value in base.items()},
        production_model="version 12 of ZenML model 'stdlib-docs-minilm' (production)",
    )
    history = [
        {"step": step, "loss": 1.2 - step / 50, "learning_rate": 5e-5 * step / 38, "grad_norm": 3.0}
        for step in range(1, 39)
    ] + [{"step": step, f"eval_{prefix}ndcg@10": 0.57 + step / 1000} for step in (4, 8, 38)]
    fragment = render_comparison_html(
        evaluation, title="stdlib-docs-minilm: base vs fine-tuned", history=history
    )
    return render_report_page("stdlib-docs-minilm: base vs fine-tuned", fragment)


def _chromium(page: Path, width: int, profile: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},900",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("width", [1280, 640])
def test_report_fits_the_window_in_a_real_browser(width: int, tmp_path: Path) -> None:
    page = _report()
    assert "<script" not in page  # the report itself stays sandbox-safe
    measured_page = tmp_path / "report.html"
    measured_page.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")

    dom = _chromium(measured_page, width, tmp_path / "profile", "--dump-dom")
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, flags=re.S)
    assert found is not None, dom[-2000:]
    measured = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert measured["width"] == width
    assert measured["rows"] == 15 and measured["charts"] == 4
    assert measured["scrollWidth"] <= width, measured
    assert measured["outside"] == [], measured
    assert measured["cells"] == [], measured

    screenshot = tmp_path / f"report-{width}.png"
    _chromium(tmp_path / "report.html", width, tmp_path / "profile", f"--screenshot={screenshot}")
    assert _png_size(screenshot)[0] == width
