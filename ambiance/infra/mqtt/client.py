"""The paho client, set up from the settings: will, credentials, TLS, reconnect delays."""

from __future__ import annotations

import logging
import ssl
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ambiance.errors import ConfigError
from ambiance.infra.mqtt.settings import MqttSettings

# The package's name ("ambiance.infra.mqtt.paho", as before it was split).
_paho_log = logging.getLogger(f"{__package__}.paho")

# The status `<base>/status` says; the will says OFFLINE for us.
ONLINE = "online"
OFFLINE = "offline"


def new_client(settings: MqttSettings, status_topic: str) -> mqtt.Client:
    """A paho client (MQTT 5, callback API 2) with the last will on `status_topic`, not
    connected and with no callbacks yet. Raises ConfigError when the TLS files cannot be
    used."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.resolved_client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    # A callback that raises must never end paho's network thread; ours catch their own
    # errors, this is the net below them.
    client.suppress_exceptions = True
    if _paho_log.isEnabledFor(logging.DEBUG):
        # paho's own log, packet by packet, for troubleshooting. Not `enable_logger`: that
        # reports every dropped socket at ERROR level, which the health already says once.
        client.on_log = _log_paho
    # The will travels in the CONNECT packet, so it must be set before connecting; the
    # broker publishes it when we vanish without a DISCONNECT (crash, kill, cut cable).
    client.will_set(status_topic, OFFLINE, qos=1, retain=True)
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        _set_tls(client, settings)
    # paho types the delays as int, but uses them as plain seconds: fractions work, and
    # tests rely on them to reconnect within a fraction of a second.
    client.reconnect_delay_set(cast(int, settings.reconnect_min), cast(int, settings.reconnect_max))
    # No limit in paho: our outbox bounds what reaches it (MAX_IN_FLIGHT).
    client.max_queued_messages_set(0)
    return client


def _set_tls(client: mqtt.Client, settings: MqttSettings) -> None:
    files = [f for f in (settings.ca_file, settings.cert_file, settings.key_file) if f]
    try:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
        )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        # A missing or broken certificate file will not fix itself by retrying. ssl's
        # errors do not name the file, so the message does.
        names = ", ".join(str(f) for f in files) or "the system's CA store"
        raise ConfigError([f"mqtt: cannot use the TLS files ({names}): {exc}"]) from None
    if settings.tls_insecure:
        client.tls_insecure_set(True)


def tls_problems(settings: MqttSettings) -> list[str]:
    """What would keep the TLS files from being used, found as `new_client` would meet it
    (loading them into an SSL context), one line per field: `ambiance check` reports it,
    and `serve` refuses to start with it rather than fail when MQTT starts."""
    if settings.host is None or not settings.tls:
        return []
    files = {"ca_file": settings.ca_file, "cert_file": settings.cert_file}
    files["key_file"] = settings.key_file
    problems = []
    for field, path in files.items():
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            problems.append(f"settings: mqtt.{field}: {path} cannot be read ({exc.strerror})")
    if problems:
        return problems
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.ca_file is not None:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (ssl.SSLError, ValueError) as exc:
            problems.append(
                f"settings: mqtt.ca_file: {settings.ca_file} holds no CA certificate in PEM "
                f"form ({exc})"
            )
    if settings.cert_file is not None:
        try:
            # No password: an encrypted key would make OpenSSL ask on the terminal.
            context.load_cert_chain(settings.cert_file, settings.key_file, password=_no_password)
        except (ssl.SSLError, ValueError, _EncryptedKey) as exc:
            problems.append(
                f"settings: mqtt.cert_file, mqtt.key_file: {settings.cert_file} and "
                f"{settings.key_file} are not a client certificate and its key in PEM form "
                f"({exc or 'the key is encrypted: give one without a password'})"
            )
    return problems


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    raise _EncryptedKey()


def _log_paho(client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
    _paho_log.debug("%s", text)
