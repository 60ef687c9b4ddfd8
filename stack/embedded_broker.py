"""The pure-Python fallback broker (amqtt, MQTT 3.1.1) with the same identities and rights as our
Mosquitto: it reads the dynamic-security.json that `python -m stack credentials` writes."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import signal
from collections.abc import Mapping
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

from adapters.credentials import DIGEST_BYTES, PBKDF2_ITERATIONS, SALT_BYTES
from contracts.topics import CHANNEL_RULES, Topic, TopicError
from stack.acl import Policy, may_publish, may_receive, may_subscribe, policy_from_document

# A fixed name: run with `python -m`, __name__ would be "__main__".
log = logging.getLogger("stack.embedded_broker")

# Marks a stored session with the user who created it (see EmbeddedBroker).
_OWNER_ATTRIBUTE = "lijia.owner"


@dataclass(frozen=True)
class PasswordHash:
    """A client's `password`, `salt`, `iterations` in dynamic-security.json (PBKDF2-SHA512)."""

    iterations: int
    salt: bytes
    digest: bytes

    @classmethod
    def from_client(cls, client: Mapping[str, Any]) -> PasswordHash:
        try:
            iterations = int(client["iterations"])
            salt = base64.b64decode(client["salt"], validate=True)
            digest = base64.b64decode(client["password"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ValueError(f"malformed password fields: {exc!r}") from None
        # The plugin skips a client whose salt or digest has another length; we refuse the file.
        if iterations < 1 or len(salt) != SALT_BYTES or len(digest) != DIGEST_BYTES:
            raise ValueError("malformed password fields: bad iterations, salt or digest length")
        return cls(iterations, salt, digest)

    def verify(self, password: str) -> bool:
        candidate = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), self.salt, self.iterations, dklen=DIGEST_BYTES
        )
        return hmac.compare_digest(candidate, self.digest)


@dataclass(frozen=True)
class Identity:
    """A client of dynamic-security.json: its password and, for a device, its only client id."""

    password: PasswordHash
    client_id: str | None = None


@dataclass(frozen=True)
class BrokerFile:
    """What the broker enforces: who is who, and who may do what."""

    identities: Mapping[str, Identity]
    policy: Policy


def load_broker_file(path: Path) -> BrokerFile:
    """Read dynamic-security.json. A malformed client stops the broker instead of silently
    locking a user out (or, worse, being read some other way)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    identities: dict[str, Identity] = {}
    for number, client in enumerate(document.get("clients", [])):
        username = client.get("username")
        if not isinstance(username, str) or not username:
            raise ValueError(f"{path}: client #{number} has no user name")
        if client.get("disabled"):
            continue
        try:
            password = PasswordHash.from_client(client)
        except ValueError as exc:
            raise ValueError(f"{path}: user {username!r}: {exc}") from None
        client_id = client.get("clientid")
        identities[username] = Identity(password, str(client_id) if client_id else None)
    try:
        policy = policy_from_document(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return BrokerFile(identities, policy)


# Spent on unknown user names, so that a miss costs as much time as a wrong password and
# response times do not reveal which user names exist.
_DECOY = PasswordHash(PBKDF2_ITERATIONS, bytes(SALT_BYTES), bytes(DIGEST_BYTES))


# amqtt ships no type information, so its base classes are `Any` to mypy.
class DynsecAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Accept a CONNECT only with a known user name, its password and, for a client bound to a
    client id (every device), that client id: as Mosquitto's dynamic security plugin."""

    @dataclass
    class Config:
        broker_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._identities: Mapping[str, Identity] = {}
        # The rights are needed here too: a Last Will is published by the broker on the
        # client's behalf, without passing the publish check, so its topic is checked now.
        self._policy = Policy()
        self.reload()

    def reload(self) -> None:
        config: DynsecAuthPlugin.Config = self.config
        if not config.broker_file:
            raise ValueError("DynsecAuthPlugin needs broker_file")
        loaded = load_broker_file(Path(config.broker_file))
        self._identities, self._policy = loaded.identities, loaded.policy
        log.info("%d user(s) loaded from %s", len(self._identities), config.broker_file)

    async def authenticate(self, *, session: Session) -> bool:
        who = f"client {session.client_id!r} from {session.remote_address}"
        username, password = session.username, session.password
        # False, never None: amqtt ignores a None answer, and no anonymous access exists.
        if not username or password is None:
            log.warning("refused %s: no user name or password", who)
            return False
        entry = self._identities.get(username)
        password_ok = (entry.password if entry else _DECOY).verify(password)
        if entry is None or not password_ok:
            log.warning("refused %s: bad user name or password (user %r)", who, username)
            return False
        if entry.client_id is not None and session.client_id != entry.client_id:
            # Said after the password check, so it tells nothing to one who lacks it.
            log.warning("refused %s: user %r may connect only as its own client id", who, username)
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
        return may_publish(self._policy, username, topic)


class DynsecTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """The dynamic security plugin's ACL semantics: publishClientSend gates publishing,
    subscribePattern subscribing, publishClientReceive every single delivery."""

    @dataclass
    class Config:
        broker_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._policy = Policy()
        self.reload()

    def reload(self) -> None:
        config: DynsecTopicPlugin.Config = self.config
        if not config.broker_file:
            raise ValueError("DynsecTopicPlugin needs broker_file")
        self._policy = load_broker_file(Path(config.broker_file)).policy
        log.info("rights loaded from %s", config.broker_file)

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
            allowed = may_publish(self._policy, username, topic)
        elif action == Action.SUBSCRIBE:
            allowed = may_subscribe(self._policy, username, topic)
        elif action == Action.RECEIVE:
            # Checked per message and per subscriber, like Mosquitto's read check on delivery.
            return may_receive(self._policy, username, topic)
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

    async def _handle_message_delivery(
        self, client_session: Session, handler: BrokerProtocolHandler, wait_deliver: Any
    ) -> bool:
        """A retained publish is dropped (and logged) on every device channel the contract does
        not retain (contracts/topics.py: only `state`), so nothing stale waits there for the next
        subscriber. Mosquitto cannot refuse by retain flag; the backend discards those there.
        An empty one passes: it only clears."""
        message = wait_deliver.result()
        packet = getattr(message, "publish_packet", None)
        if packet and packet.retain_flag and message.data and _not_retained(message.topic):
            log.warning(
                "dropped a retained publish from %r on %r: only state is retained",
                client_session.client_id,
                message.topic,
            )
            return True
        result: bool = await super()._handle_message_delivery(client_session, handler, wait_deliver)
        return result

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


def _not_retained(topic: str) -> bool:
    try:
        return not CHANNEL_RULES[Topic.parse(topic).channel].retained
    except TopicError:
        return False  # not a device topic (the simulator's clock announcements are retained)


async def _refuse(writer: WriterAdapter) -> None:
    # CONNACK 0x05 "not authorized", as Mosquitto answers; the peer may already be gone.
    with contextlib.suppress(OSError):
        await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
        await writer.close()


def _plugin_path(cls: type) -> str:
    # amqtt imports plugins by dotted path; using the class's own module keeps a single copy of
    # this module when it runs as `python -m stack.embedded_broker` (module `__main__`).
    return f"{cls.__module__}.{cls.__qualname__}"


def broker_config(port: int, broker_file: Path, host: str = "127.0.0.1") -> dict[str, Any]:
    bind_host = f"[{host}]" if ":" in host else host
    path = str(broker_file.resolve())
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{bind_host}:{port}"}},
        # An explicit plugin map replaces amqtt's defaults, which include anonymous access.
        "plugins": {
            _plugin_path(DynsecAuthPlugin): {"broker_file": path},
            _plugin_path(DynsecTopicPlugin): {"broker_file": path},
        },
    }


def reload_files(broker: Broker) -> None:
    """What SIGHUP does: re-read dynamic-security.json (new devices, new passwords). Mosquitto
    2.0.11's plugin reads it only at start; this broker can do better at no cost."""
    for plugin in broker.plugins_manager.plugins:
        if isinstance(plugin, DynsecAuthPlugin | DynsecTopicPlugin):
            try:
                plugin.reload()
            except (OSError, ValueError):
                # Keep serving with the previous file rather than dying on a half-written one.
                log.exception("reload failed; keeping the previous configuration")


async def start_broker(port: int, broker_file: Path, host: str = "127.0.0.1") -> Broker:
    """A started broker; the caller owns it and must `await broker.shutdown()`."""
    broker = EmbeddedBroker(broker_config(port, broker_file, host))
    await broker.start()
    log.info("embedded broker listening on %s:%d", host, port)
    return broker


async def serve(
    port: int,
    broker_file: Path,
    host: str = "127.0.0.1",
    stop: asyncio.Event | None = None,
) -> None:
    """Run the broker until `stop` is set or the task is cancelled."""
    broker = await start_broker(port, broker_file, host)
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
    broker = await start_broker(args.port, args.credentials, args.host)
    loop.add_signal_handler(signal.SIGHUP, reload_files, broker)
    try:
        await stop.wait()
    finally:
        await broker.shutdown()
        log.info("embedded broker stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--credentials", type=Path, required=True, help="dynamic-security.json (stack credentials)"
    )
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
