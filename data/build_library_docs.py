"""Build a second retrieval dataset from third-party Python libraries' docstrings.

Each pair maps the one-line summary of a public function, class or method of NetworkX,
NumPy, pandas, SciPy, scikit-learn, SQLAlchemy, SymPy or PyTorch (``query``) to its
extended summary: the prose between the summary and the first numpydoc section or
directive (``document``). All eight are under permissive licences (BSD-3-Clause; MIT for
SQLAlchemy; PyTorch's BSD-style licence). The set exists to choose training defaults on
held-out data that is not the quickstart's own split: other authors, other topics
(graphs, numerics, data frames, statistics, machine learning, SQL, algebra, deep
learning) and a real corpus of 5,000 documents.

Run it from the repository root with the project's environment (the libraries come
with it, pinned by constraints.txt)::

    python data/build_library_docs.py

Output (deterministic for the same library versions):

    data/library_docs/train.jsonl             2,000 (query, document) pairs
    data/library_docs/heldout/corpus.jsonl    5,000 documents (BEIR layout)
    data/library_docs/heldout/queries.jsonl   1,000 queries
    data/library_docs/heldout/qrels/test.tsv  one relevant document per query
    data/library_docs/BUILD_INFO.json         versions, counts, split rule

Train and held-out never share a group (library + first submodule, e.g. ``scipy.stats``,
``pandas.core``), so near-identical docstrings of sibling classes stay on one side.
"""

from __future__ import annotations

import importlib.metadata
import json
import random
import re
import sys
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_stdlib_docs as stdlib

OUT_DIR = Path(__file__).resolve().parent / "library_docs"
LIBRARIES = ("networkx", "numpy", "pandas", "scipy", "sklearn", "sqlalchemy", "sympy", "torch")
LICENSES = {
    "networkx": "BSD-3-Clause",
    "numpy": "BSD-3-Clause",
    "pandas": "BSD-3-Clause",
    "scipy": "BSD-3-Clause",
    "sklearn": "BSD-3-Clause",
    "sqlalchemy": "MIT",
    "sympy": "BSD-3-Clause",
    "torch": "BSD-3-Clause (PyTorch licence)",
}
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
SKIP_SUBMODULES = frozenset({"benchmarks", "conftest", "setup", "testing", "tests"})

TRAIN_PAIRS = 2000
HELDOUT_QUERIES = 1000
HELDOUT_DOCUMENTS = 5000
SEED = 20261126

SPLIT_MODULUS = 100
HELDOUT_BUCKETS = 69
SPLIT_RULE = (
    f"heldout if zlib.crc32(group.encode('utf-8')) % {SPLIT_MODULUS} < {HELDOUT_BUCKETS} "
    "else train; group = first two dotted parts of the qualified name"
)

# A numpydoc section header: a title line followed by a dashes underline.
_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]+\n\s*-{3,}\s*$", re.MULTILINE)
# reST directives and doctest blocks end the prose too.
_DIRECTIVE = re.compile(r"^\s*(\.\. |>>> )", re.MULTILINE)


def extended_summary(doc: str) -> str:
    """The docstring up to its first numpydoc section or reST directive."""
    cleaned = stdlib.inspect.cleandoc(doc)
    cut = len(cleaned)
    for pattern in (_SECTION, _DIRECTIVE):
        match = pattern.search(cleaned)
        if match:
            cut = min(cut, match.start())
    return cleaned[:cut]


def _quiet_import(name: str) -> ModuleType | None:
    return stdlib._quiet_import(name)


def _walk(name: str) -> Iterator[ModuleType]:
    """The package and its public submodules, depth first, in sorted order."""
    module = _quiet_import(name)
    if module is None:
        return
    yield module
    path = getattr(module, "__path__", None)
    if path is None:
        return
    for child in sorted(info.name for info in stdlib.pkgutil.iter_modules(path)):
        if not child.startswith("_") and child not in SKIP_SUBMODULES:
            yield from _walk(f"{name}.{child}")


def _in_library(obj: Any, library: str) -> bool:
    owner = getattr(obj, "__module__", None)
    return isinstance(owner, str) and owner.split(".")[0] == library


def collect_pairs() -> list[stdlib.Pair]:
    """Pairs from all libraries, one per object, without repeated queries or documents."""
    candidates: dict[str, stdlib.Pair] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for library in LIBRARIES:
            for name, obj in stdlib._iter_documented(_walk(library)):
                if stdlib.inspect.ismodule(obj) or not _in_library(obj, library):
                    continue
                doc = stdlib._own_doc(obj)
                pair = stdlib.make_pair(name, extended_summary(doc)) if doc else None
                if pair is not None:
                    group = ".".join(name.split(".")[:2])
                    candidates.setdefault(name, stdlib.Pair(pair.query, pair.document, name, group))
    pairs: list[stdlib.Pair] = []
    seen: set[str] = set()
    for name in sorted(candidates):
        pair = candidates[name]
        # Whole query, whole document and the document's opening all stay unique:
        # templated docstrings (DataFrame.sum / Series.sum) differ only further on.
        keys = {
            "q:" + pair.query.casefold(),
            "d:" + pair.document.casefold(),
            "p:" + pair.document.casefold()[:80],
        }
        if keys & seen:
            continue
        seen |= keys
        pairs.append(pair)
    return pairs


def is_heldout(group: str) -> bool:
    return zlib.crc32(group.encode("utf-8")) % SPLIT_MODULUS < HELDOUT_BUCKETS


def _write_jsonl(path: Path, records: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for record in records:
            fh.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")


def main() -> None:
    """Build train.jsonl, the BEIR held-out folder and BUILD_INFO.json."""
    pairs = collect_pairs()
    train_pool = [p for p in pairs if not is_heldout(p.module)]
    heldout_pool = [p for p in pairs if is_heldout(p.module)]
    if len(train_pool) < TRAIN_PAIRS or len(heldout_pool) < HELDOUT_DOCUMENTS:
        raise SystemExit(
            f"not enough pairs: {len(train_pool)} train (need {TRAIN_PAIRS}), "
            f"{len(heldout_pool)} held-out (need {HELDOUT_DOCUMENTS})"
        )
    rng = random.Random(SEED)
    train = sorted(rng.sample(train_pool, TRAIN_PAIRS), key=lambda p: p.name)
    documents = sorted(rng.sample(heldout_pool, HELDOUT_DOCUMENTS), key=lambda p: p.name)
    queries = sorted(rng.sample(documents, HELDOUT_QUERIES), key=lambda p: p.name)

    _write_jsonl(
        OUT_DIR / "train.jsonl",
        [
            {"query": p.query, "document": p.document, "name": p.name, "group": p.module}
            for p in train
        ],
    )
    heldout = OUT_DIR / "heldout"
    _write_jsonl(
        heldout / "corpus.jsonl",
        [{"_id": p.name, "title": "", "text": p.document} for p in documents],
    )
    _write_jsonl(heldout / "queries.jsonl", [{"_id": p.name, "text": p.query} for p in queries])
    qrels = heldout / "qrels" / "test.tsv"
    qrels.parent.mkdir(parents=True, exist_ok=True)
    qrels.write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{p.name}\t{p.name}\t1\n" for p in queries),
        encoding="utf-8",
    )
    info = {
        "source": "docstrings of third-party Python libraries",
        "licenses": LICENSES,
        "versions": {
            lib: importlib.metadata.version(DISTRIBUTIONS.get(lib, lib)) for lib in LIBRARIES
        },
        "python_version": stdlib.platform.python_version(),
        "split_rule": SPLIT_RULE,
        "seed": SEED,
        "counts": {
            "candidate_pairs": len(pairs),
            "train_pool": len(train_pool),
            "heldout_pool": len(heldout_pool),
            "train": len(train),
            "train_groups": len({p.module for p in train}),
            "heldout_documents": len(documents),
            "heldout_queries": len(queries),
            "heldout_groups": len({p.module for p in documents}),
        },
    }
    (OUT_DIR / "BUILD_INFO.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    print(json.dumps(info["counts"]))


if __name__ == "__main__":
    main()
