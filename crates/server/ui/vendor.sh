#!/usr/bin/env bash
# Copies the dashboard's browser libraries, pinned by package-lock.json, from
# npm into src/dashboard/static/vendor/, with their licences. The copies are
# committed: building sluice needs no npm. Run after changing a version:
#
#   cd crates/server/ui && npm ci && bash vendor.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../src/dashboard/static/vendor"
mkdir -p "$out"
nm="$here/node_modules"
cp "$nm/htmx.org/dist/htmx.min.js" "$out/htmx.min.js"
cp "$nm/htmx.org/LICENSE" "$out/htmx.LICENSE"
cp "$nm/uplot/dist/uPlot.iife.min.js" "$out/uPlot.iife.min.js"
cp "$nm/uplot/dist/uPlot.min.css" "$out/uPlot.min.css"
cp "$nm/uplot/LICENSE" "$out/uPlot.LICENSE"
echo "vendored htmx $(node -p "require('$nm/htmx.org/package.json').version") and uPlot $(node -p "require('$nm/uplot/package.json').version") into $out"
