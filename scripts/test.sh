#!/usr/bin/env bash
# The full test suite from a fresh clone: install, build, bring up dockerd + etcd, then run
# unit, integration and fault-injection tests against the real services.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
npm run lint
bash scripts/testenv.sh up
npx vitest run --project unit --project integration --project faults "$@"
bash scripts/pack-check.sh
