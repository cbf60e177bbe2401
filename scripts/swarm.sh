#!/usr/bin/env bash
# The suite on Docker Swarm (deploy/swarm/stack.yml), on this node:
#
#   bash scripts/swarm.sh up   [--stack NAME]  build the images, join swarm mode if the engine is not in it
#                                              (a single-node swarm), create the secrets, deploy, wait until
#                                              every service runs all its replicas healthy
#   bash scripts/swarm.sh test [--stack NAME]  the swarm end-to-end test (tests/e2e/test_swarm.py) against it
#   bash scripts/swarm.sh down [--stack NAME]  remove that stack, its secrets, volumes and network; leave
#                                              swarm mode only if `up` initialised it and nothing else runs
#
# NAME defaults to msgsuite. Only a stack this script deployed is ever touched
# (its services carry the label io.msgsuite.deployed-by). Environment:
# MSGSUITE_VERSION (image tag, default dev), POSTGRES_PASSWORD / RABBITMQ_PASSWORD and the clients'
# tokens REST_CLIENT_TOKEN / GRPC_CLIENT_TOKEN / LISTENER_TOKEN (used when a secret is created; random
# otherwise; the servers get only each token's SHA-256, NAME.sha256), SWARM_WAIT_SECONDS (default 300).
# The tokens of the clients that run outside the stack are written to $STATE_DIR/<stack>-tokens/ (mode 0600).
# A failed `up` removes what it created, swarm mode included; a stack that existed before is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

OWNER_LABEL=io.msgsuite.deployed-by=scripts/swarm.sh
STACK_FILE=deploy/swarm/stack.yml
STATE_DIR=${MSGSUITE_SWARM_STATE:-$PWD/build/swarm}
SWARM_MARKER=$STATE_DIR/swarm-initialised # holds the id of the swarm `up` created
# The bootstrap superuser's, the broker admin's and one per broker user, one per database role
# (migrate sets those in PostgreSQL), then the clients' tokens.
SECRETS=(postgres_password rabbitmq_password amqp_publisher_password amqp_consumer_password amqp_dead_letters_password
  db_owner_password db_rest_server_password db_grpc_server_password db_rabbitmq_server_password
  db_websocket_hub_password db_postgres_exporter_password rest_client_token grpc_client_token listener_token)
# TLS (the stack runs with TLS on): the private CA's certificate and each server's certificate and key,
# made once by the secrets-init image into a temporary folder; the CA's key is not kept.
TLS_SECRETS=(ca.crt database.crt database.key rabbitmq.crt rabbitmq.key grpc-server.crt grpc-server.key
  rest-server.crt rest-server.key websocket-hub.crt websocket-hub.key)

usage() {
  echo "usage: bash scripts/swarm.sh up|test|down [--stack NAME]" >&2
  exit 2
}

say() { echo "swarm.sh: $*" >&2; }

[ $# -ge 1 ] || usage
command=$1
shift
stack=msgsuite
while [ $# -gt 0 ]; do
  case $1 in
    --stack) [ $# -ge 2 ] || usage; stack=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ $stack =~ ^[a-z0-9][a-z0-9_-]{0,33}$ ]] || { say "stack name: lower-case letters, digits, _ and -, at most 34 characters (Swarm names its secrets <stack>_db_postgres_exporter_password: 64 at most)"; exit 2; }

export MSGSUITE_VERSION=${MSGSUITE_VERSION:-dev}
export MSGSUITE_STACK=$stack

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }
swarm_id() { docker info --format '{{.Swarm.Cluster.ID}}' 2>/dev/null; }
stack_services() { docker service ls -q --filter "label=com.docker.stack.namespace=$stack" 2>/dev/null || true; }

# The stack exists and was not deployed by this script: refuse to touch it.
refuse_foreign_stack() {
  [ "$(swarm_state)" = active ] || return 0
  local service
  for service in $(stack_services); do
    if [ -z "$(docker service inspect --format '{{index .Spec.Labels "io.msgsuite.deployed-by"}}' "$service")" ]; then
      say "stack $stack exists and was not deployed by this script: leaving it alone"
      exit 1
    fi
  done
}

random_password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

create_secrets() {
  local name value
  for name in "${SECRETS[@]}"; do
    if docker secret inspect "${stack}_$name" >/dev/null 2>&1; then
      continue
    fi
    case $name in
      postgres_password) value=${POSTGRES_PASSWORD:-} ;;
      rabbitmq_password) value=${RABBITMQ_PASSWORD:-} ;;
      rest_client_token) value=${REST_CLIENT_TOKEN:-} ;;
      grpc_client_token) value=${GRPC_CLIENT_TOKEN:-} ;;
      listener_token) value=${LISTENER_TOKEN:-} ;;
      *) value= ;;
    esac
    value=${value:-$(random_password)}
    create_secret "$name" "$value"
    case $name in
      *_token)
        # A secret cannot be read back: keep the token for the clients outside the stack,
        # and give the servers only its digest.
        mkdir -p "$STATE_DIR/$stack-tokens"
        (umask 077 && printf '%s' "$value" >"$STATE_DIR/$stack-tokens/$name")
        create_secret "$name.sha256" "$(printf '%s' "$value" | sha256sum | cut -d' ' -f1)" ;;
    esac
  done
  create_tls_secrets
}

# All or none: certificates of one CA. Made only when the CA's secret is absent (a redeploy keeps them).
create_tls_secrets() {
  local name folder
  if ! docker secret inspect "${stack}_ca.crt" >/dev/null 2>&1; then
    folder=$(mktemp -d)
    docker run --rm --user "$(id -u):$(id -g)" --network none -v "$folder:/out" --entrypoint python \
      "msgsuite/secrets-init:$MSGSUITE_VERSION" -m msgsuite.certificates /out >/dev/null
    for name in "${TLS_SECRETS[@]}"; do
      docker secret rm "${stack}_$name" >/dev/null 2>&1 || true
      docker secret create --label "$OWNER_LABEL" --label "io.msgsuite.stack=$stack" \
        "${stack}_$name" "$folder/$name" >/dev/null
    done
    rm -rf "$folder"
    say "created the TLS secrets (a new private CA and a certificate per server)"
  fi
}

create_secret() {
  printf '%s' "$2" | docker secret create --label "$OWNER_LABEL" --label "io.msgsuite.stack=$stack" \
    "${stack}_$1" - >/dev/null
  say "created secret ${stack}_$1"
}

# A Swarm config cannot change in place: its name carries a hash of the files.
config_hash() {
  cat rabbitmq/entrypoint.sh rabbitmq/definitions.template.json rabbitmq/20-suite.conf rabbitmq/30-tls.conf \
    database/entrypoint.sh \
    | sha256sum | cut -c1-10
}

# Prints what is not ready yet (nothing when every service runs all its replicas, healthy, and every job completed).
# A task with a healthcheck counts as running only once it is healthy.
not_ready() {
  local name mode replicas running desired
  while IFS='|' read -r name mode replicas; do
    running=${replicas%%/*}
    desired=${replicas#*/}
    desired=${desired%% *}
    case $mode in
      *job*) # "replicated job": ready once a task of it completed
        docker service ps --format '{{.CurrentState}}' "$name" | grep -q '^Complete' || echo "$name $replicas" ;;
      *)
        [ "$running" = "$desired" ] || { echo "$name $replicas"; continue; }
        case $(update_state "$name") in
          updating | rollback_started) echo "$name $replicas (rolling)" ;;
        esac ;;
    esac
  done < <(docker service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Name}}|{{.Mode}}|{{.Replicas}}')
}

update_state() { docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$1"; }

# An update that did not take (rolled back or paused) leaves the stack unlike the file: that is a failure.
failed_updates() {
  local service
  for service in $(stack_services); do
    case $(update_state "$service") in
      paused | rollback_*) docker service inspect --format '{{.Spec.Name}}: {{.UpdateStatus.Message}}' "$service" ;;
    esac
  done
}

wait_ready() {
  local limit=${SWARM_WAIT_SECONDS:-300} started=$SECONDS waiting failed
  sleep 2 # a redeploy's rolling update starts a moment after `docker stack deploy` returns
  while true; do
    waiting=$(not_ready)
    if [ -z "$waiting" ] && [ -n "$(stack_services)" ]; then
      failed=$(failed_updates)
      if [ -n "$failed" ]; then
        say "an update did not take:"
        echo "$failed" >&2
        return 1
      fi
      say "stack $stack ready after $((SECONDS - started)) s"
      return 0
    fi
    if ((SECONDS - started > limit)); then
      say "not ready after $limit s:"
      echo "$waiting" >&2
      local name
      for name in $(echo "$waiting" | cut -d' ' -f1); do
        docker service ps --no-trunc --format '  {{.Name}} {{.CurrentState}} {{.Error}}' "$name" | head -5 >&2
      done
      return 1
    fi
    sleep 2
  done
}

up_finished=no
stack_existed=no
# A failed `up` removes what it created; a stack that was there before (a redeploy) is left to its
# rollback, with its data.
cleanup_after_failed_up() {
  if [ "$up_finished" = yes ]; then
    return
  elif [ "$stack_existed" = yes ]; then
    say "up failed: stack $stack existed before, left as it is (scripts/swarm.sh down removes it)"
  else
    say "up failed: removing stack $stack"
    down || true
  fi
}

up() {
  mkdir -p "$STATE_DIR"
  if [ "$(swarm_state)" = active ] && [ -n "$(stack_services)" ]; then
    stack_existed=yes
  fi
  trap cleanup_after_failed_up EXIT
  trap 'exit 130' INT TERM
  say "building the images (tag $MSGSUITE_VERSION)"
  docker compose build --quiet
  if [ "$(swarm_state)" != active ]; then
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    swarm_id >"$SWARM_MARKER"
    say "initialised a single-node swarm (down leaves it again)"
  fi
  refuse_foreign_stack
  create_secrets
  touch "$STATE_DIR/$stack.deployed"
  MSGSUITE_CONFIGS=$(config_hash) docker stack deploy --resolve-image never --prune -c "$STACK_FILE" "$stack" >/dev/null
  say "deployed stack $stack; waiting for every replica to be healthy"
  wait_ready
  up_finished=yes
  say "network ${stack}_suite: docker run --rm --network ${stack}_suite msgsuite/rest-client:$MSGSUITE_VERSION hola"
}

# Waits until nothing of the stack is left (its tasks' containers, its network), so that
# the secrets and volumes can go. Exited containers of its tasks that Swarm keeps (a
# completed job's) are removed: they are the stack's own.
wait_removed() {
  local deadline=$((SECONDS + 120)) filter="label=com.docker.stack.namespace=$stack" exited
  while [ -n "$(docker ps -aq --filter "$filter")" ] || docker network inspect "${stack}_suite" >/dev/null 2>&1; do
    exited=$(docker ps -aq --filter "$filter" --filter status=exited --filter status=created)
    [ -z "$exited" ] || docker rm -f $exited >/dev/null 2>&1 || true
    # `stack rm` gives up on the network while a task still uses it: remove it once none does.
    [ -n "$(docker ps -aq --filter "$filter")" ] || docker network rm "${stack}_suite" >/dev/null 2>&1 || true
    if ((SECONDS > deadline)); then
      say "stack $stack still has containers or its network after 120 s:"
      docker ps -a --filter "$filter" --format '  {{.Names}} {{.Status}}' >&2
      docker network ls --filter "name=${stack}_suite" --format '  network {{.Name}}' >&2
      return 1
    fi
    sleep 1
  done
}

down() {
  set +e
  local failed=0
  if [ "$(swarm_state)" = active ]; then
    refuse_foreign_stack
    if [ -n "$(stack_services)" ]; then
      # Its "network is in use by task" is not a failure: wait_removed removes the network later.
      docker stack rm "$stack" >/dev/null 2>&1 || true
      say "removed stack $stack"
    fi
    wait_removed || failed=1
    local secret
    for secret in $(docker secret ls -q --filter "label=$OWNER_LABEL" --filter "label=io.msgsuite.stack=$stack"); do
      docker secret rm "$secret" >/dev/null || failed=1
    done
  fi
  local volume
  for volume in $(docker volume ls -q --filter "label=com.docker.stack.namespace=$stack"); do
    docker volume rm "$volume" >/dev/null || failed=1
  done
  rm -f "$STATE_DIR/$stack.deployed"
  rm -rf "$STATE_DIR/$stack-tokens"
  if [ -f "$SWARM_MARKER" ]; then
    if [ "$(swarm_state)" != active ] || [ "$(swarm_id)" != "$(cat "$SWARM_MARKER")" ]; then
      rm -f "$SWARM_MARKER" # that swarm is gone already; a newer one is not ours
    elif [ -n "$(docker service ls -q)" ]; then
      say "staying in swarm mode: other services run on it"
    else
      docker swarm leave --force >/dev/null && rm -f "$SWARM_MARKER" && say "left swarm mode" || failed=1
    fi
  fi
  return $failed
}

run_test() {
  [ -f "$STATE_DIR/$stack.deployed" ] && [ -n "$(stack_services)" ] \
    || { say "stack $stack is not deployed: run scripts/swarm.sh up --stack $stack first"; exit 1; }
  bash scripts/prepare.sh >/dev/null
  SWARM_STACK=$stack E2E_IMAGE_TAG=$MSGSUITE_VERSION .venv-test/bin/python -m pytest tests/e2e/test_swarm.py -q
}

case $command in
  up) up ;;
  down) down ;;
  test) run_test ;;
  *) usage ;;
esac
