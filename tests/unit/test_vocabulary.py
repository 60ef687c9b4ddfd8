"""Command, command-result and alarm statuses are spelled once, in contracts/vocabulary.py.

The detector: every string literal in the source tree (contracts, backend, devices, scenarios,
ui, stack, adapters; not tests, not Alembic migrations, not docs) that is exactly a command
status or an alarm status word fails the test, unless its module is allowed that word below.
Docstrings are not literals that code compares with, so they are skipped; so are words inside
longer strings ("not published: …"). Everything else must name the enum member
(`CommandStatus.SENT`, `AlarmStatus.CLEARED`), so a status can be found, and renamed, from its
one definition.

Some of these words also belong to other vocabularies, each spelled in its own module. Rather
than guessing from context (a file "about commands" may hold both vocabularies, as the devices
do), the allow-list names those modules and the words they may use, with the vocabulary each
one defines or speaks. It is meant to stay short: a new entry needs a new vocabulary.
"""

from __future__ import annotations

import ast
from pathlib import Path

from contracts.vocabulary import AlarmStatus, CommandResultStatus, CommandStatus

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("contracts", "backend", "devices", "scenarios", "ui", "stack", "adapters")
DEFINITION = "contracts/vocabulary.py"
STATUS_WORDS = (
    {s.value for s in CommandStatus}
    | {s.value for s in AlarmStatus}
    | {s.value for s in CommandResultStatus}
)

# Module (or folder, ending in "/") -> the status-like words it may spell, and why.
OTHER_VOCABULARIES: dict[str, tuple[set[str], str]] = {
    "contracts/kinds/medicine_cabinet.py": ({"failed"}, "a cooler's state in its telemetry"),
    "devices/kinds/medicine_cabinet.py": ({"failed"}, "the same cooler state, reported"),
    "devices/runner.py": ({"done"}, "the simulator's phase once --hours is reached"),
    "scenarios/model.py": ({"cleared"}, "what an alarm expectation waits for: raised | cleared"),
    "scenarios/expectations.py": ({"cleared"}, "the same expectation's state, checked"),
    "ui/i18n.py": (STATUS_WORDS, "the English labels of the console's texts"),
}


def _allowed(path: str, word: str) -> bool:
    if path == DEFINITION:
        return True
    return any(
        (path == where or (where.endswith("/") and path.startswith(where))) and word in words
        for where, (words, _why) in OTHER_VOCABULARIES.items()
    )


def _sources() -> list[Path]:
    files: list[Path] = []
    for name in SOURCE_DIRS:
        folder = ROOT / name
        if folder.is_dir():
            files += [p for p in folder.rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def _status_literals(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in STATUS_WORDS
        and id(node) not in docstrings
    ]


def test_status_words_are_spelled_only_where_they_are_defined() -> None:
    found = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for line, word in _status_literals(path.read_text(encoding="utf-8")):
            if not _allowed(rel, word):
                found.append(f"{rel}:{line}: {word!r}")
    assert not found, "use the enum from contracts/vocabulary.py:\n" + "\n".join(found)


def test_the_detector_sees_literals_and_skips_docstrings() -> None:
    source = '"""pending"""\nx = "pending"\ny = f"{x} sent"\nz = ("timed-out", "other")\n'
    assert _status_literals(source) == [(2, "pending"), (4, "timed-out")]
    assert not _allowed("backend/ingest/persist.py", "sent")
    assert not _allowed("devices/kinds/gate.py", "rejected")
    assert _allowed("devices/kinds/medicine_cabinet.py", "failed")
    assert not _allowed("devices/kinds/medicine_cabinet.py", "succeeded")


def test_the_words_are_those_the_api_and_the_database_have_always_used() -> None:
    assert [s.value for s in CommandStatus] == [
        "pending",
        "sent",
        "accepted",
        "succeeded",
        "rejected",
        "failed",
        "timed-out",
    ]
    assert [s.value for s in AlarmStatus] == ["active", "acknowledged", "cleared"]
    assert [s.value for s in CommandResultStatus] == ["accepted", "done", "rejected", "failed"]
    timed_out: str = CommandStatus.TIMED_OUT  # a member is its own string, in JSON and in SQL
    assert timed_out == "timed-out" and f"{timed_out}" == "timed-out"
