#!/usr/bin/env bash
# Saves the database of a running suite to FILE, in pg_dump's custom format.
#
#   scripts/backup.sh [-p PROJECT] FILE
#
# pg_dump runs inside the database container (docker compose exec), so no
# local PostgreSQL is needed. The compose project is PROJECT, else what docker
# compose itself would use (COMPOSE_PROJECT_NAME, .env, the `name:` of
# docker-compose.yml). The suite keeps running: the dump is one consistent
# snapshot. Restore it with scripts/restore.sh.
set -euo pipefail

source "$(dirname "$0")/project-and-file.sh" "$@"
[ -d "$(dirname -- "$file")" ] || { echo "backup.sh: no such directory: $(dirname -- "$file")" >&2; exit 2; }

cd "$(dirname "$0")/.."
compose() { docker compose ${project[@]+"${project[@]}"} "$@"; }

if [ -z "$(compose ps --status running --quiet database 2>/dev/null)" ]; then
  echo "backup.sh: the database of compose project ${project[1]:-${COMPOSE_PROJECT_NAME:-(default)}} is not running" >&2
  exit 1
fi

partial="$file.partial"
trap 'rm -f -- "$partial"' EXIT
# pg_dump writes to a file in the container first: an archive written to a
# pipe has no table of contents offsets, which makes restoring it slower and
# fragile. The password is for a database that asks for one on the socket too.
compose exec -T database sh -c '
  archive=$(mktemp) || exit 1
  PGPASSWORD=$(cat "$POSTGRES_PASSWORD_FILE" 2>/dev/null) \
    pg_dump --format=custom --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" --file="$archive" \
    && cat "$archive"
  status=$?
  rm -f "$archive"
  exit $status' >"$partial"
mv -- "$partial" "$file"
echo "backup.sh: saved the database to $file ($(wc -c <"$file" | tr -d ' ') bytes)"
