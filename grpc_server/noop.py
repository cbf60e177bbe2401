"""python -m grpc_server.noop: the server exactly as it runs, storing nothing (the benchmark's
no-op ceiling, see msgsuite/no_storage.py): SendMessage and SendMessageBatch answer with made-up records."""

from __future__ import annotations

import sys

from msgsuite.messages import Via
from msgsuite.no_storage import NothingStored

from .__main__ import main

if __name__ == "__main__":
    sys.exit(main(lambda settings: NothingStored(Via.GRPC)))
