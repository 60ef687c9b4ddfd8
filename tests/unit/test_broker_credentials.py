"""The broker's identity file (dynamic-security.json) that `python -m stack credentials` writes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from adapters import credentials
from contracts.fleet import Fleet, parse_fleet
from stack.acl import may_publish, may_receive, may_subscribe, policy_from_document
from stack.broker import generate_credentials, render_config


def _fleet(*devices: tuple[str, str]) -> Fleet:
    return parse_fleet(
        {
            "devices": [
                {"id": device_id, "kind": kind, "name_en": device_id, "name_zh": "设备",
                 "position": {"x": 1, "y": 1}}
                for device_id, kind in devices
            ]
        }
    )  # fmt: skip


FLEET = _fleet(("gate-a", "gate"), ("stereo-a", "stereo"))


def test_each_device_is_bound_to_its_own_client_id_and_role(tmp_path: Path) -> None:
    creds = generate_credentials(FLEET, tmp_path)
    document = json.loads(credentials.broker_file(tmp_path).read_text())
    clients = {c["username"]: c for c in document["clients"]}
    assert set(clients) == {"backend", "simulator", "gate-a", "stereo-a"}
    assert clients["gate-a"]["clientid"] == "gate-a"
    assert clients["stereo-a"]["clientid"] == "stereo-a"
    # Services run several sessions, with public ids of their own.
    assert "clientid" not in clients["backend"] and "clientid" not in clients["simulator"]
    # Only hashes: no password of secrets.json is in the broker's file.
    text = credentials.broker_file(tmp_path).read_text()
    assert not [p for p in creds.all_users.values() if p in text]
    roles = {r["rolename"]: r["acls"] for r in document["roles"]}
    gate_topics = {(a["acltype"], a["topic"]) for a in roles["device:gate-a"]}
    assert gate_topics == {
        ("publishClientSend", "lijia/gate/gate-a/events"),
        ("publishClientSend", "lijia/gate/gate-a/telemetry"),
        ("publishClientSend", "lijia/gate/gate-a/state"),
        ("publishClientSend", "lijia/gate/gate-a/command-results"),
        ("subscribePattern", "lijia/gate/gate-a/commands"),
        ("publishClientReceive", "lijia/gate/gate-a/commands"),
    }
    assert document["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    policy = policy_from_document(document)
    assert may_publish(policy, "stereo-a", "lijia/stereo/stereo-a/telemetry")
    assert not may_publish(policy, "stereo-a", "lijia/gate/stereo-a/telemetry")
    assert not may_subscribe(policy, "stereo-a", "lijia/gate/gate-a/commands")
    assert may_receive(policy, "backend", "lijia/stereo/stereo-a/events")


def test_passwords_are_kept_and_files_have_their_modes(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("stale\n")  # from before the plugin
    first = generate_credentials(_fleet(("gate-a", "gate")), tmp_path)
    second = generate_credentials(FLEET, tmp_path)
    assert second.devices["gate-a"] == first.devices["gate-a"]
    assert second.backend_password == first.backend_password
    assert second.simulator_password == first.simulator_password
    assert "stereo-a" in second.devices
    assert stat.S_IMODE((tmp_path / credentials.SECRETS_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials.broker_file(tmp_path).stat().st_mode) == 0o644
    assert not (tmp_path / "passwd").exists()


def test_a_service_without_rights_or_a_device_named_like_a_service_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="no rights"):
        credentials.generate(FLEET, tmp_path, service_rules={"backend": []})
    with pytest.raises(ValueError, match="may not be called"):
        generate_credentials(_fleet(("backend", "gate")), tmp_path)


def test_the_rendered_config_loads_the_plugin_with_these_credentials(tmp_path: Path) -> None:
    conf = render_config(port=1234, credentials_dir=tmp_path, data_dir=tmp_path / "data")
    settings = dict(line.split(" ", 1) for line in conf.splitlines() if line and line[0] != "#")
    assert settings["plugin"].endswith("/mosquitto_dynamic_security.so")
    assert Path(settings["plugin"]).is_file()
    assert settings["plugin_opt_config_file"] == str(credentials.broker_file(tmp_path.resolve()))
    # Either would be consulted too, and the first callback that does not defer decides.
    assert "password_file" not in settings and "acl_file" not in settings
    assert settings["allow_anonymous"] == "false"
