"""Read one configured data source into a `datasets.Dataset`, or say exactly why not.

`datasets` reports a broken local file as "An error occurred while generating the
dataset" (malformed JSON), a bare `StopIteration` (empty jsonl), "Instruction 'train'
corresponds to no data" (header-only csv), or not at all (non-UTF-8 bytes in jsonl pass
through pyarrow and fail later, inside tokenization). This module checks a local file
before handing it to `datasets`, and wraps what `datasets` still raises, so each error
names the dataset, the file and, where there is one, the line; the library's error stays
attached as `__cause__`.

Local files are read by `datasets` itself (compressed ones through fsspec); the checks
stream the decompressed bytes once, in bounded chunks, so they cost one sequential read.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, load_dataset

from trainer.config import COMPRESSION_SUFFIXES, FILE_FORMATS, DataSource, data_file_suffix
from trainer.problems import DataValidationError

_CHUNK_BYTES = 8 << 20
_WHITESPACE = b" \t\r\n\f\v"
_SUFFIXES = ", ".join(sorted(FILE_FORMATS))
_COMPRESSIONS = ", ".join(sorted(COMPRESSION_SUFFIXES))


@dataclass(frozen=True)
class TextFileScan:
    """What one pass over a text file's (decompressed) bytes found."""

    size_bytes: int
    non_blank_lines: int
    """Lines with a non-whitespace byte, counted up to 2: enough to tell an empty file
    and a header-only csv from one with rows, without splitting a large file into lines."""


def _open_bytes(path: Path, compression: str | None) -> Any:
    import fsspec

    return fsspec.open(str(path), mode="rb", compression=compression).open()


def _chunks(path: Path, compression: str | None) -> Iterator[bytes]:
    with _open_bytes(path, compression) as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            yield chunk


def scan_text_file(path: Path, compression: str | None, *, what: str, field: str) -> TextFileScan:
    """Check that a csv / json file decodes as UTF-8 and whether it has rows.

    Invalid bytes raise naming the line and byte offset (in the decompressed text), the
    first place a user can look; decoding runs in C over 8 MB chunks.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = newlines = non_blank = 0
    partial_line_has_text = False
    for chunk in _chunks(path, compression):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as error:
            line = newlines + chunk[: max(error.start - pending, 0)].count(b"\n") + 1
            raise DataValidationError(
                f"{what}: {path} is not UTF-8 text: byte 0x{error.object[error.start]:02x} "
                f"at line {line} (byte offset {offset - pending + error.start}); "
                "re-save the file as UTF-8",
                field=field,
            ) from error
        newlines += chunk.count(b"\n")
        offset += len(chunk)
        if non_blank < 2:  # a line may continue from the previous chunk
            first, *lines = chunk.split(b"\n")
            first_has_text = partial_line_has_text or bool(first.strip(_WHITESPACE))
            if not lines:
                partial_line_has_text = first_has_text
            else:
                non_blank += first_has_text + sum(1 for x in lines[:-1] if x.strip(_WHITESPACE))
                partial_line_has_text = bool(lines[-1].strip(_WHITESPACE))
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise DataValidationError(
            f"{what}: {path} is not UTF-8 text: it ends inside a multi-byte character "
            f"(byte offset {offset - len(error.object) + error.start}); re-save it as UTF-8",
            field=field,
        ) from error
    non_blank += int(non_blank < 2 and partial_line_has_text)
    return TextFileScan(size_bytes=offset, non_blank_lines=min(non_blank, 2))


def _first_bad_json_line(path: Path, compression: str | None) -> str | None:
    """Where a JSON Lines file stops being valid, for the error message (error path only)."""
    with _open_bytes(path, compression) as stream:
        for number, raw in enumerate(stream, start=1):
            line = raw.decode("utf-8").strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                return f"line {number}, column {error.colno}: {error.msg}"
            if not isinstance(row, dict):
                return f"line {number} is a JSON {type(row).__name__}, not an object"
    return None


def _json_document_error(path: Path, compression: str | None) -> str | None:
    """Where a whole-document `.json` file is malformed (error path only)."""
    with _open_bytes(path, compression) as stream:
        try:
            json.loads(stream.read().decode("utf-8"))
        except json.JSONDecodeError as error:
            return f"line {error.lineno}, column {error.colno}: {error.msg}"
    return None


def _json_error_location(path: Path, compression: str | None) -> str | None:
    """Where a json / jsonl file stops parsing: a document that opens with `[` is one
    JSON array, anything else is read as JSON Lines (as `datasets` reads it)."""
    with _open_bytes(path, compression) as stream:
        head = stream.read(4096).lstrip()
    if head.startswith(b"["):
        return _json_document_error(path, compression)
    return _first_bad_json_line(path, compression)


def _root_message(error: BaseException) -> str:
    """The innermost error's first line: what actually went wrong underneath `datasets`."""
    while (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _local_file(source: DataSource, *, what: str, field: str) -> tuple[Path, str | None]:
    """The file behind a local source and its compression."""
    path = Path(source.path).expanduser()
    suffix, compression = data_file_suffix(path)
    if not path.is_file():
        raise DataValidationError(f"{what}: file {source.path!r} does not exist", field=field)
    if source.format is None and suffix not in FILE_FORMATS:
        raise DataValidationError(
            f"{what}: cannot tell the format of {source.path!r} from its name; use a "
            f"suffix {_SUFFIXES} (optionally compressed: {_COMPRESSIONS}) or set "
            "source.format",
            field=field,
        )
    return path, compression


def _parquet_rows(path: Path) -> int | None:
    """Row count from the parquet footer; None if it is unreadable (reading will say why)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).num_rows
    except Exception:
        return None


def _read_local(source: DataSource, *, what: str, field: str) -> Dataset:
    fmt = source.resolved_format
    path, compression = _local_file(source, what=what, field=field)
    if fmt in ("csv", "json"):
        scan = scan_text_file(path, compression, what=what, field=field)
        if scan.non_blank_lines == 0:
            raise DataValidationError(f"{what}: {source.path} is empty (no rows)", field=field)
        if fmt == "csv" and scan.non_blank_lines == 1:
            raise DataValidationError(
                f"{what}: {source.path} has a header line but no rows", field=field
            )
    if fmt == "parquet" and compression is None and _parquet_rows(path) == 0:
        raise DataValidationError(f"{what}: {source.path} has no rows", field=field)
    kwargs: dict[str, Any] = {}
    if fmt == "csv" and data_file_suffix(path)[0] == ".tsv":
        kwargs["delimiter"] = "\t"
    try:
        return load_dataset(fmt, data_files=str(path), split="train", **kwargs)
    except Exception as error:
        where = _json_error_location(path, compression) if fmt == "json" else None
        detail = f"not valid JSON at {where}" if where else _root_message(error)
        raise DataValidationError(
            f"{what}: cannot read {source.path} as {fmt}: {detail}", field=field
        ) from error


def _read_hub(source: DataSource, *, what: str, field: str) -> Dataset:
    try:
        return load_dataset(
            source.path, source.subset, split=source.split, revision=source.revision
        )
    except Exception as error:
        subset = f", subset {source.subset!r}" if source.subset else ""
        raise DataValidationError(
            f"{what}: cannot load {source.path!r}{subset} (split {source.split!r}) with "
            f"datasets: {_root_message(error)}",
            field=field,
        ) from error


def _files_name_splits(folder: Path) -> bool:
    """Whether `datasets` finds split names (train / test / validation ...) among the
    folder's files; if not, it reads every file as one `train` split."""
    from datasets.data_files import get_data_patterns

    patterns = get_data_patterns(str(folder))
    return not (set(patterns) == {"train"} and list(patterns["train"]) == ["**"])


def _check_folder(source: DataSource, folder: Path, *, what: str, field: str) -> None:
    if source.format not in (None, "hub"):
        raise DataValidationError(
            f"{what}: {source.path!r} is a directory; point source.path at one "
            f"{source.format} file",
            field=field,
        )
    if source.format is None and not _files_name_splits(folder):
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
        shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
        raise DataValidationError(
            f"{what}: {source.path!r} is a directory whose files ({shown or 'none'}) do not "
            "name splits, so datasets would merge them all into one split; point "
            f"source.path at one file ({_SUFFIXES}), name the files by split (train.jsonl, "
            "test.jsonl), or set source.format: hub to read them as one split on purpose",
            field=field,
        )


def load_source(source: DataSource, *, what: str, field: str = "datasets") -> Dataset:
    """Read one split from the Hub, from a local dataset repository folder, or from a
    local csv / tsv / json / jsonl / parquet file, optionally compressed (`.gz`, `.bz2`,
    `.xz`). Every failure is a `DataValidationError` naming `what` and the file."""
    path = Path(source.path).expanduser()
    if path.is_dir():
        _check_folder(source, path, what=what, field=field)
        return _read_hub(source, what=what, field=field)
    if source.resolved_format == "hub" and not (source.format is None and path.is_file()):
        return _read_hub(source, what=what, field=field)
    return _read_local(source, what=what, field=field)
