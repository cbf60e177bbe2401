#!/usr/bin/env bash
# Generates the Python gRPC code from protos/ into the folder given (never
# committed): used by the Dockerfile and by the test command.
#   bash protos/generate.sh OUT_DIR   (needs grpcio-tools in the current python)
set -euo pipefail
out=${1:?usage: protos/generate.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"
python -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  $(find . -name '*.proto' | sort)
echo "generated gRPC code in $out"
