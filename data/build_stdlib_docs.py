"""Build a small retrieval dataset from the CPython standard library's docstrings.

Each pair maps the one-line summary of a public function, class or method
docstring (``query``) to the rest of that docstring (``document``).  The text is
written by the CPython developers and distributed under the Python Software
Foundation License, so the demo dataset is real natural language that nobody in
this project authored, and it can be rebuilt offline from any Python >= 3.10.

Run it from the repository root::

    python data/build_stdlib_docs.py

The script is deterministic: it walks modules and members in sorted order,
splits by a fixed hash of the top-level module name and writes sorted JSON, so
two runs with the same interpreter produce byte-identical files.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import json
import os
import pkgutil
import platform
import re
import sys
import sysconfig
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "stdlib_docs"

# Modules that open windows or browsers, print on import, only make sense on
# another platform, are test suites, or (distutils) may be replaced by
# setuptools' copy through a ``.pth`` shim and so would not be CPython text.
SKIP_MODULES = frozenset(
    {
        "antigravity",
        "distutils",
        "ensurepip",
        "idlelib",
        "lib2to3",
        "pydoc_data",
        "readline",
        "test",
        "this",
        "tkinter",
        "turtle",
        "turtledemo",
        "venv",
        "xxlimited",
        "xxlimited_35",
        "xxsubtype",
    }
)
# Submodule names that mark test suites (entry points start with "_" anyway).
SKIP_SUBMODULES = frozenset({"idle_test", "test", "tests"})

MIN_QUERY_WORDS = 4
MAX_QUERY_WORDS = 30
MIN_DOCUMENT_WORDS = 15
MAX_DOCUMENT_CHARS = 1000

# Split rule: a module goes to eval when crc32(name) % SPLIT_MODULUS is below
# EVAL_BUCKETS.  crc32 is stable across runs and platforms, unlike hash().
SPLIT_MODULUS = 100
EVAL_BUCKETS = 20
SPLIT_RULE = (
    f"eval if zlib.crc32(module.encode('utf-8')) % {SPLIT_MODULUS} < {EVAL_BUCKETS} "
    "else train (grouped by top-level module)"
)

# A line that is only a call signature, as in old-style C docstrings
# ("sleep(seconds)", "S.join(iterable) -> str", "map(func, *iterables) --> map
# object", "x.__eq__(y) <==> x==y", "system.methodSignature('add') => [...]").
_SIGNATURE_LINE = re.compile(r"^[\w.\[\]]+\(.*\)(\s*(-->|->|=>|<==>|-- ).*)?$")
# A reST section underline such as "=====" or "-----".
_RULE_LINE = re.compile(r"^\s*([=~^*#+-])\1{2,}\s*$")
# A summary that opens with a call ("overwrite(destwin, ...) Overwrite ...",
# pdb's "j(ump) lineno Set ...") or maps inputs to outputs ("data -> ...").
_CALL_PREFIX = re.compile(r"^[\w.]+\(|\s(?:->|=>)\s")
# End of a sentence: terminal punctuation, whitespace, then a capital letter.
_SENTENCE_END = re.compile(r"[.!?]\s+(?=[A-Z])")
_ABBREVIATIONS = frozenset({"e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "no."})
# A plain prose word, optionally followed by punctuation.
_PROSE_WORD = re.compile(r"^[A-Za-z][a-z'-]*[,.;:!?]?$")
# Minimum share of prose words in a query; rejects argument lists and command
# syntax such as "m=None, name=None, ..." or "l(ist) [first [,last] | .]".
MIN_QUERY_PROSE_SHARE = 0.5
# Summaries written by the interpreter or by helpers rather than by a person
# (slot wrappers, enum and namedtuple defaults); they say nothing about the
# object.  Most come from dunder members, which are skipped anyway.
_BOILERPLATE = re.compile(
    r"^(?:"
    r"An enumeration\.|"
    r"Alias for field number \d+|"
    r"Create and return a new object\..*|"
    r"Default object formatter\.|"
    r"Helper for pickle\.|"
    r"Initialize self\..*|"
    r"Return self[=!<>]=?value\.|"
    r"Return (?:repr|str|hash)\(self\)\.|"
    r"Return state information for pickling\.|"
    r"Size of object in memory, in bytes\."
    r")$"
)


@dataclass(frozen=True)
class Pair:
    """One retrieval example: a summary and the docstring body it came from."""

    query: str
    document: str
    name: str
    module: str

    def to_json(self) -> str:
        """Serialise with sorted keys so the output is byte-stable."""
        record = {
            "document": self.document,
            "module": self.module,
            "name": self.name,
            "query": self.query,
        }
        return json.dumps(record, sort_keys=True, ensure_ascii=False)


def _stdlib_dirs() -> tuple[str, ...]:
    """Directories that hold the interpreter's own library, not site-packages."""
    paths = sysconfig.get_paths()
    return tuple(os.path.realpath(paths[key]) + os.sep for key in ("stdlib", "platstdlib"))


def _is_stdlib(module: ModuleType, stdlib_dirs: tuple[str, ...]) -> bool:
    """Reject modules shadowed by third-party files (e.g. setuptools' distutils)."""
    file = getattr(module, "__file__", None)
    if file is None:
        return module.__name__ in sys.builtin_module_names
    real = os.path.realpath(file)
    return real.startswith(stdlib_dirs) and not any(
        part in real for part in ("site-packages", "dist-packages")
    )


def _quiet_import(name: str) -> ModuleType | None:
    """Import a module, returning None if it fails or writes to stdout/stderr.

    Output during import means the module has side effects we do not want in a
    data build (demos, banners), so such modules are skipped altogether.
    """
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            module = importlib.import_module(name)
    except (Exception, SystemExit):
        return None
    if out.getvalue() or err.getvalue():
        return None
    return module


def _iter_modules() -> Iterator[ModuleType]:
    """Yield public stdlib modules and their public submodules, in sorted order."""
    stdlib_dirs = _stdlib_dirs()
    for top in sorted(sys.stdlib_module_names):
        if not top.startswith("_") and top not in SKIP_MODULES:
            yield from _walk_package(top, stdlib_dirs)


def _walk_package(name: str, stdlib_dirs: tuple[str, ...]) -> Iterator[ModuleType]:
    """Import ``name`` quietly and yield it, then its public submodules, depth first.

    Hand-rolled instead of ``pkgutil.walk_packages``, which imports subpackages
    without our output check and lets non-ImportError exceptions escape.
    """
    module = _quiet_import(name)
    if module is None or not _is_stdlib(module, stdlib_dirs):
        return
    yield module
    path = getattr(module, "__path__", None)
    if path is None:
        return
    children = sorted(info.name for info in pkgutil.iter_modules(path))
    for child in children:
        if not child.startswith("_") and child not in SKIP_SUBMODULES:
            yield from _walk_package(f"{name}.{child}", stdlib_dirs)


def _is_routine(obj: Any) -> bool:
    """Functions and methods we describe (Python or C, bound or unbound)."""
    return inspect.isroutine(obj) or isinstance(obj, property)


def _public_twin(private_module: str) -> str:
    """The public module a private implementation module usually backs.

    ``concurrent.futures._base`` -> ``concurrent.futures`` (drop private
    trailing parts), ``_io`` -> ``io`` (strip the underscore of a C accelerator).
    """
    parts = private_module.split(".")
    while len(parts) > 1 and parts[-1].startswith("_"):
        parts.pop()
    return ".".join(part.lstrip("_") for part in parts)


def _credit_rank(obj: Any, module: ModuleType) -> int | None:
    """How well ``module`` fits as the home of ``obj`` (lower is better).

    0: defined in the module itself.  1: defined in a private module whose
    public twin is this module (``_io.BytesIO`` seen in ``io``).  2: defined in
    a private module of the same package (``email._parseaddr`` in
    ``email.utils``).  3: defined in some other private module and re-exported
    here.  None: defined in another public module, which credits it itself.  This credits C accelerators
    and private implementation modules to their public name, not to whichever
    module happens to import them first (``doctest`` imports ``_io`` classes).
    """
    owner = getattr(obj, "__module__", None)
    if not isinstance(owner, str):
        return None
    if owner == module.__name__:
        return 0
    if not any(part.startswith("_") for part in owner.split(".")) or owner == "__main__":
        return None
    twin = _public_twin(owner)
    if twin == module.__name__:
        return 1
    return 2 if twin.split(".")[0] == module.__name__.split(".")[0] else 3


def _iter_documented(modules: Iterator[ModuleType]) -> Iterator[tuple[str, Any]]:
    """Yield (qualified name, object) for the modules and their public members.

    Covers each module itself, its public functions and classes, and the
    public methods and properties each class defines in its own ``__dict__``
    (so inherited members are not repeated under every subclass).  An object
    exposed by several modules is yielded once, under its best-ranked home
    (ties: the shallowest module, then the first qualified name in sorted order).
    """
    homes: dict[int, tuple[int, int, str, Any]] = {}
    for module in modules:
        yield module.__name__, module
        for attr, obj in vars(module).items():
            rank = None if attr.startswith("_") else _credit_rank(obj, module)
            if rank is None or not (inspect.isclass(obj) or _is_routine(obj)):
                continue
            depth = module.__name__.count(".")
            candidate = (rank, depth, f"{module.__name__}.{attr}", obj)
            # Modules stay imported, so ids are stable for the whole walk.
            best = homes.get(id(obj))
            if best is None or candidate[:3] < best[:3]:
                homes[id(obj)] = candidate
    for *_, name, obj in sorted(homes.values(), key=lambda home: home[2]):
        yield name, obj
        if not inspect.isclass(obj):
            continue
        for meth_name, meth in sorted(vars(obj).items()):
            if meth_name.startswith("_"):
                continue
            if isinstance(meth, (staticmethod, classmethod)):
                meth = meth.__func__
            if _is_routine(meth):
                yield f"{name}.{meth_name}", meth


def _own_doc(obj: Any) -> str | None:
    """The object's own docstring, if any.

    ``obj.__doc__`` rather than ``inspect.getdoc``: getdoc falls back to a
    parent's docstring, which would repeat it under a misleading name.
    """
    doc = getattr(obj, "__doc__", None)
    return doc if isinstance(doc, str) and doc.strip() else None


def _collapse(text: str) -> str:
    """Join lines and squeeze runs of whitespace into single spaces."""
    return " ".join(text.split())


def _truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` chars at a word boundary."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + " ..."


def _clean_docstring(doc: str) -> str:
    """Dedent a docstring and remove lines that are markup rather than prose.

    Drops the leading call-signature lines old-style C docstrings start with,
    line-continuation backslashes and reST underline rules.
    """
    lines = inspect.cleandoc(doc).splitlines()
    while lines and (not lines[0].strip() or _SIGNATURE_LINE.match(lines[0].strip())):
        lines.pop(0)
    # C docstrings sometimes keep a line-continuation backslash; reST titles
    # are underlined with "====" lines.  Neither is prose.
    lines = [line.rstrip("\\") for line in lines if not _RULE_LINE.match(line)]
    return "\n".join(lines)


def _split_first_sentence(text: str) -> tuple[str, str]:
    """Split collapsed text after its first sentence ("" rest if there is none).

    Used when a docstring has no separate summary paragraph (PEP 257 asks for
    one, but many stdlib docstrings run the summary into the description).
    """
    for match in _SENTENCE_END.finditer(text):
        last_word = text[: match.start() + 1].rsplit(" ", 1)[-1].casefold()
        if last_word not in _ABBREVIATIONS:
            return text[: match.start() + 1], text[match.end() :]
    return text, ""


def _is_prose_summary(query: str) -> bool:
    """Whether ``query`` reads as a human-written one-line summary."""
    words = query.split()
    if not MIN_QUERY_WORDS <= len(words) <= MAX_QUERY_WORDS:
        return False
    if query.endswith(":") or query.startswith(">>>"):
        return False
    if _BOILERPLATE.match(query) or _CALL_PREFIX.search(query):
        return False
    prose = sum(bool(_PROSE_WORD.match(word)) for word in words)
    return prose >= MIN_QUERY_PROSE_SHARE * len(words)


def make_pair(name: str, raw_doc: str) -> Pair | None:
    """Turn a docstring into a (summary, body) pair, or None if unusable.

    The summary is the first paragraph; when that is missing or too long, it
    is the first sentence and the body starts right after it.
    """
    paragraphs = [_collapse(p) for p in re.split(r"\n\s*\n", _clean_docstring(raw_doc))]
    # Interactive examples (">>> ..." plus their output) are code, not prose.
    paragraphs = [p for p in paragraphs if p and not p.startswith(">>>")]
    if not paragraphs:
        return None
    query, body = paragraphs[0], " ".join(paragraphs[1:])
    # No separate summary, an over-long one, or one that introduces a list or
    # example ("... the following attributes:"): fall back to the first sentence.
    if len(paragraphs) == 1 or len(query.split()) > MAX_QUERY_WORDS or query.endswith(":"):
        query, rest = _split_first_sentence(query)
        body = f"{rest} {body}".strip()
    if not _is_prose_summary(query):
        return None
    if len(body.split()) < MIN_DOCUMENT_WORDS or query in body:
        return None
    document = _truncate(body, MAX_DOCUMENT_CHARS)
    return Pair(query=query, document=document, name=name, module=name.split(".", maxsplit=1)[0])


def collect_pairs() -> list[Pair]:
    """Extract pairs from the whole stdlib, dropping duplicate queries/documents."""
    candidates: dict[str, Pair] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, obj in _iter_documented(_iter_modules()):
            doc = _own_doc(obj)
            pair = make_pair(name, doc) if doc else None
            if pair is not None:
                candidates.setdefault(name, pair)
    pairs: list[Pair] = []
    seen_queries: set[str] = set()
    seen_documents: set[str] = set()
    for name in sorted(candidates):
        pair = candidates[name]
        key_q, key_d = pair.query.casefold(), pair.document.casefold()
        if key_q in seen_queries or key_d in seen_documents:
            continue
        seen_queries.add(key_q)
        seen_documents.add(key_d)
        pairs.append(pair)
    return pairs


def is_eval_module(module: str) -> bool:
    """Deterministic group split: whole top-level modules go to one side."""
    return zlib.crc32(module.encode("utf-8")) % SPLIT_MODULUS < EVAL_BUCKETS


def _write_jsonl(path: Path, pairs: list[Pair]) -> None:
    """Write one JSON object per line with Unix newlines."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for pair in pairs:
            fh.write(pair.to_json() + "\n")


def main() -> None:
    """Build the dataset, write train/eval JSONL and BUILD_INFO.json."""
    pairs = collect_pairs()
    train = [p for p in pairs if not is_eval_module(p.module)]
    eval_ = [p for p in pairs if is_eval_module(p.module)]

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    _write_jsonl(OUT_DIR / "train.jsonl", train)
    _write_jsonl(OUT_DIR / "eval.jsonl", eval_)
    info = {
        "source": "CPython standard library docstrings (PSF License)",
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
        "platform": sys.platform,
        "split_rule": SPLIT_RULE,
        "counts": {
            "train": len(train),
            "eval": len(eval_),
            "train_modules": len({p.module for p in train}),
            "eval_modules": len({p.module for p in eval_}),
        },
        "filters": {
            "query_words": [MIN_QUERY_WORDS, MAX_QUERY_WORDS],
            "min_document_words": MIN_DOCUMENT_WORDS,
            "max_document_chars": MAX_DOCUMENT_CHARS,
        },
    }
    (OUT_DIR / "BUILD_INFO.json").write_text(
        json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(
        f"train: {len(train)} pairs from {info['counts']['train_modules']} modules\n"
        f"eval:  {len(eval_)} pairs from {info['counts']['eval_modules']} modules\n"
        f"written to {OUT_DIR}"
    )


if __name__ == "__main__":
    main()
