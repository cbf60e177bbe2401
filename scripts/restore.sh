#!/usr/bin/env bash
# Restores a backup made by scripts/backup.sh into the database of a running
# suite, and gives the restored stream a new epoch.
#
#   scripts/restore.sh [-p PROJECT] FILE
#
# The compose project is PROJECT, else what docker compose itself would use
# (COMPOSE_PROJECT_NAME, .env, the `name:` of docker-compose.yml). Steps:
#   1. check that FILE is a pg_dump archive of the suite (nothing is stopped before);
#   2. stop the writers and the hub, so nothing writes during the restore and
#      the hub forgets the epoch it follows;
#   3. pg_restore --clean --if-exists --single-transaction (all or nothing),
#      then a new epoch for the stream, then the migrate service (a backup of
#      an older version gets the migrations it lacks);
#   4. start again what was running.
# Why a new epoch: the restored total is lower than the one listeners have
# seen, so the ids after it will be reused. With the old epoch a listener
# would skip them as already seen; with a new one the hub replays the
# restored stream to every listener from id 1, as after a recreated database.
set -euo pipefail

source "$(dirname "$0")/project-and-file.sh" "$@"
[ -f "$file" ] && [ -r "$file" ] || { echo "restore.sh: cannot read $file" >&2; exit 2; }

cd "$(dirname "$0")/.."
compose() { docker compose ${project[@]+"${project[@]}"} "$@"; }
# Runs a shell command in the database container as the suite's database user.
in_database() {
  compose exec -T database sh -c "export PGUSER=\"\$POSTGRES_USER\" PGDATABASE=\"\$POSTGRES_DB\"
    PGPASSWORD=\$(cat \"\$POSTGRES_PASSWORD_FILE\" 2>/dev/null); export PGPASSWORD
    $1"
}
# The archive is copied to a file in the container: pg_restore needs to seek in it.
with_archive() {
  in_database "archive=\$(mktemp) || exit 1
    cat >\"\$archive\" && $1
    status=\$?
    rm -f \"\$archive\"
    exit \$status" <"$file"
}

if [ -z "$(compose ps --status running --quiet database 2>/dev/null)" ]; then
  echo "restore.sh: the database of compose project ${project[1]:-${COMPOSE_PROJECT_NAME:-(default)}} is not running" >&2
  exit 1
fi

contents=$(with_archive 'pg_restore --list "$archive"' 2>/dev/null) || {
  echo "restore.sh: $file is not a pg_dump archive (make one with scripts/backup.sh)" >&2
  exit 2
}
grep -q 'TABLE DATA public stream ' <<<"$contents" && grep -q 'TABLE DATA public messages ' <<<"$contents" || {
  echo "restore.sh: $file holds no stream and messages tables: not a backup of the suite" >&2
  exit 2
}

writers=(grpc-server rest-server rabbitmq-server websocket-hub)
running=()
for service in $(compose ps --status running --services); do
  for writer in "${writers[@]}"; do
    if [ "$service" = "$writer" ]; then running+=("$service"); fi
  done
done
restart_running() {
  if [ ${#running[@]} -gt 0 ]; then
    echo "restore.sh: starting ${running[*]}"
    # --no-deps: the database is up and migrate has run; only these start.
    compose up --detach --no-deps "${running[@]}" || {
      echo "restore.sh: starting ${running[*]} failed; see docker compose ps and logs" >&2
      return 1
    }
  fi
}

echo "restore.sh: stopping ${writers[*]}"
compose stop "${writers[@]}"

echo "restore.sh: restoring $file"
if ! with_archive 'pg_restore --clean --if-exists --single-transaction --exit-on-error --dbname="$PGDATABASE" "$archive"'; then
  echo "restore.sh: the restore failed and changed nothing" >&2
  restart_running || true
  exit 1
fi
# From here on the restored rows are in place: a failure leaves the writers
# stopped, because with the backup's epoch listeners would skip reused ids.
epoch=$(in_database "psql -X -q -v ON_ERROR_STOP=1 -tA -c 'UPDATE stream SET epoch = gen_random_uuid() RETURNING epoch, total'") || {
  echo "restore.sh: the data is restored but the new epoch was not set; the writers and the hub stay stopped." >&2
  echo "restore.sh: run this script again." >&2
  exit 1
}
echo "restore.sh: the stream has a new epoch ${epoch%|*} and a total of ${epoch#*|}"

compose run --rm --no-deps -T migrate || {
  echo "restore.sh: the migrations failed on the restored database; the writers and the hub stay stopped" >&2
  exit 1
}
restart_running
echo "restore.sh: done"
