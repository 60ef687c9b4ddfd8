"""Mosquitto ACL files (the subset broker_config/acl uses): parsing, and who may do what."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"

    def allows_read(self) -> bool:
        return self in (Access.READ, Access.READWRITE)

    def allows_write(self) -> bool:
        return self in (Access.WRITE, Access.READWRITE)


@dataclass(frozen=True)
class Rule:
    """One `topic` or `pattern` line: an access right on a topic filter."""

    access: Access
    filter: str


@dataclass(frozen=True)
class Acl:
    """A parsed ACL file. `user_rules` come from `topic` lines; `patterns` apply to every user."""

    user_rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    patterns: tuple[Rule, ...] = ()

    def rules_for(self, username: str | None) -> tuple[Rule, ...]:
        if not username:
            # No anonymous access exists in this project, and `topic` lines before any `user`
            # line (Mosquitto's anonymous rules) are refused by the parser: nothing to grant.
            return ()
        rules = self.user_rules.get(username, ())
        # A user name containing a wildcard or a separator would turn `%u` into a wider filter
        # (user `+` would write every device's topics); Mosquitto skips patterns for such
        # names too (CVE-2017-7650).
        if any(c in username for c in "+#/"):
            return rules
        return rules + tuple(
            Rule(p.access, p.filter.replace("%u", username)) for p in self.patterns
        )


class AclError(ValueError):
    """A line the parser does not understand. Raised rather than skipped: an ignored line could
    be a restriction the operator relies on."""


def parse_acl(text: str) -> Acl:
    user_rules: dict[str, list[Rule]] = {}
    patterns: list[Rule] = []
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
        if keyword not in ("topic", "pattern"):
            raise AclError(f"line {number}: unknown keyword {keyword!r}")
        rule = _parse_rule(rest, number)
        if keyword == "pattern":
            if "%c" in rule.filter:
                # The client id is chosen by the client itself; identity is the user name only.
                raise AclError(f"line {number}: %c patterns are not supported")
            patterns.append(rule)
        elif current_user is None:
            raise AclError(f"line {number}: `topic` before any `user` (anonymous rules)")
        else:
            user_rules[current_user].append(rule)
    return Acl(
        user_rules={user: tuple(rules) for user, rules in user_rules.items()},
        patterns=tuple(patterns),
    )


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
    if not topic_filter or not is_valid_filter(topic_filter):
        raise AclError(f"line {number}: invalid topic filter {topic_filter!r}")
    return Rule(access, topic_filter)


def load_acl(path: Path) -> Acl:
    return parse_acl(path.read_text(encoding="utf-8"))


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


def may_publish(acl: Acl, username: str | None, topic: str) -> bool:
    return any(
        r.access.allows_write() and topic_matches(r.filter, topic) for r in acl.rules_for(username)
    )


def may_receive(acl: Acl, username: str | None, topic: str) -> bool:
    return any(
        r.access.allows_read() and topic_matches(r.filter, topic) for r in acl.rules_for(username)
    )


def may_subscribe(acl: Acl, username: str | None, sub_filter: str) -> bool:
    if not is_valid_filter(sub_filter):
        return False
    return any(
        r.access.allows_read() and filter_covers(r.filter, sub_filter)
        for r in acl.rules_for(username)
    )
