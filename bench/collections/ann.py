#!/usr/bin/env python3
"""ANN index benchmark: sluice's HNSW (crates/retrieve/src/hnsw.rs) against hnswlib,
FAISS (IndexHNSWFlat) and usearch on the same synthetic embeddings.

Data (`--data`): `random` normal vectors, L2-normalized; `clustered`: Gaussian clusters
around `--clusters` random unit centres (`--spread` is the noise's norm relative to the
centre's), L2-normalized, queries drawn from the same mixture (not from the base); or
real embeddings (`--vectors`). All seeded. Base and queries are written as raw
little-endian f32 (`base-*.bin`, `queries-*.bin`) and the exact inner-product top-k ids
as u32 (`truth-*.bin`, computed in blocks), so the Rust driver and the Python peers read
the same bytes.
Every library gets the same M, ef_construction and ef_search values; search runs on one
thread. See README.md beside this file.

Needs numpy, and whichever of hnswlib, faiss-cpu, usearch are installed (a missing
one is skipped with a note). The sluice side is the `ann` example of sluice-retrieve:

    cargo build --release -p sluice-retrieve --example ann
    python bench/collections/ann.py --sluice-ann target/release/examples/ann
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="base vectors")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", choices=["random", "clustered"], default="random", help="synthetic data kind")
    p.add_argument("--clusters", type=int, default=1000, help="clusters of --data clustered")
    p.add_argument(
        "--spread",
        type=float,
        default=1.0,
        help="--data clustered: a point is centre + spread * g / sqrt(dim), g standard normal, then normalized",
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--efc", type=int, default=200)
    p.add_argument("--ef", default="16,32,64,128,256", help="ef_search values")
    p.add_argument("--threads", default="1,2", help="build thread counts")
    p.add_argument("--runs", type=int, default=2, help="builds per thread count, and search passes per ef")
    p.add_argument("--search-runs", type=int, help="search passes per ef (best is kept; default --runs)")
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/ann-data"))
    p.add_argument(
        "--vectors",
        type=Path,
        help="real embeddings instead of random ones: raw little-endian f32, `dim` per row; "
        "`--queries` rows (chosen by `--seed`) become the queries, the rest the base (`--n` is ignored)",
    )
    p.add_argument("--sluice-ann", type=Path, help="the sluice-retrieve `ann` example binary")
    p.add_argument("--libs", default="sluice,hnswlib,faiss,usearch")
    p.add_argument("--json-out", type=Path, help="also write all results as JSON")
    return p.parse_args()


# ---- data ---------------------------------------------------------------------------


def make_data(a: argparse.Namespace) -> dict[str, Path]:
    a.data_dir.mkdir(parents=True, exist_ok=True)
    tag = f"n{a.n}-d{a.dim}-q{a.queries}-s{a.seed}"
    if a.vectors:
        tag = f"{a.vectors.stem}-q{a.queries}-s{a.seed}"
        a.n = a.vectors.stat().st_size // (4 * a.dim) - a.queries
    elif a.data == "clustered":
        tag = f"clustered-c{a.clusters}-sp{a.spread:g}-{tag}"
    paths = {
        "base": a.data_dir / f"base-{tag}.bin",
        "queries": a.data_dir / f"queries-{tag}.bin",
        "truth": a.data_dir / f"truth-{tag}-k{a.k}.bin",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(a.seed)

    def unit(rows: int) -> np.ndarray:
        x = rng.standard_normal((rows, a.dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    if a.vectors:
        real = np.fromfile(a.vectors, dtype="<f4").reshape(-1, a.dim)
        real = real / np.linalg.norm(real, axis=1, keepdims=True)
        order = rng.permutation(len(real))
        queries, base = real[order[: a.queries]], real[order[a.queries :]]
        a.n = len(base)
        base.astype("<f4").tofile(paths["base"])
    elif a.data == "clustered":
        centres = unit(a.clusters)

        def mixture(rows: int) -> np.ndarray:
            which = rng.integers(0, a.clusters, size=rows)
            x = rng.standard_normal((rows, a.dim), dtype=np.float32)
            x *= np.float32(a.spread / math.sqrt(a.dim))
            x += centres[which]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            return x

        # Written 100,000 rows at a time so a million 384-d vectors never need two copies.
        with open(paths["base"], "wb") as f:
            for s in range(0, a.n, 100_000):
                mixture(min(100_000, a.n - s)).astype("<f4").tofile(f)
        queries = mixture(a.queries)
    else:
        base, queries = unit(a.n), unit(a.queries)
        base.astype("<f4").tofile(paths["base"])
    base = np.memmap(paths["base"], dtype="<f4", mode="r").reshape(-1, a.dim)
    exact_top_k(base, queries, a.k).astype("<u4").tofile(paths["truth"])
    queries.astype("<f4").tofile(paths["queries"])
    return paths


def exact_top_k(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of each query's k largest inner products, best first: blocks of 256 queries x
    131,072 base rows (at most 128 MiB of similarities at a time)."""
    qb, bb = 256, 131_072
    truth = np.empty((len(queries), k), dtype=np.uint32)
    for s in range(0, len(queries), qb):
        q = queries[s : s + qb]
        best_ids = np.empty((len(q), 0), dtype=np.int64)
        best_sims = np.empty((len(q), 0), dtype=np.float32)
        for b in range(0, len(base), bb):
            sims = q @ np.asarray(base[b : b + bb]).T
            kk = min(k, sims.shape[1])
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            best_ids = np.concatenate([best_ids, top + b], axis=1)
            best_sims = np.concatenate([best_sims, np.take_along_axis(sims, top, axis=1)], axis=1)
            keep = np.argsort(-best_sims, axis=1, kind="stable")[:, :k]
            best_ids = np.take_along_axis(best_ids, keep, axis=1)
            best_sims = np.take_along_axis(best_sims, keep, axis=1)
        truth[s : s + qb] = best_ids
    return truth


def load(paths: dict[str, Path], a: argparse.Namespace):
    base = np.fromfile(paths["base"], dtype="<f4").reshape(-1, a.dim)
    a.n = len(base)
    queries = np.fromfile(paths["queries"], dtype="<f4").reshape(-1, a.dim)
    truth = np.fromfile(paths["truth"], dtype="<u4").reshape(-1, a.k)
    return base, queries, truth


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = sum(len(set(map(int, f[:k])) & set(map(int, t))) for f, t in zip(found, truth))
    return hits / truth.size


def file_size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---- peers --------------------------------------------------------------------------


class Peer:
    """build(threads) -> seconds; search(ef) -> ids (queries x k) on one thread; save(path)."""

    name = "?"


class Hnswlib(Peer):
    name = "hnswlib"

    def __init__(self, a, base, queries):
        import hnswlib

        self.lib, self.a, self.base, self.queries = hnswlib, a, base, queries

    def build(self, threads: int) -> float:
        idx = self.lib.Index(space="ip", dim=self.a.dim)
        idx.init_index(max_elements=len(self.base), ef_construction=self.a.efc, M=self.a.m, random_seed=1)
        t = time.perf_counter()
        idx.add_items(self.base, np.arange(len(self.base)), num_threads=threads)
        dt = time.perf_counter() - t
        self.idx = idx
        return dt

    def search(self, ef: int) -> np.ndarray:
        self.idx.set_ef(ef)
        labels, _ = self.idx.knn_query(self.queries, k=self.a.k, num_threads=1)
        return labels

    def save(self, path: Path) -> None:
        self.idx.save_index(str(path))


class Faiss(Peer):
    name = "faiss"

    def __init__(self, a, base, queries):
        import faiss

        self.lib, self.a, self.base, self.queries = faiss, a, base, queries

    def build(self, threads: int) -> float:
        f = self.lib
        f.omp_set_num_threads(threads)
        idx = f.IndexHNSWFlat(self.a.dim, self.a.m, f.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = self.a.efc
        t = time.perf_counter()
        idx.add(self.base)
        dt = time.perf_counter() - t
        self.idx = idx
        return dt

    def search(self, ef: int) -> np.ndarray:
        self.lib.omp_set_num_threads(1)
        self.idx.hnsw.efSearch = ef
        _, labels = self.idx.search(self.queries, self.a.k)
        return labels

    def save(self, path: Path) -> None:
        self.lib.write_index(self.idx, str(path))


class Usearch(Peer):
    name = "usearch"

    def __init__(self, a, base, queries):
        from usearch.index import Index

        self.Index, self.a, self.base, self.queries = Index, a, base, queries

    def build(self, threads: int) -> float:
        idx = self.Index(
            ndim=self.a.dim, metric="ip", dtype="f32", connectivity=self.a.m, expansion_add=self.a.efc
        )
        t = time.perf_counter()
        idx.add(np.arange(len(self.base)), self.base, threads=threads)
        dt = time.perf_counter() - t
        self.idx = idx
        return dt

    def search(self, ef: int) -> np.ndarray:
        self.idx.expansion_search = ef
        return self.idx.search(self.queries, self.a.k, threads=1).keys

    def save(self, path: Path) -> None:
        self.idx.save(str(path))


PEERS = {"hnswlib": Hnswlib, "faiss": Faiss, "usearch": Usearch}


def run_peer(cls, a, base, queries, truth, efs, threads, workdir: Path) -> dict:
    try:
        peer = cls(a, base, queries)
    except ImportError as e:
        print(f"# {cls.name}: skipped ({e})", file=sys.stderr)
        return {}
    out = {"build": {}, "search": {}}
    keep = None
    for t in threads:
        times = []
        for _ in range(a.runs):
            times.append(peer.build(t))
            print(f"# {cls.name}: build threads={t} {times[-1]:.2f}s", file=sys.stderr)
        out["build"][t] = times
        if keep is None:
            keep = peer.idx  # search the index built on the first thread count
    peer.idx = keep
    for ef in efs:
        best, found = math.inf, None
        for _ in range(a.search_runs):
            t0 = time.perf_counter()
            found = peer.search(ef)
            best = min(best, time.perf_counter() - t0)
        out["search"][ef] = {"recall": recall(np.asarray(found), truth), "qps": len(queries) / best}
    path = workdir / f"{cls.name}.index"
    peer.save(path)
    out["bytes"] = file_size(path)
    return out


def run_sluice(binary: Path, a, paths, efs, threads, workdir: Path) -> dict:
    out = {"build": {}, "search": {}}
    common = ["--base", str(paths["base"]), "--queries", str(paths["queries"]), "--dim", str(a.dim),
              "--truth", str(paths["truth"]), "--m", str(a.m), "--efc", str(a.efc), "--k", str(a.k),
              "--runs", str(a.search_runs)]
    for i, t in enumerate(threads):
        times = []
        for r in range(a.runs):
            # The last build on the first thread count is also searched and saved.
            last = i == 0 and r == a.runs - 1
            extra = ["--ef", ",".join(map(str, efs)), "--save", str(workdir / "sluice.index")] if last else ["--ef", ""]
            proc = subprocess.run([str(binary), *common, "--threads", str(t), *extra],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"sluice ann failed:\n{proc.stderr}")
            for line in proc.stdout.splitlines():
                ev = json.loads(line)
                if ev["event"] == "build":
                    times.append(ev["seconds"])
                    print(f"# sluice: build threads={t} {ev['seconds']:.2f}s", file=sys.stderr)
                elif ev["event"] == "save":
                    out["bytes"] = ev["bytes"]
                elif ev["event"] == "search":
                    out["search"][ev["ef"]] = {"recall": ev["recall"], "qps": ev["qps"]}
        out["build"][t] = times
    return out


# ---- report -------------------------------------------------------------------------


def qps_at_recall(search: dict, target: float) -> float | None:
    """QPS at a recall, interpolated (log QPS, linear recall) between measured efs."""
    pts = sorted((v["recall"], v["qps"]) for v in search.values())
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1 and r1 > r0:
            w = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) * (1 - w) + math.log(q1) * w)
    return None


def report(results: dict, efs, threads, a) -> None:
    data = (f"real ({a.vectors.name})" if a.vectors else
            f"clustered ({a.clusters} clusters, spread {a.spread:g})" if a.data == "clustered" else "random")
    print(f"\ndata={data} n={a.n} dim={a.dim} queries={a.queries} k={a.k} M={a.m} ef_construction={a.efc}; "
          f"search on 1 thread, best of {a.search_runs}; build times: all runs")
    print(f"\n{'library':<9} " + " ".join(f"{'build ' + str(t) + 'T (s)':>18}" for t in threads) + f" {'index MB':>9}")
    for lib, r in results.items():
        cells = []
        for t in threads:
            ts = r["build"].get(t, [])
            cells.append(f"{' / '.join(f'{x:.1f}' for x in ts):>18}")
        mb = r.get("bytes", 0) / 1e6
        print(f"{lib:<9} " + " ".join(cells) + f" {mb:>9.1f}")
    base = results.get("hnswlib", {}).get("search", {})
    print(f"\n{'library':<9} {'ef':>4} {'recall@' + str(a.k):>10} {'QPS':>9} {'QPS/hnswlib':>12}")
    for lib, r in results.items():
        for ef in efs:
            s = r["search"].get(ef)
            if not s:
                continue
            ratio = f"{s['qps'] / base[ef]['qps']:.2f}" if ef in base else "-"
            print(f"{lib:<9} {ef:>4} {s['recall']:>10.4f} {s['qps']:>9.0f} {ratio:>12}")
    # Recall levels every library reaches within the measured efs.
    lo = max(min(v["recall"] for v in r["search"].values()) for r in results.values() if r["search"])
    hi = min(max(v["recall"] for v in r["search"].values()) for r in results.values() if r["search"])
    targets = [t for t in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995) if lo <= t <= hi]
    print(f"\nQPS at equal recall (interpolated between efs):\n{'library':<9} " + " ".join(f"{t:>8}" for t in targets))
    for lib, r in results.items():
        cells = [qps_at_recall(r["search"], t) for t in targets]
        print(f"{lib:<9} " + " ".join(f"{c:>8.0f}" if c else f"{'-':>8}" for c in cells))
    if "sluice" in results and "hnswlib" in results:
        ratios = []
        for t in targets:
            s_, h = qps_at_recall(results["sluice"]["search"], t), qps_at_recall(results["hnswlib"]["search"], t)
            ratios.append(f"{s_ / h:>8.2f}" if s_ and h else f"{'-':>8}")
        print(f"{'sl/hnsw':<9} " + " ".join(ratios))


def main() -> None:
    a = parse_args()
    if a.search_runs is None:
        a.search_runs = a.runs
    efs = [int(x) for x in a.ef.split(",")]
    threads = [int(x) for x in a.threads.split(",")]
    libs = [x.strip() for x in a.libs.split(",") if x.strip()]
    t = time.perf_counter()
    paths = make_data(a)
    print(f"# data in {a.data_dir} ({time.perf_counter() - t:.1f}s)", file=sys.stderr)
    base, queries, truth = load(paths, a)
    results = {}
    with tempfile.TemporaryDirectory(prefix="ann-") as tmp:
        workdir = Path(tmp)
        for lib in libs:
            # The machine's load when each library starts (reported with the results).
            start = {"utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "load": os.getloadavg()}
            print(f"# {lib}: start {start['utc']} UTC, load average {start['load']}", file=sys.stderr)
            if lib == "sluice":
                if a.sluice_ann is None:
                    print("# sluice: skipped (no --sluice-ann)", file=sys.stderr)
                    continue
                results[lib] = run_sluice(a.sluice_ann, a, paths, efs, threads, workdir)
            elif lib in PEERS:
                r = run_peer(PEERS[lib], a, base, queries, truth, efs, threads, workdir)
                if r:
                    results[lib] = r
            else:
                raise SystemExit(f"unknown library {lib}")
            if lib in results:
                results[lib]["start"] = start
            for f in workdir.iterdir():
                f.unlink() if f.is_file() else None
    report(results, efs, threads, a)
    if a.json_out:
        a.json_out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "results": results}, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
