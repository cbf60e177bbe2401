#!/usr/bin/env bash
# Prepares what the tests and the benchmark run with: a virtual environment
# (.venv-test) with the pinned dependencies and the gRPC code generated from
# protos/ into build/generated. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "prepare.sh: Python 3.11 or newer is needed ($python is $("$python" -V 2>&1))" >&2; exit 2; }
docker compose version >/dev/null 2>&1 \
  || { echo "prepare.sh: Docker with the Compose v2 plugin is needed" >&2; exit 2; }

venv=.venv-test
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  "$python" -m venv "$venv"
fi
echo "== installing the pinned dependencies into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
PATH="$PWD/$venv/bin:$PATH" bash protos/generate.sh build/generated
# The benchmark's Node programs (load generators, many listeners), pinned by their lock files; the
# unit tests run them too. Without npm the benchmark's Node sections and those tests cannot run.
for project in bench/load bench/fanout; do
  if [ ! -d "$project/node_modules" ]; then
    if command -v npm >/dev/null 2>&1; then
      echo "== installing $project's Node packages (npm ci)"
      npm ci --prefix "$project" --no-audit --no-fund --loglevel=error
    else
      echo "prepare.sh: npm not found; the benchmark's Node sections need Node.js and npm (Debian: apt-get install nodejs npm)" >&2
    fi
  fi
done
