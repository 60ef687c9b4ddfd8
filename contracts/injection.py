"""The envelope of an injected event (made outside the device), validated against the contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contracts.catalogue import get_kind
from contracts.envelope import Envelope, new_id
from contracts.topics import Channel
from contracts.validation import ContractError, check_unicode, validate_data


class InvalidEnvelope(ContractError):
    """The data is valid but an envelope field is not (e.g. a correlation id too long)."""


def injected_envelope(
    kind: str,
    device_id: str,
    channel: Channel,
    event_type: str,
    data: dict[str, Any],
    *,
    correlation_id: str | None = None,
    run_id: str | None = None,
    ts: datetime | None = None,
) -> Envelope:
    """Seq 0, no boot, a fresh event id, flagged `injected`; `data` is validated against the
    kind's model. Raises ContractError (data) or InvalidEnvelope (envelope fields), whose
    reasons name fields, never the values.

    `ts` is the street's time (contracts/clock.py `street_now`; the backend passes its street
    clock's, a drill the street's clock it follows): an injected event happens on the street,
    now. Left out, wall time: right only for a street without a simulator."""
    model = validate_data(get_kind(kind), channel, event_type, _checked(data))
    try:
        return Envelope(
            event_id=new_id(),
            device_id=device_id,
            kind=kind,
            type=event_type,
            seq=0,
            ts=ts or datetime.now(UTC),
            correlation_id=correlation_id,
            injected=True,
            run_id=run_id,
            data=model.model_dump(mode="json", exclude_none=True),
        )
    except ValidationError as exc:
        fields = ",".join(sorted({".".join(map(str, e["loc"])) for e in exc.errors()}))
        raise InvalidEnvelope(f"invalid envelope: {fields}") from None


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    check_unicode(data)
    return data
