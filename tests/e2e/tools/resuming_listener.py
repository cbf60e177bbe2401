"""Run on the suite's network: a listener that starts on one hub replica and, whenever its
connection ends, resumes with after=<last id>&epoch=<epoch> on any address the hub's
name resolves to. Once a line with an id arrives on stdin it stops at that id (or 120 s
later) and prints one JSON line: the ids it received and the addresses it connected to.

    python resuming_listener.py FIRST_ADDRESS HUB_NAME [AFTER]

With TLS=on it speaks wss and checks the hub's certificate (TLS_CA_FILE) for HUB_NAME,
whichever replica's address it connects to.
"""

import json
import os
import socket
import ssl
import sys
import threading
import time

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

PORT = 8765
TLS = os.environ.get("TLS") == "on"
CONTEXT = ssl.create_default_context(cafile=os.environ["TLS_CA_FILE"]) if TLS else None
first, name = sys.argv[1], sys.argv[2]
last_id = int(sys.argv[3]) if len(sys.argv) > 3 else 0
TOKEN = os.environ.get("HUB_TOKEN")  # the listeners' token, for a hub with AUTH=on
epoch = None
until: list[int] = []  # set once by the stdin reader


def read_until() -> None:
    line = sys.stdin.readline()
    until.append(int(line) if line.strip() else 0)


def candidates() -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(name, PORT, type=socket.SOCK_STREAM)})
    except OSError:
        return []


def done() -> bool:
    return bool(until) and last_id >= until[0]


threading.Thread(target=read_until, daemon=True).start()
ids: list[int] = []
addresses: list[str] = []
address, turn, deadline = first, 0, None
while not done():
    if until and deadline is None:
        deadline = time.monotonic() + 120
    if deadline is not None and time.monotonic() > deadline:
        break
    query = f"after={last_id}" + (f"&epoch={epoch}" if epoch else "")
    try:
        with connect(
            f"{'wss' if TLS else 'ws'}://{address}:{PORT}/notifications?{query}",
            ssl=CONTEXT,
            server_hostname=name if TLS else None,
            additional_headers={"Authorization": f"Bearer {TOKEN}"} if TOKEN else None,
            open_timeout=5,
            compression=None,
            ping_interval=2,
            ping_timeout=4,
        ) as websocket:
            addresses.append(address)
            print(f"connected to {address} after {last_id}", file=sys.stderr, flush=True)
            while not done():
                try:
                    frame = json.loads(websocket.recv(timeout=1))
                except TimeoutError:
                    if deadline is not None and time.monotonic() > deadline:
                        break
                    continue
                ids.append(int(frame["id"]))
                last_id, epoch = int(frame["id"]), str(frame["epoch"])
    except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as error:
        print(f"connection to {address} ended: {type(error).__name__}", file=sys.stderr, flush=True)
        time.sleep(0.5)
        # Any replica will do: the one after this address among those the name resolves to now.
        now = candidates()
        if now:
            address = now[turn % len(now)]
            turn += 1
print(json.dumps({"ids": ids, "addresses": addresses}), flush=True)
