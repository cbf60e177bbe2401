#!/usr/bin/env bash
# The database container's entrypoint: with TLS=on, PostgreSQL serves TLS and
# refuses plain-text TCP connections; then the image's own entrypoint starts it.
#
# PostgreSQL refuses a key that is not owned by its own user with mode 0600
# (or root's with 0640, group postgres). The copy beside the password
# (/run/suite-secrets) is the secrets one-shot's (another uid, read-only), so
# the key is copied into a private folder on a tmpfs (/run/suite-tls),
# owned by postgres with mode 0600, never written to a disk. The pg_hba.conf
# used with TLS=on is written there too: socket connections inside the
# container as initdb allows them, TCP only over TLS with a password.
set -euo pipefail

if [[ ${TLS:-off} == on ]]; then
  secrets=$(dirname "${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE is required}")  # beside the password
  private=/run/suite-tls/database
  mkdir -p "$private"
  chmod 0700 "$private"
  install -m 0644 "$secrets/database.crt" "$private/server.crt"
  install -m 0600 "$secrets/database.key" "$private/server.key"
  printf '%s\n' \
    '# Written by database/entrypoint.sh (TLS=on): TCP only over TLS.' \
    'local all all trust' \
    'hostssl all all all scram-sha-256' > "$private/pg_hba.conf"
  if [[ $(id -u) == 0 ]]; then
    chown -R postgres:postgres "$private"
  fi
  set -- "$@" \
    -c ssl=on \
    -c "ssl_cert_file=$private/server.crt" \
    -c "ssl_key_file=$private/server.key" \
    -c ssl_min_protocol_version=TLSv1.2 \
    -c "hba_file=$private/pg_hba.conf"
fi
exec docker-entrypoint.sh "$@"
