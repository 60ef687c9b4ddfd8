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

    def ref(self, index: int) -> str:
        digest = hmac.new(self._key, str(index).encode(), hashlib.sha256).hexdigest()
        return f"r-{digest[:16]}"

    def pick(self, rng: random.Random) -> str:
        return self.ref(rng.randrange(self.size))
