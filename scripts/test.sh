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
# In parallel (pytest-xdist). Many tests wait (serial lines, pcscd, subprocesses) while others
# compute, so twice as many worker processes as cores, at most 8; SSCARD_TEST_WORKERS
# overrides (0 = one process). --dist loadgroup keeps each xdist_group in one worker (the
# pcscd tests: tests/conftest.py; the fixed-time simulations: tests.support.TIMED).
workers=${SSCARD_TEST_WORKERS:-$(( $(nproc) * 2 > 8 ? 8 : $(nproc) * 2 ))}
parallel=()
if [ "$workers" != 0 ]; then
  if $V/python -c "import xdist" 2>/dev/null; then
    parallel=(-n "$workers" --dist loadgroup)
  else
    echo "pytest-xdist is missing (scripts/bootstrap.sh test installs it): one process" >&2
  fi
fi
$V/python -m pytest "${parallel[@]}" "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  rc=1
fi
[ $rc -eq 0 ] || status=$rc
exit $status
