"""Who may listen, and how many at once: the bearer token (AUTH=on) and the listener caps, before the handshake.

A listener presents its token in `Authorization: Bearer <token>` or, from a
browser (which cannot set headers on a WebSocket), as the subprotocol
`bearer.<token>` beside `msgsuite`: `new WebSocket(url, ["msgsuite",
"bearer." + token])`; the hub then selects `msgsuite`, so the token is never
echoed. Not in the query string: URLs end up in logs and browser history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.typing import Subprotocol

from msgsuite import metrics
from msgsuite.auth import TokenCheck, bearer_token
from msgsuite.settings import integer

SUBPROTOCOL = Subprotocol("msgsuite")
TOKEN_SUBPROTOCOL_PREFIX = "bearer."

REFUSED = metrics.counter(
    "msgsuite_hub_connections_refused",
    "Connections refused before the handshake: reason=unauthenticated, address_limit or total_limit",
    ["reason"],
)


def offered_subprotocols(headers: Headers) -> list[str]:
    return [
        item.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for item in value.split(",") if item.strip()
    ]


def presented_token(headers: Headers) -> str | None:
    """The token of the Authorization header, else of a `bearer.<token>` subprotocol."""
    token = bearer_token(headers.get("Authorization"))
    if token is not None:
        return token
    for offered in offered_subprotocols(headers):
        if offered.startswith(TOKEN_SUBPROTOCOL_PREFIX) and len(offered) > len(TOKEN_SUBPROTOCOL_PREFIX):
            return offered[len(TOKEN_SUBPROTOCOL_PREFIX) :]
    return None


def select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """`msgsuite` when offered (a browser that sent its token as a subprotocol needs one selected), else none."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


@dataclass(frozen=True)
class ListenerLimits:
    total: int  # listeners connected to this hub at once
    per_address: int  # of them from one client address

    @classmethod
    def from_env(cls) -> ListenerLimits:
        return cls(integer("HUB_MAX_LISTENERS", 10000), integer("HUB_MAX_LISTENERS_PER_ADDRESS", 1000))


@dataclass
class ListenerSlots:
    """Counts connections from the moment they pass the checks until their socket is gone.

    A slot is taken before the handshake and given back when the connection
    closes, whatever happened in between (a handshake that failed too).
    """

    limits: ListenerLimits
    taken: int = 0
    by_address: Counter[str] = field(default_factory=Counter)

    def refusal(self, address: str) -> str | None:
        """Why a new connection from `address` cannot be taken now, or None."""
        if self.by_address[address] >= self.limits.per_address:
            return "address_limit"
        if self.taken >= self.limits.total:
            return "total_limit"
        return None

    def take(self, address: str, connection: ServerConnection) -> None:
        self.taken += 1
        self.by_address[address] += 1
        # Resolved when the TCP connection is gone (what connection.wait_closed() awaits).
        connection.connection_lost_waiter.add_done_callback(lambda _: self._release(address))

    def _release(self, address: str) -> None:
        self.taken -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


@dataclass
class HubAccess:
    tokens: TokenCheck
    slots: ListenerSlots


def open_access() -> HubAccess:
    """No token, no practical cap: what a hub built without settings (the tests) uses."""
    return HubAccess(TokenCheck(None), ListenerSlots(ListenerLimits(total=1_000_000, per_address=1_000_000)))
