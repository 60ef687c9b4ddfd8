"""Who may do what at the broker: the services' Mosquitto ACL file (broker_config/acl) parsed, and
the dynamic security plugin's rules (dynamic-security.json) evaluated as the plugin does.

broker_config/acl is the human-readable source of the services' rights; devices' rights are
generated per device (adapters.credentials.device_rules). Both end up in one dynamic-security.json,
which Mosquitto and the embedded broker (stack/embedded_broker.py, through `Policy`) enforce.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from adapters.credentials import DEFAULT_ACL_ACCESS, AclType, grants


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"


@dataclass(frozen=True)
class Rule:
    """One `topic` line: an access right on a topic filter."""

    access: Access
    filter: str


@dataclass(frozen=True)
class Acl:
    """A parsed ACL file: each service user's `topic` lines."""

    user_rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    def service_rules(self) -> dict[str, list[tuple[str, str]]]:
        """In the form adapters.credentials.generate takes."""
        return {
            user: [(r.access.value, r.filter) for r in rules]
            for user, rules in self.user_rules.items()
        }

    def policy(self) -> Policy:
        """These users' rights as the plugin gets them (adapters.credentials.broker_document)."""
        return Policy(
            {
                user: tuple(
                    Grant(g["acltype"], g["topic"])
                    for r in rules
                    for g in grants(r.access.value, r.filter, shared=True)
                )
                for user, rules in self.user_rules.items()
            }
        )


class AclError(ValueError):
    """A line the parser does not understand. Raised rather than skipped: an ignored line could
    be a restriction the operator relies on."""


def parse_acl(text: str) -> Acl:
    user_rules: dict[str, list[Rule]] = {}
    current_user: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword == "user":
            if not rest:
                raise AclError(f"line {number}: `user` without a name")
            current_user = rest
            user_rules.setdefault(current_user, [])
            continue
        if keyword == "pattern":
            # The dynamic security plugin has no %u/%c substitution: each device gets a role
            # of its own, generated from contracts/topics.py (adapters.credentials).
            raise AclError(
                f"line {number}: `pattern` lines are not supported: device rights are generated"
            )
        if keyword != "topic":
            raise AclError(f"line {number}: unknown keyword {keyword!r}")
        rule = _parse_rule(rest, number)
        if current_user is None:
            raise AclError(f"line {number}: `topic` before any `user` (anonymous rules)")
        user_rules[current_user].append(rule)
    return Acl(user_rules={user: tuple(rules) for user, rules in user_rules.items()})


def _parse_rule(rest: str, number: int) -> Rule:
    # Mosquitto's grammar: `topic [read|write|readwrite|deny] FILTER`; without an access word
    # the right is readwrite. `deny` is refused: ignoring it would grant what it meant to deny.
    access_word, _, topic_filter = rest.partition(" ")
    try:
        access = Access(access_word)
    except ValueError:
        if access_word == "deny":
            raise AclError(f"line {number}: `deny` rules are not supported") from None
        access, topic_filter = Access.READWRITE, rest
    topic_filter = topic_filter.strip()
    if not topic_filter or not is_valid_filter(topic_filter) or "%" in topic_filter:
        raise AclError(f"line {number}: invalid topic filter {topic_filter!r}")
    return Rule(access, topic_filter)


def load_acl(path: Path) -> Acl:
    return parse_acl(path.read_text(encoding="utf-8"))


# --- the dynamic security plugin's rules ------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One ACL of a role: allow (or deny) one action on a topic filter."""

    acltype: str
    topic: str
    allow: bool = True
    priority: int = 0


@dataclass(frozen=True)
class Policy:
    """Every user's ACLs (the union of its roles, highest priority first), from a
    dynamic-security.json whose default access denies (policy_from_document checks it)."""

    grants: Mapping[str, tuple[Grant, ...]] = field(default_factory=dict)

    def decide(
        self, username: str | None, acltypes: tuple[str, ...], matches: Callable[[Grant], bool]
    ) -> bool:
        """The first of the user's ACLs of these types whose topic `matches` decides, as in the
        plugin; none matches: denied. Unknown and anonymous users have no ACLs."""
        for grant in self.grants.get(username or "", ()):
            if grant.acltype in acltypes and matches(grant):
                return grant.allow
        return False


def policy_from_document(document: Mapping[str, Any]) -> Policy:
    """Roles and clients of a dynamic-security.json. Groups and an anonymous group are refused:
    this project generates neither, and ignoring one would change who may do what."""
    if document.get("groups") or document.get("anonymousGroup"):
        raise ValueError("groups are not supported")
    roles: dict[str, list[Grant]] = {}
    for role in document.get("roles", []):
        roles[role["rolename"]] = [
            Grant(str(a["acltype"]), str(a["topic"]), bool(a.get("allow", False)),
                  int(a.get("priority", 0)))
            for a in role.get("acls", [])
        ]  # fmt: skip
    by_user: dict[str, tuple[Grant, ...]] = {}
    for client in document.get("clients", []):
        names = [r["rolename"] for r in sorted(
            client.get("roles", []), key=lambda r: -int(r.get("priority", -1)))]  # fmt: skip
        user_grants: list[Grant] = []
        for name in names:
            user_grants += sorted(roles.get(name, []), key=lambda g: -g.priority)
        by_user[str(client["username"])] = tuple(user_grants)
    default = dict(DEFAULT_ACL_ACCESS)
    for key, value in (document.get("defaultACLAccess") or {}).items():
        default[str(key)] = bool(value)
    if any(default[k] for k in (AclType.PUBLISH_SEND, AclType.PUBLISH_RECEIVE, "subscribe")):
        # Not needed here, and allowing by default would turn every miss below into a grant.
        raise ValueError("defaultACLAccess must deny publishing, delivery and subscribing")
    return Policy(by_user)


def is_valid_filter(topic_filter: str) -> bool:
    """MQTT 3.1.1 §4.7.1: `#` only as the whole last level, `+` only as a whole level."""
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Does a filter match a concrete topic name (no wildcards in `topic`)?"""
    # MQTT 3.1.1 §4.7.2: a leading wildcard never matches a `$` topic, so `#` is not `$SYS/#`.
    if topic.startswith("$") != topic_filter.startswith("$"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for index, level in enumerate(f_levels):
        if level == "#":
            # `a/#` also matches `a` itself (§4.7.1.2).
            return True
        if index >= len(t_levels):
            return False
        if level != "+" and level != t_levels[index]:
            return False
    return len(f_levels) == len(t_levels)


def filter_covers(acl_filter: str, sub_filter: str) -> bool:
    """Is every topic that `sub_filter` can match also matched by `acl_filter`?

    A subscription to `lijia/+/+/events` must not pass a rule for `lijia/gate/+/events`, so
    wildcards in the subscription are only covered by the same or wider wildcards in the rule.
    """
    if sub_filter.startswith("$") != acl_filter.startswith("$"):
        return False
    a_levels = acl_filter.split("/")
    s_levels = sub_filter.split("/")
    for index, level in enumerate(a_levels):
        if level == "#":
            return True
        if index >= len(s_levels):
            return False
        sub_level = s_levels[index]
        if sub_level == "#":
            # Only a `#` in the rule covers `#` (handled above); `+` or a name covers less.
            return False
        if level == "+":
            continue
        if sub_level != level:  # includes sub `+` against a literal level
            return False
    return len(a_levels) == len(s_levels)


def may_publish(policy: Policy, username: str | None, topic: str) -> bool:
    return policy.decide(username, (AclType.PUBLISH_SEND,), lambda g: topic_matches(g.topic, topic))


def may_receive(policy: Policy, username: str | None, topic: str) -> bool:
    return policy.decide(
        username, (AclType.PUBLISH_RECEIVE,), lambda g: topic_matches(g.topic, topic)
    )


def may_subscribe(policy: Policy, username: str | None, sub_filter: str) -> bool:
    if not is_valid_filter(sub_filter):
        return False
    return policy.decide(
        username,
        (AclType.SUBSCRIBE_PATTERN, "subscribeLiteral"),
        lambda g: (
            g.topic == sub_filter
            if g.acltype == "subscribeLiteral"
            else filter_covers(g.topic, sub_filter)
        ),
    )
