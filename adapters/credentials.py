"""Per-device MQTT credentials for a fleet: a hashed Mosquitto password file and a secrets file.

Plaintext passwords exist only in `secrets.json` (mode 0600) in a folder that git ignores;
the broker sees PBKDF2-SHA512 hashes in Mosquitto's `$7$` format.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from contracts.fleet import Fleet
from contracts.simulation import SIMULATOR_USER

BACKEND_USER = "backend"
# Device passwords are 32 random bytes, so key stretching adds nothing but connect time for
# thousands of devices; Mosquitto's own default of 101 iterations is kept.
PBKDF2_ITERATIONS = 101


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


@dataclass(frozen=True)
class Credentials:
    backend_password: str
    devices: dict[str, str]
    # The simulator's control-plane session (contracts/simulation.py); None in a secrets file
    # written before it existed (`python -m stack credentials` adds it, keeping the others).
    simulator_password: str | None = None

    @property
    def all_users(self) -> dict[str, str]:
        users = {BACKEND_USER: self.backend_password, **self.devices}
        if self.simulator_password:
            users[SIMULATOR_USER] = self.simulator_password
        return users


def generate(fleet: Fleet, out_dir: Path, keep_existing: bool = True) -> Credentials:
    """Write `passwd` and `secrets.json` for the fleet. Existing passwords are kept so that a
    running broker and a restarted simulator keep agreeing."""
    taken = {BACKEND_USER, SIMULATOR_USER} & {d.id for d in fleet.devices}
    if taken:
        raise ValueError(f"a device may not be called {sorted(taken)[0]!r}: a service user is")
    out_dir.mkdir(parents=True, exist_ok=True)
    old = load(out_dir) if keep_existing and (out_dir / "secrets.json").exists() else None
    devices = {
        d.id: (old.devices.get(d.id) if old else None) or secrets.token_urlsafe(32)
        for d in fleet.devices
    }
    creds = Credentials(
        backend_password=(old.backend_password if old else None) or secrets.token_urlsafe(32),
        devices=devices,
        simulator_password=(old.simulator_password if old else None) or secrets.token_urlsafe(32),
    )
    secrets_path = out_dir / "secrets.json"
    raw = {
        "backend": creds.backend_password,
        "simulator": creds.simulator_password,
        "devices": creds.devices,
    }
    secrets_path.write_text(json.dumps(raw, indent=1))
    secrets_path.chmod(0o600)
    lines = [f"{user}:{mosquitto_hash(pw)}" for user, pw in creds.all_users.items()]
    passwd = out_dir / "passwd"
    passwd.write_text("\n".join(lines) + "\n")
    # The broker may run as user `mosquitto`: it must be able to read the hashes.
    passwd.chmod(0o644)
    return creds


def load(out_dir: Path) -> Credentials:
    raw = json.loads((out_dir / "secrets.json").read_text())
    return Credentials(
        backend_password=raw["backend"],
        devices=dict(raw["devices"]),
        simulator_password=raw.get("simulator"),
    )


def credentials_dir() -> Path:
    return Path(os.environ.get("LIJIA_CREDENTIALS_DIR", "var/credentials"))
