"""Creates the suite's secrets on first start, and hands each container only its own.

    python -m msgsuite.secrets_init SECRETS_DIR HOLDERS_DIR

Every secret of msgsuite.secret_plan becomes SECRETS_DIR/NAME, holding the
value of the environment variable NAME in upper case when it is set (from
.env), else a random value; a file that exists already is kept (a restart
keeps the passwords the database and broker were created with). Then each
folder HOLDERS_DIR/<holder> that is there (a mounted volume) gets a copy of
exactly the secrets that the plan lists for that holder: one listed no longer
is removed from it.

The TLS files (a private CA, a certificate and key per TLS server) are not
random strings: msgsuite.certificates makes them, once, beside the passwords.
A key's copy is 0400 (the holder runs as the one-shot's uid 10001), or 0444
in the database's and the broker's own volumes, whose servers run as another
user and copy it to a private 0600 file at start (see secret_plan).
is removed from it. A derived secret, NAME.sha256, is written afresh on every
start from the secret NAME (so a rotated token's digest follows it).
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path

from .auth import token_digest
from .certificates import ensure_certificates
from .secret_plan import (
    DIGEST_SUFFIX,
    KEY_READ_BY_ANOTHER_USER,
    SECRETS_FOR,
    TLS_SERVERS,
    every_derived,
    every_secret,
    is_tls_file,
)


def _write(path: Path, value: str, mode: int = 0o444) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)  # left by an interrupted run
    # Private until complete, then the mode it is meant to have.
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as file:
        file.write(value)
    # Readable by the container's own user; the folder is that holder's alone.
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def copy_mode(holder: str, name: str) -> int:
    """The mode of a holder's copy: keys readable by the holder's server user alone where that is ours."""
    if name.endswith(".key") and holder not in KEY_READ_BY_ANOTHER_USER:
        return 0o400
    return 0o444


def ensure_secrets(directory: Path, names: list[str]) -> list[str]:
    """Creates the secrets that are missing; returns their names."""
    created = []
    for name in names:
        path = directory / name
        if path.exists() and path.read_text(encoding="utf-8").strip():
            continue
        _write(path, os.environ.get(name.upper()) or secrets.token_urlsafe(24))
        created.append(name)
    return created


def derive_digests(directory: Path, names: list[str]) -> None:
    """Writes each NAME.sha256 from the secret NAME (kept as is when it already matches)."""
    for name in names:
        digest = token_digest((directory / name.removesuffix(DIGEST_SUFFIX)).read_text(encoding="utf-8").strip())
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != digest:
            _write(path, digest)


def hand_out(directory: Path, holders: Path, plan: dict[str, tuple[str, ...]]) -> list[str]:
    """Copies to each mounted holder folder its own secrets and removes any other; returns the holders served."""
    served = []
    for holder, names in plan.items():
        folder = holders / holder
        if not folder.is_dir():
            continue
        for name in names:
            value = (directory / name).read_text(encoding="utf-8")
            target, mode = folder / name, copy_mode(holder, name)
            if (
                not target.exists()
                or target.read_text(encoding="utf-8") != value
                or stat.S_IMODE(target.stat().st_mode) != mode
            ):
                _write(target, value, mode)
        for stale in folder.iterdir():
            if stale.is_file() and stale.name not in names:
                stale.unlink()
        served.append(holder)
    return served


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory, holders = Path(argv[0]), Path(argv[1])
    created = ensure_secrets(directory, [name for name in every_secret() if not is_tls_file(name)])
    created += ensure_certificates(directory, TLS_SERVERS)
    print(f"secrets: created {', '.join(created)}" if created else "secrets: all present, none created")
    derive_digests(directory, every_derived())
    served = hand_out(directory, holders, SECRETS_FOR)
    print(f"secrets: handed out to {', '.join(served) or 'no holder'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
