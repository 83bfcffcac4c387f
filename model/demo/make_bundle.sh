#!/usr/bin/env bash
# Rebuilds the demo model bundles with tact itself: writes the demo bank's
# simulated campaign histories as CSV files, trains one logistic model per
# product with `tact train`, and writes bundle.json. Two bundles:
#   model/demo/bundle      version demo-2, L2 0.001 (the one served)
#   model/demo/challenger  version demo-2-challenger, L2 1 (a more
#                          regularised challenger for experiments)
# Deterministic up to the last digits of the weights (the optimizer's
# float sums): SOURCE_DATE_EPOCH fixes the training time stamp, and a test
# checks that the committed bundles score every client as a retrained one
# does, within 1e-9. Run from the repository root: bash model/demo/make_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export SOURCE_DATE_EPOCH=1795046400 # 2026-11-19T00:00:00Z
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
go build -o "$data/tact" ./cmd/tact
"$data/tact" demo-data --out "$data"

build() { # out version l2 description
	local out=$1 version=$2 l2=$3 desc=$4
	mkdir -p "$out"
	rm -f "$out"/*.json
	local products=()
	for csv in "$data"/*.csv; do
		p=$(basename "$csv" .csv)
		products+=("$p")
		"$data/tact" train --data "$csv" --label accepted --l2 "$l2" --out "$out/$p.json" >/dev/null
	done
	{
		printf '{\n  "format": "tact.bundle.v1",\n  "version": "%s",\n' "$version"
		printf '  "created_at": "2026-11-19T00:00:00Z",\n'
		printf '  "description": "%s",\n' "$desc"
		printf '  "models": {\n'
		for i in "${!products[@]}"; do
			sep=","; [ "$i" -eq $((${#products[@]} - 1)) ] && sep=""
			printf '    "%s": {"type": "logistic", "file": "%s.json"}%s\n' "${products[$i]}" "${products[$i]}" "$sep"
		done
		printf '  }\n}\n'
	} > "$out/bundle.json"
	echo "wrote $out: ${#products[@]} models"
}
build model/demo/bundle demo-2 0.001 "Demo bank: one logistic model per product, trained by tact train on the seeded simulated campaign histories (model/demo)."
build model/demo/challenger demo-2-challenger 1 "Demo bank challenger: the same data as demo-2, trained with L2 1 (flatter propensities), for champion/challenger experiments."
