"""The file readers number every row by its line and read each value as the standard
library would: `csv.DictReader` for CSV, `json.loads` for JSON Lines (the expected values
here come from those readers)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from creditline.data.adapters.files import RowError, read_rows


def test_csv_rows_are_numbered_by_their_first_line_and_short_or_long_lines_are_named(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,customer_id,category\n"
        "e-1,c-1,dining\n"
        "\n"
        'e-2,c-2,"two\nlines"\n'
        "e-3,c-3\n"
        "e-4,c-4,dining,extra\n"
        "e-5,,\n",
        encoding="utf-8",
    )

    rows = list(read_rows(path))

    with path.open(newline="", encoding="utf-8") as handle:
        expected = list(csv.DictReader(handle))
    assert [line for line, _ in rows] == [2, 3, 6, 7, 8]
    assert rows[0][1] == expected[0]
    assert rows[1][1] == {"event_id": "e-2", "customer_id": "c-2", "category": "two\nlines"}
    assert rows[2][1] == RowError(
        "line", "missing_values", "the line has fewer values than the header"
    )
    assert rows[3][1] == RowError(
        "line", "extra_values", "the line has more values than the header"
    )
    assert rows[4][1] == expected[4] == {"event_id": "e-5", "customer_id": "", "category": ""}


@pytest.mark.parametrize(
    "line",
    [
        '{"event_id": "e-1", "amount_minor": 100, "is_sim_change": true, "x": null}',
        '{"amount_minor": 18446744073709551616}',
        '{"amount_minor": -9223372036854775809}',
        '{"amount_minor": 1.0}',
        '{"amount_minor": NaN}',
        '{"event_id": "\\ud800"}',
        '{"event_id": ["e-1", 2.5]}',
        '{"event_id": "e-1", "event_id": "e-2"}',
    ],
)
def test_a_json_line_is_read_as_json_loads_reads_it(tmp_path: Path, line: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(line + "\n", encoding="utf-8")

    [(number, row)] = list(read_rows(path))

    expected = json.loads(line)
    assert number == 1
    assert row == expected
    assert [type(value) for value in row.values()] == [  # type: ignore[union-attr]
        type(value) for value in expected.values()
    ]


def test_a_broken_json_line_is_named_with_json_loads_reason(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event_id": "e-1"}\n\n{not json\n[1]\n', encoding="utf-8")

    rows = list(read_rows(path))

    assert [line for line, _ in rows] == [1, 3, 4]
    assert rows[1][1] == RowError(
        "line",
        "invalid_json",
        "not valid JSON: Expecting property name enclosed in double quotes",
    )
    assert rows[2][1] == RowError("line", "not_an_object", "each line must be one JSON object")
