#!/usr/bin/env bash
# Makes a fresh clone runnable: system packages, npm dependencies (which build the addon), compiled TS.
# Cheap when everything is already in place, so `npm start` and `npm test` call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -d node_modules/node-addon-api ] || [ ! -f build/Release/rdma_native.node ]; then
  npm install --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc -p .
