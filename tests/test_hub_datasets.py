"""Hub datasets read for real, from the loopback fake Hub: a streamed Hub training dataset
(`source: {path: org/name, streaming: true}`) trains, resumes at its exact position and is
not resumed once its repo moved on; the NanoBEIR evaluator downloads its datasets and
reports its metrics, and the online preflight checks its repo. The Hub
clients run in a child process pointed at the fake (tests/hub_process.py explains why);
every request it makes must reach the fake, none any other host."""

from __future__ import annotations

import io
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import pairs_dataset, tiny_run_config
from tests.hub_process import call_with_hub
from tests.hub_server import FakeHub

STREAM_REPO = "org/stream"
NANOBEIR_REPO = "sentence-transformers/NanoBEIR-en"
"""NanoBEIREvaluator's default `dataset_id` (sentence-transformers 6): configs corpus,
queries and qrels, one split per dataset named `Nano<Name>`."""


def parquet(rows: list[dict[str, Any]], row_group_size: int = 5) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer, row_group_size=row_group_size)
    return buffer.getvalue()


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {"q": f"question {i} about topic {i % 7}", "d": f"answer {i} on {i % 5}"} for i in range(n)
    ]


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """The fake Hub hosting a 40-row pair dataset in two Parquet shards of 20 rows (split
    train) and 8 held-out rows (split test)."""
    rows = _rows(40)
    held_out = [{"q": f"held-out question {i}", "d": f"held-out answer {i}"} for i in range(8)]
    with FakeHub() as server:
        server.add_dataset(
            STREAM_REPO,
            {
                "data/train-00000-of-00002.parquet": parquet(rows[:20]),
                "data/train-00001-of-00002.parquet": parquet(rows[20:]),
                "data/test-00000-of-00001.parquet": parquet(held_out),
            },
        )
        yield server


def assert_only_the_fake_was_asked(hub: FakeHub) -> None:
    assert hub.requests, "the child made no request to the fake Hub"
    assert hub.escaped() == [], [f"{r.method} {r.host}{r.path}" for r in hub.escaped()]
    assert hub.requests_to("unknown") == [], [r.path for r in hub.requests_to("unknown")]


def _stream_config(
    tmp_path: Path, tiny_model_path: Path, revision: str | None = None, **training: Any
) -> Path:
    """A run on the streamed train split, held out the test split (read whole), scored by
    information retrieval; the leakage check cannot read a stream whole, so it warns."""
    dataset = {
        "source": {"path": STREAM_REPO, "streaming": True, "revision": revision},
        "eval_source": {"path": STREAM_REPO, "split": "test"},
        "columns": {"q": "anchor", "d": "positive"},
    }
    document = tiny_run_config(
        tiny_model_path,
        {"docs": dataset},
        training={"per_device_train_batch_size": 4, "learning_rate": 1e-3, **training},
        checkpoints={"every_n_steps": 2},
        leakage={"on_query_overlap": "warn"},
        evaluators=[{"type": "information_retrieval", "name": "held-out", "dataset": "docs"}],
    )
    path = tmp_path / f"run-{revision or 'main'}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_fake_hub_answers_reads_like_the_hub(hub: FakeHub) -> None:
    """Range reads, HEAD metadata, tree and paths-info listings and the proxy trap, without
    a client."""
    head = hub.dataset_head(STREAM_REPO)
    shard = "data/train-00000-of-00002.parquet"
    content = head.files[shard]
    url = f"{hub.url}/datasets/{STREAM_REPO}/resolve/{head.oid}/{shard}"
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as answer:
        assert answer.headers["X-Repo-Commit"] == head.oid
        assert answer.headers["X-Linked-Size"] == str(len(content))
    ranged = urllib.request.Request(url, headers={"Range": "bytes=4-9"})
    with urllib.request.urlopen(ranged) as answer:
        assert answer.status == 206 and answer.read() == content[4:10]
        assert answer.headers["Content-Range"] == f"bytes 4-9/{len(content)}"
    tree = f"{hub.url}/api/datasets/{STREAM_REPO}/tree/main/data"
    with urllib.request.urlopen(tree) as answer:
        listed = json.load(answer)
    assert [entry["path"] for entry in listed] == sorted(p for p in head.files if "/" in p)
    (entry,) = [entry for entry in listed if entry["path"] == shard]
    assert entry["lfs"] == {"oid": sha256(content).hexdigest(), "size": len(content),
                            "pointerSize": entry["lfs"]["pointerSize"]}  # fmt: skip
    form = urllib.parse.urlencode({"paths": [shard, "data", "missing"]}, doseq=True)
    paths_info = f"{hub.url}/api/datasets/{STREAM_REPO}/paths-info/main"
    with urllib.request.urlopen(urllib.request.Request(paths_info, data=form.encode())) as answer:
        found = [(entry["type"], entry["path"]) for entry in json.load(answer)]
    assert found == [("file", shard), ("directory", "data")]
    proxy = urllib.request.ProxyHandler({"http": hub.url})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(proxy).open("http://example.org/x")
    assert refused.value.code == 502
    assert [(r.host, r.path) for r in hub.escaped()] == [("example.org", "/x")]


@pytest.mark.slow
def test_load_dataset_reads_a_hub_repo_streamed_or_not(hub: FakeHub, tmp_path: Path) -> None:
    """Parquet streamed (by HTTP ranges) and downloaded, JSON lines streamed, and a
    revision pinned to a commit the branch has moved past."""
    first = hub.dataset_head(STREAM_REPO).oid
    hub.add_dataset(STREAM_REPO, {"data/train-00001-of-00002.parquet": parquet(_rows(3))})
    lines = "".join(json.dumps(row) + "\n" for row in _rows(7))
    hub.add_dataset("org/lines", {"train.jsonl": lines.encode()})
    now = _rows(20) + _rows(3)
    reads = [
        ({"path": STREAM_REPO, "split": "train", "streaming": True}, now),
        ({"path": STREAM_REPO, "split": "train", "streaming": False}, now),
        ({"path": STREAM_REPO, "split": "train", "streaming": True, "revision": first}, _rows(40)),
        ({"path": "org/lines", "split": "train", "streaming": True}, _rows(7)),
    ]
    args = {"reads": [read for read, _ in reads]}
    rows = call_with_hub(hub, "tests.hub_runs:read_rows", args, tmp_path / "child")
    assert rows == [expected for _, expected in reads]
    ranged = [r for r in hub.requests_to("resolve") if "range" in map(str.lower, r.headers)]
    assert ranged, "the stream read no file by ranges"
    assert_only_the_fake_was_asked(hub)


@pytest.mark.slow
def test_a_streamed_hub_dataset_trains_through_the_stages(
    hub: FakeHub, tiny_model_path: Path, tmp_path: Path
) -> None:
    """Preflight (which reads the stream's first rows from the Hub), the load stage's
    stand-in, the train stage opening the stream again (`max_steps` steps), and the
    evaluate stage on the held-out split, read whole from the Hub."""
    config = _stream_config(tmp_path, tiny_model_path, max_steps=3)
    args = {"config_file": str(config), "checkpoint_uri": str(tmp_path / "series")}
    result = call_with_hub(hub, "tests.hub_runs:run_stages", args, tmp_path / "child")
    assert result["preflight_problems"] == []
    assert result["stand_in_rows"] == {"docs": 40}
    assert "dataset 'docs' streams" in result["data_warnings"]["docs"][0]
    assert result["global_step"] == 3
    assert result["evaluation"]["primary_metric"] == "held-out_cosine_ndcg@10"
    assert_only_the_fake_was_asked(hub)


@pytest.mark.slow
def test_resume_of_a_hub_stream_sees_the_rows_of_an_uninterrupted_run(
    hub: FakeHub, tiny_model_path: Path, tmp_path: Path
) -> None:
    """Interrupted after 3 of 8 steps (batches of 4: the run crosses from the first shard
    into the second) and resumed in a fresh folder, the run ends with the weights of an
    uninterrupted one: it skipped exactly the rows it had trained on."""
    config = _stream_config(tmp_path, tiny_model_path, max_steps=8)
    args = {"config_file": str(config), "work": str(tmp_path / "runs"), "interrupt_at": 3}
    result = call_with_hub(hub, "tests.hub_runs:resume_a_stream", args, tmp_path / "child")
    assert result["interrupted"] and result["resumed"]
    assert 3 <= result["resumed_from"] < 8
    assert result["straight_steps"] == result["resumed_steps"] == 8
    assert result["same_weights"]
    assert_only_the_fake_was_asked(hub)


@pytest.mark.slow
def test_a_hub_stream_whose_repo_moved_on_is_not_resumed_as_if_it_had_not(
    hub: FakeHub, tiny_model_path: Path, tmp_path: Path
) -> None:
    """The train stage streams the commit its revision names when it starts, and that
    commit is part of the series identity: after a new commit to the repo, an unfinished
    series is not resumed on other rows (skipping batches of data it never trained on),
    the mismatch is named; on the same commit the series resumes."""
    config = _stream_config(tmp_path, tiny_model_path, max_steps=6)
    work = tmp_path / "child"
    args = {"config_file": str(config), "checkpoint_uri": str(tmp_path / "series")}
    run = "tests.hub_runs:train_stage_once"
    first = call_with_hub(hub, run, {**args, "interrupt_at": 3}, work / "first")
    assert first == {"ended": "interrupted"}
    before = hub.dataset_head(STREAM_REPO).oid
    hub.add_dataset(STREAM_REPO, {"data/train-00000-of-00002.parquet": parquet(_rows(20)[::-1])})
    moved = call_with_hub(hub, run, {**args, "interrupt_at": 0}, work / "moved")
    assert moved["ended"].startswith("SeriesMismatch: the checkpoint series at "), moved
    assert "datasets.docs.source.revision" in moved["ended"] and before in moved["ended"]
    pinned = dict(args, config_file=str(_stream_config(tmp_path, tiny_model_path, max_steps=6,
                                                        revision=before)))  # fmt: skip
    resumed = call_with_hub(hub, run, {**pinned, "interrupt_at": 0}, work / "pinned")
    assert resumed["ended"] == "finished" and 3 <= resumed["resumed_from"] < 6
    assert_only_the_fake_was_asked(hub)


NANO_TOPICS = {
    "NanoSciFact": ["cells", "proteins", "vaccines", "genes", "neurons", "bacteria"],
    "NanoNFCorpus": ["vitamins", "fibre", "sugar", "sleep", "coffee", "salt"],
}


def add_nanobeir(hub: FakeHub, repo_id: str = NANOBEIR_REPO, sets: tuple[str, ...] = ()) -> None:
    """Tiny NanoBEIR sets (`sets`, default both) in the layout of
    sentence-transformers/NanoBEIR-en: per config a Parquet file per split, named by the
    README's `configs`; 30 documents (5 per topic), 6 queries, each relevant to the first
    two documents of its topic."""
    files: dict[str, bytes] = {}
    configs: dict[str, list[dict[str, str]]] = {"corpus": [], "queries": [], "qrels": []}
    for split, topics in NANO_TOPICS.items():
        if sets and split not in sets:
            continue
        corpus = [
            {"_id": f"{split}-d{t}-{k}", "text": f"note {k} on {topic} and their role"}
            for t, topic in enumerate(topics)
            for k in range(5)
        ]
        queries = [
            {"_id": f"{split}-q{t}", "text": f"what about {t}"} for t, _ in enumerate(topics)
        ]
        qrels = [
            {"query-id": f"{split}-q{t}", "corpus-id": f"{split}-d{t}-{k}"}
            for t in range(len(topics))
            for k in range(2)
        ]
        for config, rows in (("corpus", corpus), ("queries", queries), ("qrels", qrels)):
            path = f"{config}/{split}-00000-of-00001.parquet"
            files[path] = parquet(rows)
            configs[config].append({"split": split, "path": f"{config}/{split}-*"})
    front = [{"config_name": name, "data_files": splits} for name, splits in configs.items()]
    card = f"---\n{yaml.safe_dump({'configs': front}, sort_keys=False)}---\n# NanoBEIR (fake)\n"
    hub.add_dataset(repo_id, {"README.md": card.encode(), **files})


def _nanobeir_config(
    path: Path, tiny_model_path: Path, pairs_file: Path, training: dict, **params: Any
) -> Path:
    document = tiny_run_config(
        tiny_model_path,
        {"docs": pairs_dataset(pairs_file)},
        training=training,
        evaluators=[
            {"type": "nanobeir", "params": {"dataset_names": ["scifact", "nfcorpus"], **params}}
        ],
    )
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.slow
def test_the_online_preflight_checks_the_nanobeir_repo_and_its_splits(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """Online, the preflight reads the NanoBEIR repo's configs and the chosen sets' splits
    (no rows): a repo lacking a set, or no repo at all, is a problem before training.
    Asked to be offline, it reaches for none of them and says so."""
    training = {"max_steps": 1}
    configs = [
        _nanobeir_config(tmp_path / f"{n}.yaml", tiny_model_path, pairs_file, training, **p)
        for n, p in enumerate([{}, {"dataset_id": "org/NanoBEIR-xx"}, {"dataset_id": "org/none"}])
    ]
    with FakeHub() as hub:
        add_nanobeir(hub)
        add_nanobeir(hub, "org/NanoBEIR-xx", sets=("NanoSciFact",))
        args = {"config_files": [str(path) for path in configs], "offline": False}
        good, lacking, absent = call_with_hub(
            hub, "tests.hub_runs:preflight_reports", args, tmp_path / "child"
        )
        asked = len(hub.requests)
        args["offline"] = True
        offline = call_with_hub(hub, "tests.hub_runs:preflight_reports", args, tmp_path / "off")
    assert good["problems"] == []
    assert (
        "evaluators.0: NanoBEIR's sentence-transformers/NanoBEIR-en has NanoSciFact, "
        "NanoNFCorpus in corpus, queries, qrels (Hub file listing; rows are read when it runs)"
    ) in good["checked"]
    assert lacking["problems"] == [
        "evaluators.0.params.dataset_id: the Hub dataset 'org/NanoBEIR-xx' has no split "
        "NanoNFCorpus in config 'corpus', which NanoBEIR reads for the chosen dataset_names; "
        "it has: NanoSciFact"
    ]
    assert absent["problems"] == [
        "evaluators.0.params.dataset_id: NanoBEIR reads config 'corpus' of the Hub dataset "
        "'org/none', which cannot be read: Dataset 'org/none' doesn't exist on the Hub or "
        "cannot be accessed."
    ]
    assert all(report["problems"] == [] for report in offline)
    assert (
        "evaluators.0: NanoBEIR downloads org/none (scifact, nfcorpus) from the Hugging Face "
        "Hub when it runs; the preflight is offline, so it is not checked, and the evaluate "
        "stage needs Hub access (or those datasets in the local cache)"
    ) in offline[2]["skipped"]
    assert len(hub.requests) == asked
    assert_only_the_fake_was_asked(hub)


@pytest.mark.slow
def test_the_nanobeir_evaluator_reports_its_metrics_from_hub_datasets(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """A run configured with `type: nanobeir` as a user writes it: the preflight online,
    training, the evaluate stage scoring base and fine-tuned model on both sets (each
    config of each downloaded), and the gate deciding on NanoBEIR's mean nDCG@10."""
    training = {"per_device_train_batch_size": 8, "max_steps": 4, "learning_rate": 1e-3}
    config = _nanobeir_config(tmp_path / "run.yaml", tiny_model_path, pairs_file, training)
    with FakeHub() as hub:
        add_nanobeir(hub)
        args = {"config_file": str(config), "checkpoint_uri": str(tmp_path / "series")}
        result = call_with_hub(hub, "tests.hub_runs:run_stages", args, tmp_path / "child")
    assert result["preflight_problems"] == []
    assert result["global_step"] == 4
    evaluation, gate = result["evaluation"], result["gate"]
    metric = "NanoBEIR_mean_cosine_ndcg@10"
    assert evaluation["primary_metric"] == metric
    for scores in (evaluation["base"], evaluation["finetuned"]):
        for name in ("NanoSciFact", "NanoNFCorpus", "NanoBEIR_mean"):
            assert 0.0 <= scores[f"{name}_cosine_ndcg@10"] <= 1.0
    assert evaluation["weights_changed"]
    assert evaluation["finetuned"][metric] != evaluation["base"][metric]
    assert (gate["metric"], gate["value"]) == (metric, evaluation["finetuned"][metric])
    assert gate["interval_note"] == "no interval (evaluator has no per-query scores)"
    downloaded = {r.path.split("/", 6)[-1] for r in hub.requests_to("resolve") if r.method == "GET"}
    assert {f"{c}/{s}-00000-of-00001.parquet" for c in ("corpus", "queries", "qrels")
            for s in NANO_TOPICS} <= downloaded  # fmt: skip
    assert_only_the_fake_was_asked(hub)
