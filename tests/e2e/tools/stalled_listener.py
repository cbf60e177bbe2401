"""Run inside the compose network (no docker-proxy buffering in between): a listener
that reads nothing until a line arrives on stdin, then prints the ids it still gets."""

import json
import socket
import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

url, after = sys.argv[1], sys.argv[2]
sock = socket.create_connection(("websocket-hub", 8765))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
with connect(f"{url}?after={after}", sock=sock, max_queue=2, compression=None, ping_interval=None) as websocket:
    print("connected", flush=True)
    sys.stdin.readline()
    ids = []
    try:
        while True:
            ids.append(json.loads(websocket.recv(timeout=30))["id"])
    except ConnectionClosed as closed:
        print(json.dumps({"ids": ids, "closed": str(closed)}), flush=True)
    except TimeoutError:
        print(json.dumps({"ids": ids, "closed": None}), flush=True)
