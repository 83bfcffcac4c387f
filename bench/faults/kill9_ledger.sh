#!/usr/bin/env bash
# The kill -9 ledger on the embedded store: tactd on bbolt with 100,000 demo
# clients, 8 gRPC callers asking for decisions and keeping every offer
# answered (tactfault run --offers-only, no outcomes), tactd killed with
# SIGKILL 1-3 s into each of ROUNDS rounds (default 10) and restarted on the
# same data; then an outcome is recorded for every offer answered before any
# kill (tactfault settle), and those refused are counted: want 0.
# EXTRA passes flags to tactd (e.g. EXTRA="--journal-sync everysec").
# Run from the repository: bash bench/faults/kill9_ledger.sh
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(mktemp -d)
(cd "$repo" && go build -o "$bin" ./cmd/tactd ./cmd/tact ./bench/cmd/tactfault) || exit 1
work=${WORK:-$(mktemp -d)}; cd "$work"; echo "working in $work"
rounds=${ROUNDS:-10}
$bin/tact demo-data --out . --clients 100000 >/dev/null
$bin/tact features import --data-dir $work/data --schema $repo/model/demo/schema.yaml clients.csv | tail -1
start() {
  # shellcheck disable=SC2086 # EXTRA is a list of flags
  $bin/tactd --data-dir $work/data --demo=false --grpc-addr 127.0.0.1:19696 --http-addr 127.0.0.1:18686 \
    --access-log=false ${EXTRA:-} >> tactd.log 2>&1 &
  tpid=$!
  until curl -sf 127.0.0.1:18686/readyz >/dev/null; do sleep 0.1; done
}
for r in $(seq 1 "$rounds"); do
  start
  $bin/tactfault run --http 127.0.0.1:18686 --grpc 127.0.0.1:19696 --via grpc --duration 30s --workers 8 \
    --clients 100000 --offers-only --acked offers.txt > run-$r.txt 2>&1 &
  fpid=$!
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1 + 2 * r / 32768 }')"
  kill -9 $tpid; wait $tpid 2>/dev/null
  kill $fpid 2>/dev/null; wait $fpid 2>/dev/null
  echo "round $r: $(wc -l < offers.txt) offers answered so far"
done
start
$bin/tactfault settle --grpc 127.0.0.1:19696 --acked offers.txt
kill $tpid; wait $tpid
