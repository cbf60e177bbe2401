"""Each service's own log lines, on stderr: one line per event, as text or (LOG_FORMAT=json) JSON.

JSON lines carry timestamp, service, level, logger and message, plus the
traceback when there is one, so a log collector can follow one message from
client to hub by its id or key. The websocket client's notification lines go
to stdout and never pass through here.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from .settings import optional

FORMATS = ("text", "json")


def configure(service: str) -> logging.Logger:
    level = optional("LOG_LEVEL", "INFO").upper()
    log_format = optional("LOG_FORMAT", "text").lower()
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # pika and the HTTP stacks log every connection attempt at INFO; their
    # warnings still come through.
    for noisy in ("pika", "websockets", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger(service)
    if log_format not in FORMATS:
        log.error("cannot start: environment variable LOG_FORMAT must be text or json, not %r", log_format)
        raise SystemExit(2)
    return log
