#!/usr/bin/env bash
# Kills a Redis Cluster master under load and counts what callers saw: a cluster
# of 3 masters and 3 replicas on ports 27001-27006 (redis-server, redis-cli),
# tactd in cluster mode with 100,000 demo clients, 60 s of gRPC load by
# tactfault (decide, then an outcome per offer), the master holding slot 0
# killed with SIGKILL at 15 s; then every acknowledged outcome is looked up in
# the export. Run from the repository: bash bench/faults/cluster_failover.sh
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(mktemp -d)
(cd "$repo" && go build -o "$bin" ./cmd/tactd ./cmd/tact ./bench/cmd/tactfault) || exit 1
work=${WORK:-$(mktemp -d)}; cd "$work"; echo "working in $work"
ports="27001 27002 27003 27004 27005 27006"
for p in $ports; do
  mkdir -p n$p
  redis-server --port $p --bind 127.0.0.1 --dir $work/n$p --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout 2000 --appendonly yes --appendfsync always --save "" --protected-mode no --loglevel warning > n$p.log 2>&1 &
done
sleep 1
redis-cli --cluster create $(for p in $ports; do printf "127.0.0.1:%s " $p; done) --cluster-replicas 1 --cluster-yes > create.log 2>&1 || { cat create.log; exit 1; }
for p in $ports; do until redis-cli -p $p cluster info | grep -q cluster_state:ok; do sleep 0.2; done; done
$bin/tact demo-data --out . --clients 100000 >/dev/null
seeds=127.0.0.1:27001,127.0.0.1:27002,127.0.0.1:27003
$bin/tactd --data-dir $work/data --feature-store redis --redis-mode cluster --redis-addrs $seeds \
  --grpc-addr 127.0.0.1:19595 --http-addr 127.0.0.1:18585 --access-log=false > tactd.log 2>&1 &
tpid=$!
until curl -sf 127.0.0.1:18585/readyz >/dev/null; do sleep 0.1; done
$bin/tact features import --addr 127.0.0.1:19595 --schema $repo/model/demo/schema.yaml clients.csv | tail -1
$bin/tactfault run --http 127.0.0.1:18585 --grpc 127.0.0.1:19595 --via grpc --duration 60s --workers 8 --clients 100000 --acked acked.txt > run.txt 2>&1 &
fpid=$!
sleep 15
# the master that holds slot 0
victim=$(redis-cli -p 27001 cluster nodes | awk '$3 ~ /master/ && $9 ~ /^0-/ {split($2,a,"@"); split(a[1],b,":"); print b[2]}')
echo "killing master on port $victim at $(date +%T)"
pkill -9 -f "redis-server 127.0.0.1:$victim "
wait $fpid
echo "tactd still running: $(kill -0 $tpid && echo yes)"
$bin/tactfault check --grpc 127.0.0.1:19595 --acked acked.txt
grep -E "redis unreachable|reachable again" tactd.log | cut -c1-250
kill $tpid; wait $tpid
for p in $ports; do pkill -9 -f "redis-server 127.0.0.1:$p " 2>/dev/null; done; wait 2>/dev/null; rm -rf "$bin"
echo "per-second results: $work/run.txt"
