"""The pure-Python fallback broker (amqtt, MQTT 3.1.1) with Mosquitto's passwd and ACL files."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import AMQTTError, MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from adapters.credentials import PBKDF2_ITERATIONS
from stack.acl import Acl, load_acl, may_publish, may_receive, may_subscribe

# A fixed name: run with `python -m`, __name__ would be "__main__".
log = logging.getLogger("stack.embedded_broker")

# Mosquitto's `$7$` hash is PBKDF2-HMAC-SHA512 with SHA-512's own 64-byte output.
_DIGEST_BYTES = 64
# Marks a stored session with the user who created it (see EmbeddedBroker).
_OWNER_ATTRIBUTE = "lijia.owner"


@dataclass(frozen=True)
class PasswordHash:
    """One `$7$ITERATIONS$SALT$HASH` entry of a Mosquitto password file."""

    iterations: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        parts = text.split("$")
        # "$7$101$salt$hash".split("$") == ["", "7", "101", "salt", "hash"]
        if len(parts) != 5 or parts[0] or parts[1] != "7":
            raise ValueError("not a Mosquitto $7$ (PBKDF2-SHA512) hash")
        try:
            iterations = int(parts[2])
            salt = base64.b64decode(parts[3], validate=True)
            digest = base64.b64decode(parts[4], validate=True)
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"malformed $7$ hash: {exc}") from None
        if iterations < 1 or not salt or len(digest) != _DIGEST_BYTES:
            raise ValueError("malformed $7$ hash: bad iterations, salt or digest length")
        return cls(iterations, salt, digest)

    def verify(self, password: str) -> bool:
        candidate = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), self.salt, self.iterations, dklen=_DIGEST_BYTES
        )
        return hmac.compare_digest(candidate, self.digest)


def load_password_file(path: Path) -> dict[str, PasswordHash]:
    """Read `user:$7$...` lines. A malformed line stops the broker instead of silently locking a
    user out (or, worse, being read some other way)."""
    users: dict[str, PasswordHash] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, hashed = line.partition(":")
        if not sep or not username:
            raise ValueError(f"{path}:{number}: expected user:hash")
        try:
            users[username] = PasswordHash.parse(hashed)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return users


# Spent on unknown user names, so that a miss costs as much time as a wrong password and
# response times do not reveal which user names exist.
_DECOY = PasswordHash(PBKDF2_ITERATIONS, b"lijia-decoy-salt", bytes(_DIGEST_BYTES))


# amqtt ships no type information, so its base classes are `Any` to mypy.
class PasswordFileAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Accept a CONNECT only with a user name and the password the passwd file hashes."""

    @dataclass
    class Config:
        password_file: str = ""
        # The ACL is needed here too: a Last Will is published by the broker on the client's
        # behalf, without passing the publish check, so its topic is checked at connect time.
        acl_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._users: dict[str, PasswordHash] = {}
        self._acl = Acl()
        self.reload()

    def reload(self) -> None:
        config: PasswordFileAuthPlugin.Config = self.config
        if not config.password_file or not config.acl_file:
            raise ValueError("PasswordFileAuthPlugin needs password_file and acl_file")
        # Both files are read before either is swapped in, so a failed reload changes nothing.
        users = load_password_file(Path(config.password_file))
        acl = load_acl(Path(config.acl_file))
        self._users, self._acl = users, acl
        log.info("%d user(s) loaded from %s", len(self._users), config.password_file)

    async def authenticate(self, *, session: Session) -> bool:
        who = f"client {session.client_id!r} from {session.remote_address}"
        username, password = session.username, session.password
        # False, never None: amqtt ignores a None answer, and no anonymous access exists.
        if not username or password is None:
            log.warning("refused %s: no user name or password", who)
            return False
        entry = self._users.get(username)
        password_ok = (entry or _DECOY).verify(password)
        if entry is None or not password_ok:
            log.warning("refused %s: bad user name or password (user %r)", who, username)
            return False
        if session.will_flag and not self._will_allowed(username, session.will_topic):
            log.warning("refused %s (user %r): Last Will on %r", who, username, session.will_topic)
            return False
        log.debug("%s authenticated as %r", who, username)
        return True

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session) -> None:
        # Logged here, not in authenticate(): EmbeddedBroker authenticates every CONNECT twice.
        log.info(
            "client %r from %s connected as %r",
            client_id,
            client_session.remote_address,
            client_session.username,
        )

    def _will_allowed(self, username: str, topic: str | None) -> bool:
        if not topic or "+" in topic or "#" in topic or topic.startswith("$"):
            return False
        return may_publish(self._acl, username, topic)


class AclTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Mosquitto's acl_file semantics: write rules gate publishing, read rules gate subscribing
    and every single delivery."""

    @dataclass
    class Config:
        acl_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._acl = Acl()
        self.reload()

    def reload(self) -> None:
        config: AclTopicPlugin.Config = self.config
        if not config.acl_file:
            raise ValueError("AclTopicPlugin needs acl_file")
        self._acl = load_acl(Path(config.acl_file))
        log.info("ACL loaded from %s", config.acl_file)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        if session is None or not topic:
            return False
        username = session.username
        if action == Action.PUBLISH:
            allowed = may_publish(self._acl, username, topic)
        elif action == Action.SUBSCRIBE:
            allowed = may_subscribe(self._acl, username, topic)
        elif action == Action.RECEIVE:
            # Checked per message and per subscriber, like Mosquitto's read check on delivery.
            return may_receive(self._acl, username, topic)
        else:
            return False
        if not allowed:
            log.info("denied %s %s on %r", username, action, topic)
        return allowed


class EmbeddedBroker(Broker):  # type: ignore[misc]
    """amqtt's broker, except that a CONNECT must authenticate before it touches any session.

    amqtt 0.12 looks up the stored session by client id first, deleting it (clean session) or
    copying the new credentials onto it (persistent session), and asks the auth plugins only
    afterwards; a refused CONNECT still takes over a live connection with that id. A client
    without any password could so silently unsubscribe the backend by reusing its client id.
    Mosquitto authenticates first. This override is amqtt 0.12.1's `_initialize_client_session`
    with authentication moved to the front (a refused client gets CONNACK "not authorized" and
    never reaches the session table); everything after it is amqtt's own code, which calls the
    auth plugins a second time, harmlessly.
    """

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except MQTTError:
            await writer.close()
            raise
        # The caller (amqtt's _client_connected) logs these errors and releases the connection.
        if not await self._authenticate(session, self.listeners_config["default"]):
            await _refuse(writer)
            raise AMQTTError(f"client {session.client_id!r} not authorized")

        username = session.username
        if session.clean_session:
            if session.client_id:
                await self._delete_session(session.client_id)
            else:
                session.client_id = gen_client_id()
            session.parent = 0
        elif session.client_id in self._sessions:
            stored, _ = self._sessions[session.client_id]
            # Any user could otherwise resume another user's persistent session and receive the
            # messages queued for it: a stored session stays with the user who created it.
            owner = stored.attributes.get(_OWNER_ATTRIBUTE)
            if owner != username:
                log.warning(
                    "refused client %r (user %r): its stored session belongs to %r",
                    session.client_id,
                    username,
                    owner,
                )
                await _refuse(writer)
                raise AMQTTError(f"client {session.client_id!r} not authorized")
            for name in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "will_retain",
                "keep_alive",
                "username",
                "password",
            ):
                setattr(stored, name, getattr(session, name))
            session = stored
            session.parent = 1
        else:
            session.parent = 0
        session.attributes[_OWNER_ATTRIBUTE] = username

        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session


async def _refuse(writer: WriterAdapter) -> None:
    # CONNACK 0x05 "not authorized", as Mosquitto answers; the peer may already be gone.
    with contextlib.suppress(OSError):
        await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
        await writer.close()


def _plugin_path(cls: type) -> str:
    # amqtt imports plugins by dotted path; using the class's own module keeps a single copy of
    # this module when it runs as `python -m stack.embedded_broker` (module `__main__`).
    return f"{cls.__module__}.{cls.__qualname__}"


def broker_config(port: int, passwd: Path, acl: Path, host: str = "127.0.0.1") -> dict[str, Any]:
    bind_host = f"[{host}]" if ":" in host else host
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{bind_host}:{port}"}},
        # An explicit plugin map replaces amqtt's defaults, which include anonymous access.
        "plugins": {
            _plugin_path(PasswordFileAuthPlugin): {
                "password_file": str(passwd.resolve()),
                "acl_file": str(acl.resolve()),
            },
            _plugin_path(AclTopicPlugin): {"acl_file": str(acl.resolve())},
        },
    }


def reload_files(broker: Broker) -> None:
    """What SIGHUP does, as for Mosquitto: re-read passwd and ACL (new devices, new passwords)."""
    for plugin in broker.plugins_manager.plugins:
        if isinstance(plugin, PasswordFileAuthPlugin | AclTopicPlugin):
            try:
                plugin.reload()
            except (OSError, ValueError):
                # Keep serving with the previous files rather than dying on a half-written one.
                log.exception("reload failed; keeping the previous configuration")


async def start_broker(port: int, passwd: Path, acl: Path, host: str = "127.0.0.1") -> Broker:
    """A started broker; the caller owns it and must `await broker.shutdown()`."""
    broker = EmbeddedBroker(broker_config(port, passwd, acl, host))
    await broker.start()
    log.info("embedded broker listening on %s:%d", host, port)
    return broker


async def serve(
    port: int,
    passwd: Path,
    acl: Path,
    host: str = "127.0.0.1",
    stop: asyncio.Event | None = None,
) -> None:
    """Run the broker until `stop` is set or the task is cancelled."""
    broker = await start_broker(port, passwd, acl, host)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await broker.shutdown()
        log.info("embedded broker stopped")


async def _run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    broker = await start_broker(args.port, args.passwd, args.acl, args.host)
    loop.add_signal_handler(signal.SIGHUP, reload_files, broker)
    try:
        await stop.wait()
    finally:
        await broker.shutdown()
        log.info("embedded broker stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--passwd", type=Path, required=True, help="Mosquitto password file")
    parser.add_argument("--acl", type=Path, required=True, help="Mosquitto ACL file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # amqtt logs every connection and packet at INFO; our plugins log what an operator needs.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
