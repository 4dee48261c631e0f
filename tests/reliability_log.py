"""The table in docs/reliability.md is produced by the tests that exercise each fault.

Reliability tests call :func:`record` with a category, the number of cases they ran and the
outcome. At the end of a full run, conftest.py compares the collected table with the one in
docs/reliability.md and fails the session when they differ; ``URSA_UPDATE_RELIABILITY=1 pytest``
rewrites the document instead.
"""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
BEGIN, END = "<!-- table: begin (written by the tests) -->", "<!-- table: end -->"
# The test modules whose records make up the table; the check runs only when all of them ran.
MODULES = ("test_reliability", "test_fuzz_load", "test_properties")

RECORDS: dict[str, list] = {}  # category -> [cases, outcome, module]


def record(category: str, cases: int, outcome: str) -> None:
    import inspect

    module = Path(inspect.stack()[1].filename).stem
    entry = RECORDS.setdefault(category, [0, outcome, module])
    entry[0] += cases
    if entry[1] != outcome:
        raise AssertionError(f"{category!r} recorded with two outcomes: {entry[1]!r}, {outcome!r}")


def table() -> str:
    rows = ["| fault injected / bad input tried | cases | outcome |", "|---|---:|---|"]
    for category in sorted(RECORDS):
        cases, outcome, _ = RECORDS[category]
        rows.append(f"| {category} | {cases} | {outcome} |")
    return "\n".join(rows)


def documented_table() -> str | None:
    if not DOC.exists():
        return None
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def write_table() -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")
