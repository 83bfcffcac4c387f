#!/usr/bin/env bash
# Rebuilds the demo model bundle (model/demo/bundle) with tact itself:
# writes the demo bank's simulated campaign histories as CSV files, trains
# one logistic model per product with `tact train`, and writes bundle.json.
# Deterministic: SOURCE_DATE_EPOCH fixes the training time stamp, so the
# bundle is rebuilt byte for byte (a test checks the committed one is
# current). Run from the repository root: bash model/demo/make_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export SOURCE_DATE_EPOCH=1795046400 # 2026-11-19T00:00:00Z
out=model/demo/bundle
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
go build -o "$data/tact" ./cmd/tact
"$data/tact" demo-data --out "$data"
rm -f "$out"/*.json
products=()
for csv in "$data"/*.csv; do
	p=$(basename "$csv" .csv)
	products+=("$p")
	"$data/tact" train --data "$csv" --label accepted --l2 0.001 --out "$out/$p.json" >/dev/null
	# The fingerprint names the temporary file's content, not its path.
done
{
	printf '{\n  "format": "tact.bundle.v1",\n  "version": "demo-2",\n'
	printf '  "created_at": "2026-11-19T00:00:00Z",\n'
	printf '  "description": "Demo bank: one logistic model per product, trained by tact train on the seeded simulated campaign histories (model/demo).",\n'
	printf '  "models": {\n'
	for i in "${!products[@]}"; do
		sep=","; [ "$i" -eq $((${#products[@]} - 1)) ] && sep=""
		printf '    "%s": {"type": "logistic", "file": "%s.json"}%s\n' "${products[$i]}" "${products[$i]}" "$sep"
	done
	printf '  }\n}\n'
} > "$out/bundle.json"
echo "wrote $out: ${#products[@]} models"
