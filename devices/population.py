"""Residents as pseudonyms: a keyed hash of their registration, never a name, photo or template.

Each simulated resident has a raw identifier, the household registration the community's own
systems enrol them with (what a gate's local face database is keyed by). It stays inside the
simulated device: what travels is the pseudonym derived from it.
"""

from __future__ import annotations

import hashlib
import hmac
import random


class Population:
    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        # The key comes from the seed so runs are reproducible; it never leaves the simulator.
        self._key = hashlib.sha256(f"lijia-population-{seed}".encode()).digest()
        # Thousands of devices pick from the same residents: hash each one once.
        self._refs: dict[int, str] = {}

    @staticmethod
    def raw_id(index: int) -> str:
        """The resident's registration number on Lijia Street (never published)."""
        return f"LJ{index:07d}"

    def ref(self, index: int) -> str:
        ref = self._refs.get(index)
        if ref is None:
            raw = self.raw_id(index).encode()
            digest = hmac.new(self._key, raw, hashlib.sha256).hexdigest()
            ref = self._refs[index] = f"r-{digest[:16]}"
        return ref

    def pick(self, rng: random.Random) -> str:
        return self.ref(rng.randrange(self.size))

    def lasting_rng(self, name: str) -> random.Random:
        """A stream for facts that stay the same from day to day (a school's pupils), while
        the devices' own streams are reseeded each street day (devices/street.py)."""
        return random.Random(self._key + name.encode())
