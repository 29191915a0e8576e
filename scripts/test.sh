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
# One suite after the other: integration-exclusive and the fault suite kill etcd members and
# stop the second dockerd, which must not happen under the other integration tests (those run
# two files at a time).
mkdir -p .tmp
status=0
for project in unit integration integration-exclusive faults; do
  npx vitest run --project "$project" --passWithNoTests --reporter=default --reporter=json \
    --outputFile.json=".tmp/vitest-$project.json" "$@" || status=1
done
bash scripts/pack-check.sh || status=1
# One closing line over all suites, in the form CI reads: "N passed, N failed".
node -e '
  const fs = require("fs")
  let passed = 0, failed = 0, skipped = 0
  for (const p of ["unit", "integration", "integration-exclusive", "faults"]) {
    const f = `.tmp/vitest-${p}.json`
    if (!fs.existsSync(f)) { failed += 1; continue }
    const r = JSON.parse(fs.readFileSync(f, "utf8"))
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + (r.numTodoTests ?? 0)
  }
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""))
'
exit $status
