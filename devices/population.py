"""Residents as pseudonyms: a keyed hash of an index, never a name, photo or face template."""

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

    def ref(self, index: int) -> str:
        ref = self._refs.get(index)
        if ref is None:
            digest = hmac.new(self._key, str(index).encode(), hashlib.sha256).hexdigest()
            ref = self._refs[index] = f"r-{digest[:16]}"
        return ref

    def pick(self, rng: random.Random) -> str:
        return self.ref(rng.randrange(self.size))
