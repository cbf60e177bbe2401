"""One line per event, on stderr, with the service's name."""

from __future__ import annotations

import logging

from .settings import optional


def configure(service: str) -> logging.Logger:
    logging.basicConfig(
        level=optional("LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s {service} %(levelname)s %(message)s",
    )
    # pika and the HTTP stacks log every connection attempt at INFO; their
    # warnings still come through.
    for noisy in ("pika", "websockets", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(service)
