"""Count MQTT messages in a process of its own: `python -m bench.counter HOST PORT FILTER`.

Prints `ready` once subscribed, then, when its stdin closes, the number of messages seen.
A subscriber inside the benchmark's process would compete with the service for the GIL
and slow down the very thing measured; this one costs the service nothing.
"""

from __future__ import annotations

import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> int:
    host, port, topic_filter = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    count = 0
    subscribed = threading.Event()

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(topic_filter, qos=1)

    def on_subscribe(*_: object) -> None:
        subscribed.set()

    def on_message(*_: object) -> None:
        nonlocal count
        count += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port)
    client.loop_start()
    if not subscribed.wait(10):
        print("no subscription", flush=True)
        return 1
    print("ready", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    client.disconnect()
    client.loop_stop()
    print(count, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
