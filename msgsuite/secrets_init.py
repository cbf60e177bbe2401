"""Creates the suite's passwords on first start, so none is written in the repository.

    python -m msgsuite.secrets_init DIR NAME [NAME ...]

Each NAME becomes DIR/NAME holding the value of the environment variable
NAME in upper case when it is set (from .env), else a random password; a file
that exists already is kept (a restart keeps the passwords the database and
broker were created with).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path


def ensure_secrets(directory: Path, names: list[str]) -> list[str]:
    """Returns the names it created."""
    created = []
    for name in names:
        path = directory / name
        if path.exists() and path.read_text(encoding="utf-8").strip():
            continue
        temporary = path.with_suffix(".tmp")
        value = os.environ.get(name.upper()) or secrets.token_urlsafe(24)
        temporary.write_text(value, encoding="utf-8")
        # Readable by every container that mounts the volume; nothing else mounts it.
        os.chmod(temporary, 0o444)
        os.replace(temporary, path)
        created.append(name)
    return created


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    created = ensure_secrets(Path(argv[0]), argv[1:])
    print(f"secrets: created {', '.join(created)}" if created else "secrets: all present, none created")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
