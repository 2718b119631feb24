#!/usr/bin/env python3
"""faiss_bench.py - faiss (Debian python3-faiss) on the vectors vec_bench wrote.

    faiss_bench.py DIR DIMS [hnsw]

Reads DIR/data.f32, queries.f32 and gt.i64 (the exact top 10 by
vec_bench), and measures, on one thread (faiss.omp_set_num_threads(1), as
aosd's index searches on one thread) and one query at a time (as a memory
search is one query): IndexFlatIP (exact) and, with "hnsw", IndexHNSWFlat
(M 16, efConstruction 200, inner product) at several efSearch: add rate,
p50/p99 latency of a top-10 query, recall@10 against vec_bench's exact
answer, and the process's peak RSS. Prints "key value" lines."""
import resource
import sys
import time

import faiss
import numpy as np

K = 10


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def queries(index, qs, gt, label):
    lat = []
    found = 0
    for i in range(qs.shape[0]):
        q = qs[i:i + 1]
        t0 = time.perf_counter()
        _, ids = index.search(q, K)
        lat.append(time.perf_counter() - t0)
        found += len(set(ids[0].tolist()) & set(gt[i].tolist()))
    lat.sort()
    p50 = lat[int(0.5 * (len(lat) - 1) + 0.5)]
    p99 = lat[int(0.99 * (len(lat) - 1) + 0.5)]
    print(f"{label}_p50_ms {p50 * 1e3:.3f}")
    print(f"{label}_p99_ms {p99 * 1e3:.3f}")
    print(f"{label}_recall10 {found / (qs.shape[0] * K):.4f}")
    return p50


def main():
    d = sys.argv[1]
    dims = int(sys.argv[2])
    hnsw = len(sys.argv) > 3 and sys.argv[3] == "hnsw"
    faiss.omp_set_num_threads(1)
    data = np.fromfile(f"{d}/data.f32", dtype=np.float32).reshape(-1, dims)
    qs = np.fromfile(f"{d}/queries.f32", dtype=np.float32).reshape(-1, dims)
    gt = np.fromfile(f"{d}/gt.i64", dtype=np.int64).reshape(-1, K)
    n = data.shape[0]
    print(f"faiss_version {faiss.__version__}")
    flat = faiss.IndexFlatIP(dims)
    t0 = time.perf_counter()
    flat.add(data)
    print(f"flat_insert_per_s {n / (time.perf_counter() - t0):.0f}")
    p50 = queries(flat, qs, gt, "flat")
    print(f"flat_scan_GBps {n * dims * 4 / p50 / 1e9:.2f}")
    del flat
    if hnsw:
        h = faiss.IndexHNSWFlat(dims, 16, faiss.METRIC_INNER_PRODUCT)
        h.hnsw.efConstruction = 200
        t0 = time.perf_counter()
        c0 = time.process_time()
        h.add(data)
        dt = time.perf_counter() - t0
        print(f"hnsw_build_s {dt:.1f}")
        print(f"hnsw_build_cpu_s {time.process_time() - c0:.1f}")
        print(f"hnsw_insert_per_s {n / dt:.0f}")
        for ef in (16, 32, 64, 128, 256):
            h.hnsw.efSearch = ef
            queries(h, qs, gt, f"hnsw_ef{ef}")
    print(f"rss_peak_MB {rss_mb():.1f}")


if __name__ == "__main__":
    main()
