#!/usr/bin/env bash
# Run a command RUNS times (default 5) while a busy loop holds every core, as a loaded CI machine
# is: a test that waits on time instead of a condition fails here first. Prints each run's result
# and pytest's closing line; each run's whole output is in .local-data/under-load-N.log.
# Usage: scripts/under-load.sh make test
set -uo pipefail
runs=${RUNS:-5}
mkdir -p .local-data
pids=()
for _ in $(seq "$(nproc)"); do
    python3 -c "while True: pass" &
    pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
echo "under load: ${#pids[@]} busy loops (one per core), $runs runs of: $*"
failed=0
for i in $(seq "$runs"); do
    log=".local-data/under-load-$i.log"
    started=$SECONDS
    if "$@" >"$log" 2>&1; then result=passed; else result=FAILED; failed=$((failed + 1)); fi
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$log" | tail -1)
    echo "run $i: $result in $((SECONDS - started)) s: ${summary:-no pytest summary} (load $(cut -d' ' -f1-3 /proc/loadavg))"
    grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
done
[ "$failed" -eq 0 ]
