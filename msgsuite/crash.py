"""A process never outlives its work: an unexpected error anywhere ends it loudly.

A thread or callback that a service depends on (the hub's follower, the
group-commit writer, a health watcher) and that dies quietly leaves a
process that looks alive and does nothing. Instead the error is logged with
its traceback and the process exits with EXIT_CRASHED, so its supervisor
(Docker's restart policy, an orchestrator) starts it again into a correct
state: the hub resumes from the table, the client from its cursor, and the
AMQP deliveries it held are redelivered.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import ParamSpec

EXIT_CRASHED = 70  # EX_SOFTWARE

log = logging.getLogger("msgsuite.crash")
P = ParamSpec("P")


def exit_now(what: str, error: BaseException) -> None:
    """Logs what died with its traceback, then ends the whole process at once."""
    log.critical("%s failed; exiting so that the service is restarted", what, exc_info=error)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_CRASHED)


def exit_on_thread_errors() -> None:
    """An exception that escapes any thread of this process ends the process."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        exit_now(f"thread {args.thread.name if args.thread else '?'}", args.exc_value)

    threading.excepthook = hook


def or_exit(what: str, function: Callable[P, None]) -> Callable[P, None]:
    """function, but an exception from it ends the process (for loop callbacks, whose errors asyncio only logs)."""

    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            function(*args, **kwargs)
        except Exception as error:
            exit_now(what, error)

    return guarded
