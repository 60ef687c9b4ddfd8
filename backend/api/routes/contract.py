"""The wire contract as data: kinds, their event/telemetry/command JSON Schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from contracts.catalogue import load_builtin_kinds

router = APIRouter(prefix="/contract", tags=["contract"])


@router.get("/kinds")
def kinds() -> dict[str, Any]:
    return {
        name: {
            "label": spec.label.to_json(),
            "label_en": spec.label.en,
            "label_zh": spec.label.zh,
            **spec.json_schemas(),
        }
        for name, spec in sorted(load_builtin_kinds().items())
    }
