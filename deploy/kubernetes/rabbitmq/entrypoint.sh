#!/usr/bin/env bash
# Renders definitions.json with the user from RABBITMQ_USER and the password
# from RABBITMQ_PASSWORD_FILE, with TLS=on adds the TLS listener (30-tls.conf),
# then starts the image's own entrypoint.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
user=${RABBITMQ_USER:?RABBITMQ_USER is required}
password=$(cat "${RABBITMQ_PASSWORD_FILE:?RABBITMQ_PASSWORD_FILE is required}")
safe='^[A-Za-z0-9._~-]+$'
if [[ ! $user =~ $safe || ! $password =~ $safe ]]; then
  echo "rabbitmq: the user and password may use only letters, digits and . _ ~ -" >&2
  exit 1
fi
sed -e "s/__RABBITMQ_USER__/$user/g" -e "s/__RABBITMQ_PASSWORD__/$password/g" \
  "$here/definitions.template.json" > /etc/rabbitmq/definitions.json
cp "$here/20-suite.conf" /etc/rabbitmq/conf.d/20-suite.conf
# TLS=on: AMQPS on 5671 only (30-tls.conf), with a private copy of the key
# (the one beside the password is the secrets one-shot's, not the broker's user's).
rm -f /etc/rabbitmq/conf.d/30-tls.conf
if [[ ${TLS:-off} == on ]]; then
  secrets=$(dirname "$RABBITMQ_PASSWORD_FILE")
  mkdir -p /etc/rabbitmq/tls
  chmod 0700 /etc/rabbitmq/tls
  install -m 0644 "$secrets/rabbitmq.crt" /etc/rabbitmq/tls/rabbitmq.crt
  install -m 0600 "$secrets/rabbitmq.key" /etc/rabbitmq/tls/rabbitmq.key
  chown -R rabbitmq:rabbitmq /etc/rabbitmq/tls
  cp "$here/30-tls.conf" /etc/rabbitmq/conf.d/30-tls.conf
fi
chown rabbitmq:rabbitmq /etc/rabbitmq/definitions.json
chmod 600 /etc/rabbitmq/definitions.json
exec docker-entrypoint.sh "$@"
