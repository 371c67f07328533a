"""Everything about a run that can be checked without a model, checked at once.

A mistake found after the model has loaded costs a model download; one found after
training (a gate metric no evaluator reports, a Hub secret that does not exist) costs the
whole training. `preflight` runs every check that needs no model and collects all
problems instead of stopping at the first, so one run of

    python -m trainer.preflight configs/x.yaml

(or the pipeline's first step, `steps/preflight.py`) lists everything to fix:

* the config itself: YAML, shape, every field (the parts that are invalid are left out
  and the rest is still checked);
* every data source: readable, encoding, rows, columns and types for its loss, blank
  texts, duplicates, degenerate data (`trainer.data.loading.check_data`);
* the evaluators: their own source files, the columns they read, and the metric names
  they will report; the gate metric must be one of them;
* the Hub target (repo id, and the token secret when a secret store is passed in);
* where files go: `output.dir` and the checkpoint location must be writable, and a
  checkpoint named by `checkpoints.resume` must exist;
* the training arguments, constructed as training will construct them, and the base
  model's source (a directory that exists and holds a model, an installed package, a
  cached Hub id when offline).

Side effects come in as arguments: `secret_exists` answers whether a secret exists (the
ZenML step passes one backed by its secret store; the command has none), `artifact_root`
is where checkpoints go when `checkpoints.uri` is not set.
"""

from trainer.preflight.check import preflight
from trainer.preflight.report import PreflightFailed, PreflightReport

__all__ = ["PreflightFailed", "PreflightReport", "preflight"]
