"""Training arguments of sentence-transformers that the config passes through, shown to
take effect in a short run of the tiny model."""

from __future__ import annotations

from pathlib import Path

import torch

import trainer.training.trainer as training
from tests.conftest import pairs_dataset, tiny_run_config
from trainer.config import RunConfig
from trainer.data import load_datasets


def test_learning_rate_mapping_sets_the_rate_of_matching_parameters(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """`learning_rate_mapping: {embeddings: 0.0}` freezes the embedding layer (rate 0)
    while the rest of the model trains at `learning_rate`."""
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file)},
            training={
                "per_device_train_batch_size": 8,
                "max_steps": 2,
                "learning_rate": 1e-3,
                "learning_rate_mapping": {r"\.embeddings\.": 0.0},
            },
        )
    )
    train_data, _ = load_datasets(config)
    model = training.load_model(config.model)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    trainer = training.build_trainer(config, train_data, output_dir=tmp_path / "out", model=model)
    trainer.train()

    rates = {group["lr"] for group in trainer.optimizer.param_groups if group["params"]}
    assert 0.0 in rates
    after = model.state_dict()
    embeddings = [name for name in before if ".embeddings." in name]
    others = [name for name in before if ".embeddings." not in name and "weight" in name]
    assert embeddings and others
    assert all(torch.equal(after[name], before[name]) for name in embeddings)
    assert any(not torch.equal(after[name], before[name]) for name in others)
