"""Behaviour of each simulated kind, one module each; modules register on import."""

from __future__ import annotations

import importlib
import pkgutil

from devices.behaviour import Behaviour

BEHAVIOURS: dict[str, type[Behaviour]] = {}


def register(cls: type[Behaviour]) -> type[Behaviour]:
    BEHAVIOURS[cls.kind] = cls
    return cls


def behaviour_for(kind: str) -> type[Behaviour]:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    try:
        return BEHAVIOURS[kind]
    except KeyError as exc:
        raise KeyError(f"no simulated behaviour for kind {kind!r}") from exc
