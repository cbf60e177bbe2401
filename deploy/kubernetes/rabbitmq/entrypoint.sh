#!/usr/bin/env bash
# Renders the broker's definitions (users, permissions, queues) and its main
# config file, then starts the image's own entrypoint.
#
# Users: the administrator RABBITMQ_USER (management UI) with the password in
# RABBITMQ_PASSWORD_FILE, and one user per role whose passwords are the files
# beside it: publisher (amqp_publisher_password: the clients), consumer
# (amqp_consumer_password: rabbitmq-server) and dead-letters
# (amqp_dead_letters_password: the dead-letters tool). Their permissions are in
# definitions.template.json.
#
# The root filesystem is read-only: what is rendered goes to /run/rabbitmq (a
# tmpfs, or an emptyDir on Kubernetes), and RABBITMQ_CONFIG_FILE points there.
#
# TLS=on adds the AMQPS listener (30-tls.conf, appended to the rendered config)
# with a private copy of the key: the one among the secrets is the secrets
# one-shot's file, not the broker user's.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
rendered=/run/rabbitmq
user=${RABBITMQ_USER:?RABBITMQ_USER is required}
admin_file=${RABBITMQ_PASSWORD_FILE:?RABBITMQ_PASSWORD_FILE is required}
secrets=$(dirname "$admin_file")
safe='^[A-Za-z0-9._~-]+$'
if [[ ! $user =~ $safe ]]; then
  echo "rabbitmq: the user may use only letters, digits and . _ ~ -" >&2
  exit 1
fi
substitutions=(-e "s/__RABBITMQ_USER__/$user/g")
for pair in RABBITMQ_PASSWORD:"$admin_file" \
  AMQP_PUBLISHER_PASSWORD:"$secrets/amqp_publisher_password" \
  AMQP_CONSUMER_PASSWORD:"$secrets/amqp_consumer_password" \
  AMQP_DEAD_LETTERS_PASSWORD:"$secrets/amqp_dead_letters_password"; do
  placeholder=${pair%%:*} file=${pair#*:}
  password=$(cat "$file") || { echo "rabbitmq: cannot read $file" >&2; exit 1; }
  if [[ ! $password =~ $safe ]]; then
    echo "rabbitmq: the password in $file may use only letters, digits and . _ ~ -" >&2
    exit 1
  fi
  substitutions+=(-e "s/__${placeholder}__/$password/g")
done
umask 077
sed "${substitutions[@]}" "$here/definitions.template.json" > "$rendered/definitions.json"
sed -e "s|__RENDERED__|$rendered|g" "$here/20-suite.conf" > "$rendered/rabbitmq.conf"
if [[ ${TLS:-off} == on ]]; then
  mkdir -p "$rendered/tls"
  install -m 0644 "$secrets/rabbitmq.crt" "$rendered/tls/rabbitmq.crt"
  install -m 0600 "$secrets/rabbitmq.key" "$rendered/tls/rabbitmq.key"
  sed -e "s|/etc/rabbitmq/tls|$rendered/tls|g" "$here/30-tls.conf" >> "$rendered/rabbitmq.conf"
fi
if [ "$(id -u)" = 0 ]; then  # started as root: the image's entrypoint drops to rabbitmq
  chown -R rabbitmq:rabbitmq "$rendered"
fi
export RABBITMQ_CONFIG_FILE=$rendered/rabbitmq.conf
exec docker-entrypoint.sh "$@"
