#!/usr/bin/env bash
# Run the whole check: ruff, mypy, the import-layering contracts and the pytest suite.
# Under CI=true a test that needs a missing service (pcscd, PostgreSQL) fails instead of
# skipping, and a run that collects no test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin
status=0
echo "== ruff"; $V/ruff check . || status=1
echo "== mypy"; $V/mypy apdu card reader ledger terminal || status=1
echo "== import contracts"; $V/lint-imports || status=1
echo "== pytest"
$V/python -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  rc=1
fi
[ $rc -eq 0 ] || status=$rc
exit $status
