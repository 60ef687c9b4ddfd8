"""Form fields generated from a payload's JSON Schema, so new kinds need no console code."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.i18n import lang


def resolve(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
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


def _parse_list(text: str, item_type: str | None) -> list[Any]:
    """A list typed as comma-separated values; numbers stay text when they do not parse, so the
    backend names the field that is wrong."""
    out: list[Any] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if item_type == "integer":
                out.append(int(part))
                continue
            if item_type == "number":
                out.append(float(part))
                continue
        except ValueError:
            pass
        out.append(part)
    return out


def schema_form(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """Render one input per property and return the values (None for empty optional fields)."""
    values: dict[str, Any] = {}
    required = set(schema.get("required", []))
    optional = " (可选)" if lang() == "zh" else " (optional)"
    for name, raw in schema.get("properties", {}).items():
        prop = resolve(schema, raw)
        label = name + ("" if name in required else optional)
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
        elif prop.get("type") == "array":
            items = resolve(schema, prop.get("items", {}))
            hint = "1, 2, 3" if items.get("type") in ("integer", "number") else "a, b"
            text = st.text_input(
                label,
                value=", ".join(map(str, default or [])),
                key=wkey,
                help=help_text,
                placeholder=hint,
            )
            values[name] = _parse_list(text or "", items.get("type")) or None
        else:
            text = st.text_input(label, value=default or "", key=wkey, help=help_text)
            values[name] = text or None
    return {k: v for k, v in values.items() if v is not None}


def example(schema: dict[str, Any]) -> dict[str, Any]:
    """A plausible payload for the raw JSON editor: defaults, else the smallest valid value of
    each required field (text fields get a placeholder the operator replaces)."""
    out: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, raw in schema.get("properties", {}).items():
        prop = resolve(schema, raw)
        default = raw.get("default", prop.get("default"))
        if default is not None:
            out[name] = default
        elif name not in required:
            continue
        elif "enum" in prop:
            out[name] = prop["enum"][0]
        elif prop.get("type") == "boolean":
            out[name] = False
        elif prop.get("type") in ("integer", "number"):
            out[name] = prop.get("minimum", 0)
        elif prop.get("type") == "array":
            items = resolve(schema, prop.get("items", {}))
            out[name] = [items.get("minimum", 1)] if items.get("type") == "integer" else []
        elif prop.get("format") == "date":
            out[name] = "2026-01-01"
        elif prop.get("format") == "date-time":
            out[name] = "2026-01-01T08:00:00Z"
        else:
            out[name] = "..."
    return out
