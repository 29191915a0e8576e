#!/usr/bin/env bash
# From a fresh clone to a running agent on this host: install, build, bring up dockerd and a
# local etcd cluster (scripts/testenv.sh), start a sample web container, and run `watch`.
# Ctrl+C or q stops the agent (its instances vanish); the sample container is removed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build >/dev/null
bash scripts/testenv.sh up
endpoints=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).etcdEndpoints.join(","))' "${DISCOVERY_TESTENV_DIR:-/tmp/discovery-testenv}/env.json")

name=discovery-demo-web
docker rm -f "$name" >/dev/null 2>&1 || true
docker run -d --name "$name" -p 127.0.0.1::80 \
  -l discovery.service=web -l discovery.tags=demo -l discovery.check.http=/health -l discovery.check.interval=2s \
  discovery-test/busybox:1 >/dev/null
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
echo "demo: started container $name (service web); in another shell try:"
echo "  node bin/run.cjs list --etcd-endpoints $endpoints"
echo "  docker exec $name rm /www/health   # the check turns critical"
node bin/run.cjs watch --etcd-endpoints "$endpoints" "$@"
