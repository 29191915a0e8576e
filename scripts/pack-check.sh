#!/usr/bin/env bash
# What `npx discovery-agent` users get: pack the package, install the tarball into an empty
# folder, and run --help and doctor from there. Fails if a runtime file or dependency is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
tarball=$(npm pack --silent --pack-destination "$out" | tail -1)
mkdir -p "$out/app"
cd "$out/app"
npm init -y >/dev/null
npm install --no-audit --no-fund --omit=dev "$out/$tarball" >/dev/null
npx --no-install discovery-agent --help | grep -q 'doctor' || { echo "pack-check: --help does not list doctor" >&2; exit 1; }
env=$(cat "${DISCOVERY_TESTENV_DIR:-/tmp/discovery-testenv}/env.json")
endpoints=$(node -e 'console.log(JSON.parse(process.argv[1]).etcdEndpoints.join(","))' "$env")
npx --no-install discovery-agent doctor --etcd-endpoints "$endpoints" --prefix /pack-check
# The bundled CLI talks to etcd through its build-time protobuf definitions (scripts/bundle.js).
listed=$(npx --no-install discovery-agent list --json --etcd-endpoints "$endpoints" --prefix /pack-check)
[[ $listed == \[* ]] || { echo "pack-check: list --json printed no array: $listed" >&2; exit 1; }
node --input-type=module -e "import('discovery-agent').then((m) => { if (typeof m.Registry !== 'function') throw new Error('no Registry export'); if (typeof m.createResolver !== 'function') throw new Error('no createResolver export') })"
echo "pack-check: the packed tarball installs and runs (help, doctor, list, library import)"
