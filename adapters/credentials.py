"""Per-device MQTT credentials for a fleet: the broker's identity file and a secrets file.

Plaintext passwords exist only in `secrets.json` (mode 0600) in a folder that git ignores. The
broker reads `dynamic-security.json`, the configuration of Mosquitto's dynamic security plugin
(the embedded fallback broker reads the same file): PBKDF2-SHA512 hashes, and for every device a
client bound to its own client id (the device id) with a role of its own that reaches only
`lijia/{its kind}/{its id}/...` (contracts/topics.py). Services' rights come in as `service_rules`
(broker_config/acl, parsed by stack.acl).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from contracts.fleet import Fleet
from contracts.simulation import SIMULATOR_USER
from contracts.topics import CHANNEL_RULES, Topic

BACKEND_USER = "backend"
SERVICE_USERS = (BACKEND_USER, SIMULATOR_USER)
SECRETS_FILE = "secrets.json"
# What the broker reads (broker_config/mosquitto.conf's plugin_opt_config_file).
BROKER_FILE = "dynamic-security.json"
# Device passwords are 32 random bytes, so key stretching adds nothing but connect time for
# thousands of devices; Mosquitto's own default of 101 iterations is kept.
PBKDF2_ITERATIONS = 101
# Mosquitto 2.0's `struct mosquitto_pw`: a 12-byte salt, a SHA-512 (64-byte) digest.
SALT_BYTES = 12
DIGEST_BYTES = 64


class AclType(StrEnum):
    """The dynamic security plugin's ACL types that this project grants."""

    PUBLISH_SEND = "publishClientSend"  # the client publishes
    PUBLISH_RECEIVE = "publishClientReceive"  # the broker delivers to the client
    SUBSCRIBE_PATTERN = "subscribePattern"  # the client subscribes to a filter it covers


# What the plugin does when no ACL of the client's roles matches: nothing is allowed but
# unsubscribing. `$CONTROL/dynamic-security/#` (the plugin's administration topic) is granted
# to nobody, so the file on disk is the only way to change identities or rights.
DEFAULT_ACL_ACCESS = {
    AclType.PUBLISH_SEND.value: False,
    AclType.PUBLISH_RECEIVE.value: False,
    "subscribe": False,
    "unsubscribe": True,
}


def grants(access: str, topic_filter: str, *, shared: bool = False) -> list[dict[str, Any]]:
    """One Mosquitto ACL-file right (`read`, `write`, `readwrite` on a filter) in the plugin's
    terms. Reading is subscribing and being delivered to; `shared` also allows it as an MQTT 5
    shared subscription, which the plugin checks with its `$share/{group}/` prefix."""
    out: list[tuple[AclType, str]] = []
    if access in ("write", "readwrite"):
        out.append((AclType.PUBLISH_SEND, topic_filter))
    if access in ("read", "readwrite"):
        out.append((AclType.SUBSCRIBE_PATTERN, topic_filter))
        if shared and not topic_filter.startswith("$"):
            out.append((AclType.SUBSCRIBE_PATTERN, f"$share/+/{topic_filter}"))
        out.append((AclType.PUBLISH_RECEIVE, topic_filter))
    if not out:
        raise ValueError(f"unknown access {access!r}")
    return [{"acltype": t.value, "topic": f, "priority": 0, "allow": True} for t, f in out]


def device_rules(kind: str, device_id: str) -> list[tuple[str, str]]:
    """A device's rights: it writes its own channels and reads its own commands, on topics of
    its own kind and id only (the directions are contracts/topics.py's)."""
    return [
        ("write" if rule.publisher == "device" else "read", str(Topic(kind, device_id, channel)))
        for channel, rule in CHANNEL_RULES.items()
    ]


def device_role(device_id: str) -> str:
    # `:` cannot occur in a device id (contracts.topics.LEVEL_RE) nor in a service's name.
    return f"device:{device_id}"


def password_fields(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """The plugin's `password`, `salt`, `iterations` for a client (PBKDF2-HMAC-SHA512)."""
    salt = salt or secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return {
        "password": b64(digest).decode(),
        "salt": b64(salt).decode(),
        "iterations": PBKDF2_ITERATIONS,
    }


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


ServiceRules = Mapping[str, Sequence[tuple[str, str]]]


def broker_document(
    fleet: Fleet, creds: Credentials, service_rules: ServiceRules
) -> dict[str, Any]:
    """The dynamic security plugin's configuration for the fleet."""
    missing = set(SERVICE_USERS) - set(service_rules)
    if missing:
        raise ValueError(f"no rights for service user(s) {sorted(missing)} in the ACL")
    clients: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    service_passwords = {BACKEND_USER: creds.backend_password}
    if creds.simulator_password:
        service_passwords[SIMULATOR_USER] = creds.simulator_password
    for user, rules in service_rules.items():
        if user not in service_passwords:
            raise ValueError(f"the ACL names user {user!r}, which has no credentials")
        # Services carry no client id: they run several sessions (docs in broker_config/acl).
        clients.append(
            {
                "username": user,
                **password_fields(service_passwords[user]),
                "roles": [{"rolename": user}],
            }
        )
        acls = [g for access, f in rules for g in grants(access, f, shared=True)]
        roles.append({"rolename": user, "acls": acls})
    for device in fleet.devices:
        role = device_role(device.id)
        clients.append(
            {
                "username": device.id,
                # The plugin refuses these credentials with any other client id.
                "clientid": device.id,
                "textname": device.kind,
                **password_fields(creds.devices[device.id]),
                "roles": [{"rolename": role}],
            }
        )
        rules = device_rules(device.kind, device.id)
        roles.append({"rolename": role, "acls": [g for r in rules for g in grants(*r)]})
    return {
        "defaultACLAccess": DEFAULT_ACL_ACCESS,
        "clients": clients,
        "groups": [],
        "roles": roles,
    }


def generate(
    fleet: Fleet, out_dir: Path, *, service_rules: ServiceRules, keep_existing: bool = True
) -> Credentials:
    """Write `secrets.json` and the broker's `dynamic-security.json` for the fleet. Existing
    passwords are kept so that a running broker and a restarted simulator keep agreeing."""
    taken = set(SERVICE_USERS) & {d.id for d in fleet.devices}
    if taken:
        raise ValueError(f"a device may not be called {sorted(taken)[0]!r}: a service user is")
    out_dir.mkdir(parents=True, exist_ok=True)
    old = load(out_dir) if keep_existing and (out_dir / SECRETS_FILE).exists() else None
    devices = {
        d.id: (old.devices.get(d.id) if old else None) or secrets.token_urlsafe(32)
        for d in fleet.devices
    }
    creds = Credentials(
        backend_password=(old.backend_password if old else None) or secrets.token_urlsafe(32),
        devices=devices,
        simulator_password=(old.simulator_password if old else None) or secrets.token_urlsafe(32),
    )
    raw = {
        "backend": creds.backend_password,
        "simulator": creds.simulator_password,
        "devices": creds.devices,
    }
    _write(out_dir / SECRETS_FILE, json.dumps(raw, indent=1), 0o600)
    document = broker_document(fleet, creds, service_rules)
    # The broker may run as user `mosquitto`: it must be able to read the hashes.
    _write(out_dir / BROKER_FILE, json.dumps(document, indent=1), 0o644)
    # A `passwd` file from before the broker took its identities from BROKER_FILE would only
    # be a stale copy of the hashes.
    (out_dir / "passwd").unlink(missing_ok=True)
    return creds


def _write(path: Path, text: str, mode: int) -> None:
    # Written aside and renamed: a broker (re)starting meanwhile never reads half a file, and
    # the secrets are never readable by others, not even for an instant.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.chmod(mode)  # the umask may have narrowed it
    tmp.replace(path)


def load(out_dir: Path) -> Credentials:
    raw = json.loads((out_dir / SECRETS_FILE).read_text())
    return Credentials(
        backend_password=raw["backend"],
        devices=dict(raw["devices"]),
        simulator_password=raw.get("simulator"),
    )


def broker_file(out_dir: Path) -> Path:
    return out_dir / BROKER_FILE


def credentials_dir() -> Path:
    return Path(os.environ.get("LIJIA_CREDENTIALS_DIR", "var/credentials"))
