"""Form fields generated from a payload's JSON Schema, so new kinds need no console code."""

from __future__ import annotations

from typing import Any

import streamlit as st


def _resolve(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and unwrap Optional (anyOf with null) to the real field schema."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return {
            **schema.get("$defs", {}).get(name, {}),
            **{k: v for k, v in prop.items() if k != "$ref"},
        }
    options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    if options:
        return {**options[0], **{k: v for k, v in prop.items() if k != "anyOf"}}
    return prop


def schema_form(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """Render one input per property and return the values (None for empty optional fields)."""
    values: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(schema, raw)
        label = name + ("" if name in required else " (optional)")
        help_text = prop.get("description")
        default = raw.get("default", prop.get("default"))
        wkey = f"{key}.{name}"
        if "enum" in prop:
            opts = list(prop["enum"])
            if name not in required and default is None:
                opts = ["", *opts]
            index = opts.index(default) if default in opts else 0
            values[name] = st.selectbox(label, opts, index=index, key=wkey, help=help_text) or None
        elif prop.get("type") == "boolean":
            values[name] = st.checkbox(label, value=bool(default), key=wkey, help=help_text)
        elif prop.get("type") in ("integer", "number"):
            # Streamlit wants every numeric argument of one type; JSON Schema bounds are often
            # ints (ge=0, le=1) on float fields. An optional field without default starts empty.
            num = int if prop["type"] == "integer" else float
            lo, hi = prop.get("minimum"), prop.get("maximum")
            if default is not None:
                start: int | float | None = num(default)
            elif name in required:
                start = num(lo if lo is not None else 0)
            else:
                start = None
            values[name] = st.number_input(
                label,
                min_value=None if lo is None else num(lo),
                max_value=None if hi is None else num(hi),
                value=start,
                step=num(1) if num is int else 0.01,
                key=wkey,
                help=help_text,
            )
        else:
            text = st.text_input(label, value=default or "", key=wkey, help=help_text)
            values[name] = text or None
    return {k: v for k, v in values.items() if v is not None}
