"""Read behaviour events from CSV, JSON Lines and Parquet files, row by row, with line numbers.

Each reader yields `(line, row)`: `line` is the 1-based line of the row in the file (the
header of a CSV file is line 1, so its first record is line 2; for Parquet it is the row
number), and `row` is either the raw field mapping or, for a line that is not even a
record (broken JSON), a `RowError`. Files that cannot be read at all (missing, unknown
format, no header) raise `UnusableInputError` before the first row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class UnusableInputError(Exception):
    """The file as a whole cannot be read as events (not one bad row: the whole input)."""


@dataclass(frozen=True, slots=True)
class RowError:
    field: str
    code: str
    reason: str


Row = tuple[int, Mapping[str, object] | RowError]


def file_format(path: Path) -> str:
    if path.is_dir():
        if not any(path.rglob("*.parquet")):
            raise UnusableInputError(f"{path} holds no Parquet files")
        return "parquet"
    if not path.is_file():
        raise UnusableInputError(f"no such file: {path}")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UnusableInputError(f"{path.name}: unknown format (use .csv, .jsonl or .parquet)")
    return kind


def read_rows(path: Path) -> Iterator[Row]:
    """Every row of `path` (a file, or a folder of Parquet files read in name order)."""
    kind = file_format(path)
    if kind == "csv":
        return _csv_rows(path)
    if kind == "jsonl":
        return _jsonl_rows(path)
    return _parquet_rows(path)


def _csv_rows(path: Path) -> Iterator[Row]:
    handle = path.open(newline="", encoding="utf-8-sig")
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as error:
        handle.close()
        raise UnusableInputError(f"{path.name}: not a readable CSV file ({error})") from error
    if not header or "event_id" not in header:
        handle.close()
        raise UnusableInputError(f"{path.name}: the first line must be a header with event_id")
    return _csv_records(handle, reader, header)


def _csv_records(handle: TextIO, reader: Any, header: list[str]) -> Iterator[Row]:
    """The records after the header, each numbered by the line after the previous record
    (so a record spanning lines is named by its first line). Blank lines are skipped and,
    as `csv.DictReader` does, not counted as a record's start. Rows are made from
    `csv.reader` with one `dict(zip(...))` each: `DictReader` plus a copy per row was a
    third of a CSV load's CPU."""
    width = len(header)
    with handle:
        line = reader.line_num
        try:
            for values in reader:
                if not values:
                    continue
                if len(values) == width:
                    yield line + 1, dict(zip(header, values, strict=True))
                elif len(values) > width:
                    yield line + 1, _EXTRA_VALUES
                else:
                    yield line + 1, _MISSING_VALUES
                line = reader.line_num
        except (UnicodeDecodeError, csv.Error) as error:
            raise UnusableInputError(f"line {line + 1}: unreadable CSV ({error})") from error


_EXTRA_VALUES = RowError("line", "extra_values", "the line has more values than the header")
_MISSING_VALUES = RowError("line", "missing_values", "the line has fewer values than the header")


def _jsonl_rows(path: Path) -> Iterator[Row]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise UnusableInputError(f"{path}: {error}") from error
    with handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            yield number, _json_record(text)


#: The value types that orjson and `json` read alike (orjson reads an integer beyond 64
#: bits as a float, and refuses NaN, Infinity and lone surrogates, which `json` takes).
_FLAT = frozenset({str, int, bool, type(None)})


def _json_record(text: str) -> Mapping[str, object] | RowError:
    """One line as an object: parsed by orjson (about five times faster) when the result
    is a flat object that `json.loads` would read the same; by `json.loads` otherwise, so
    that every other line (and every error message) is exactly as before."""
    try:
        fast = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        if type(fast) is dict and _FLAT.issuperset(map(type, fast.values())):
            return fast
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return RowError("line", "invalid_json", f"not valid JSON: {error.msg}")
    if not isinstance(value, dict):
        return RowError("line", "not_an_object", "each line must be one JSON object")
    return value


def _parquet_rows(path: Path) -> Iterator[Row]:
    return _parquet_records(_parquet_files(path))


def _parquet_files(path: Path) -> list[Path]:
    """Check every file's schema first, so an unusable file stops the load before it starts."""
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    for file in files:
        try:
            names = pq.read_schema(file).names
        except Exception as error:
            raise UnusableInputError(f"{file}: not a readable Parquet file ({error})") from error
        if "event_id" not in names:
            raise UnusableInputError(f"{file}: no event_id column")
    return files


def read_parquet_tables(path: Path, batch_rows: int) -> Iterator[tuple[int, pa.Table]]:
    """The rows of a Parquet file (or folder) as Arrow tables of at most `batch_rows` rows,
    each with the row number of its first row (numbered from 1 across the files, as
    `read_rows` numbers them), so that a batch is validated column by column."""
    return _parquet_tables(_parquet_files(path), batch_rows)


def _parquet_tables(files: list[Path], batch_rows: int) -> Iterator[tuple[int, pa.Table]]:
    number = 1
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=batch_rows):
            yield number, pa.Table.from_batches([batch])
            number += batch.num_rows


def _parquet_records(files: list[Path]) -> Iterator[Row]:
    number = 0
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=10_000):
            for record in batch.to_pylist():
                number += 1
                yield number, record
