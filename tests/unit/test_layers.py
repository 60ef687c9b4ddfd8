"""The console's allow-list, which import-linter's deny-lists cannot say: ui/ imports the
contract and the API client (with its result types), and nothing else of ours (a new adapter
is not let in silently)."""

from __future__ import annotations

import grimp

OURS = ("contracts", "adapters", "devices", "backend", "ui", "stack", "scenarios", "bench", "tests")


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    return top in ("ui", "contracts") or module in (
        "adapters",
        "adapters.api_client",
        "adapters.api_types",
    )


def test_the_console_imports_only_the_contract_and_the_api_client() -> None:
    graph = grimp.build_graph(*OURS)
    found = {
        (importer, imported)
        for importer in graph.find_children("ui") | graph.find_descendants("ui")
        for imported in graph.find_modules_directly_imported_by(importer)
        if not _allowed(imported)
    }
    assert not found, sorted(found)


def test_the_rule_refuses_another_adapter() -> None:
    assert _allowed("adapters.api_client") and _allowed("contracts.text")
    assert not _allowed("adapters.mqtt") and not _allowed("backend.models")
