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
bash scripts/testenv.sh clean
# One suite after the other: integration-exclusive and the fault suite kill etcd members and
# stop the second dockerd, which must not happen under the other integration tests (those run
# two files at a time).
mkdir -p .tmp
status=0
nonzero=""
for project in unit integration integration-exclusive faults; do
  rm -f ".tmp/vitest-$project.json"
  npx vitest run --project "$project" --passWithNoTests --reporter=default --reporter=json \
    --outputFile.json=".tmp/vitest-$project.json" "$@" || { status=1; nonzero="$nonzero $project"; }
done
bash scripts/pack-check.sh || { status=1; nonzero="$nonzero pack-check"; }
# What failed, named (a file whose beforeAll threw reports its tests as skipped, not failed), then
# one closing line over all suites, in the form CI reads: "N passed, N failed".
NONZERO="$nonzero" node -e '
  const fs = require("fs")
  const line = (s) => String(s ?? "").replace(/\x1b\[[0-9;]*m/g, "").split("\n").find((l) => l.trim()) ?? ""
  let passed = 0, failed = 0, skipped = 0
  for (const p of ["unit", "integration", "integration-exclusive", "faults"]) {
    const f = `.tmp/vitest-${p}.json`
    if (!fs.existsSync(f)) { failed += 1; console.log(`FAILED ${p}: no report (the run did not finish)`); continue }
    const r = JSON.parse(fs.readFileSync(f, "utf8"))
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + (r.numTodoTests ?? 0)
    for (const file of r.testResults ?? []) {
      const bad = (file.assertionResults ?? []).filter((a) => a.status === "failed")
      if (file.status === "failed" && bad.length === 0) {
        failed += 1
        console.log(`FAILED ${p} ${file.name}: ${line(file.message).slice(0, 400)}`)
      }
      for (const a of bad) console.log(`FAILED ${p} ${file.name} > ${a.fullName}: ${line(a.failureMessages?.[0]).slice(0, 400)}`)
    }
  }
  for (const p of (process.env.NONZERO ?? "").split(" ").filter(Boolean)) console.log(`exited non-zero: ${p}` + (p === "pack-check" ? "" : " (an unhandled error or a failed hook, if nothing is named above)"))
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""))
'
exit $status
