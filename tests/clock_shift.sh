#!/usr/bin/env bash
# tests/clock_shift.sh [PYTEST ARGS...]
#
# The suite (or PYTEST ARGS: files, -k, -x...) three times: with the test process's clock as it is, moved
# a year ahead and a year back (pytest --clock-shift, tests/conftest.py), the real Redmine on the real
# time. A test that mixes a date written in it with a clock it does not control passes on the day it was
# written and fails on a later one; here it fails at once (issue 9). Exits non-zero if any run failed.
#
#   tests/clock_shift.sh                                            # the whole suite, three times
#   tests/clock_shift.sh tests/test_escalate_targets_redmine.py -x  # one file
#   CLOCK_SHIFTS="+36h -90d" tests/clock_shift.sh -q                # other offsets
#
# With Redmine tests, hold the lock others use:  flock /tmp/redmine-tests.lock tests/clock_shift.sh
# Honours $PYTHON (default: .venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
shifts=${CLOCK_SHIFTS:-0 +1y -1y}
[ $# -gt 0 ] || set -- -q -p no:cacheprovider

failed=()
for shift in $shifts; do
  echo "== clock shifted by $shift: $python -m pytest --clock-shift=$shift $*" >&2
  "$python" -m pytest "--clock-shift=$shift" "$@" || failed+=("$shift")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "clock_shift: failed with the clock shifted by: ${failed[*]}" >&2
  exit 1
fi
echo "clock_shift: passed with the clock shifted by: $shifts" >&2
