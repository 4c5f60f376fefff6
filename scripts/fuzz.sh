#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 10s: the
# CI smoke; `make fuzz FUZZTIME=5m` for a real session).
set -euo pipefail
fuzztime=${FUZZTIME:-10s}
status=0
while IFS=: read -r file _ line; do
	pkg=./$(dirname "$file")
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
	echo "fuzz: $pkg $name ($fuzztime)"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" || status=1
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./vendor/')
exit $status
