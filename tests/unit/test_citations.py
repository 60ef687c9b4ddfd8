"""Comments and docstrings cite only documents that exist in the repository.

A citation is any `name.md` or `folder/name.md` in a source, config or script file; it must
name a file of the repository, by its path from the root or from the citing file's folder, or
a page of docs/ by its bare name."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("contracts", "adapters", "devices", "backend", "ui", "stack", "scenarios", "bench")
OTHER = ("broker_config/mosquitto.conf", "scripts/test.sh", "scripts/up.sh", "docker-compose.yml")
CITATION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")


def _files() -> list[Path]:
    found = [p for part in SOURCES for p in (ROOT / part).rglob("*.py")]
    return found + [ROOT / name for name in OTHER if (ROOT / name).exists()]


def _exists(cited: str, citing: Path) -> bool:
    candidates = (ROOT / cited, citing.parent / cited, ROOT / "docs" / cited)
    return any(c.is_file() for c in candidates)


def test_every_cited_document_exists() -> None:
    missing = []
    for path in _files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for cited in CITATION.findall(line):
                if not _exists(cited, path):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {cited}")
    assert not missing, "cited documents that are not in the repository:\n" + "\n".join(missing)


def test_the_detector_sees_a_missing_document(tmp_path: Path) -> None:
    line = "# measured there (docs/measured-facts.md), not in FACTS.md"
    assert CITATION.findall(line) == ["docs/measured-facts.md", "FACTS.md"]
    assert _exists("docs/measured-facts.md", ROOT / "backend" / "x.py")
    assert not _exists("FACTS.md", ROOT / "backend" / "x.py")
