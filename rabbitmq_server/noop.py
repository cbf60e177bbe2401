"""python -m rabbitmq_server.noop: the consumer exactly as it runs, storing nothing (the
benchmark's no-op ceiling, see msgsuite/no_storage.py): every delivery is validated and
acknowledged after a made-up store of its batch."""

from __future__ import annotations

import sys

from msgsuite.messages import Via
from msgsuite.no_storage import NumberedRecords

from .__main__ import main

if __name__ == "__main__":
    sys.exit(main(lambda pool: NumberedRecords(Via.RABBITMQ)))
