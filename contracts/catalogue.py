"""The registry of device kinds: adding a kind is one module in contracts/kinds/ that declares
its SPEC."""

from __future__ import annotations

import importlib
import pkgutil

from contracts.kind_spec import CATALOGUE as CATALOGUE
from contracts.kind_spec import KindSpec as KindSpec
from contracts.kind_spec import StatSpec as StatSpec
from contracts.kind_spec import register_kind as register_kind
from contracts.text import Text


def get_kind(kind: str) -> KindSpec:
    load_builtin_kinds()
    try:
        return CATALOGUE[kind]
    except KeyError as exc:
        raise KeyError(f"unknown kind {kind!r}") from exc


def rule_title(kind: str, rule: str) -> Text | None:
    """The declared title of alarm rule `rule` of `kind`; None for an unknown kind or rule, or a
    rule without a title (e.g. the generic device-offline rule)."""
    spec = load_builtin_kinds().get(kind)
    return spec.rule_title(rule) if spec is not None else None


_loaded = False


def load_builtin_kinds() -> dict[str, KindSpec]:
    """Import every module in contracts.kinds once and register the KindSpec it declares (SPEC)."""
    global _loaded
    if not _loaded:
        from contracts import kinds

        for info in pkgutil.iter_modules(kinds.__path__):
            module = importlib.import_module(f"{kinds.__name__}.{info.name}")
            register_kind(module.SPEC)
        _loaded = True
    return CATALOGUE
