#!/usr/bin/env python3
"""faiss_bench.py - faiss (Debian python3-faiss) on the vectors vec_bench wrote.

    faiss_bench.py DIR DIMS [hnsw]

Reads DIR/data.f32, queries.f32 and gt.i64 (the exact top 10 by
vec_bench), and measures, on one thread (faiss.omp_set_num_threads(1), as
aosd's index searches on one thread) and one query at a time (as a memory
search is one query): IndexFlatIP (exact) and, with "hnsw", IndexHNSWFlat
(inner product) at several efSearch: add rate, p50/p99 latency of a
top-10 query, recall@10 against vec_bench's exact answer, and the
process's peak RSS. Prints "key value" lines.

Env: FAISS_M (16), FAISS_EFC (200), FAISS_THREADS (1: OpenMP threads for
the graph's build only; searches stay on one), FAISS_EFS
("16,32,64,128,256"), FAISS_BUILD_MAX_S (0: no bound): the graph is built
in batches of 20,000 and the build is abandoned past this many seconds,
printing hnsw_built_n and the projected build time instead of searches
(a graph of part of the data is not comparable). FAISS_SKIP_FLAT=1 skips
IndexFlatIP. FAISS_INDEX_CACHE=FILE: the graph is read from FILE when it
exists (built for the same vectors, M and efConstruction: its header is
checked) instead of built, and written to FILE after a complete build;
FAISS_BUILD_ONLY=1 stops after writing it. Building the 1,000,000 graph
takes Debian's generic faiss tens of CPU minutes: build it once at a low
priority, then measure its searches beside aos's in a quiet window."""
import os
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


def search_hnsw(h, qs, gt, efs):
    faiss.omp_set_num_threads(1)
    for ef in efs:
        h.hnsw.efSearch = ef
        queries(h, qs, gt, f"hnsw_ef{ef}")


def main():
    sys.stdout.reconfigure(line_buffering=True)  # a bounded run cut short keeps its lines
    d = sys.argv[1]
    dims = int(sys.argv[2])
    hnsw = len(sys.argv) > 3 and sys.argv[3] == "hnsw"
    faiss.omp_set_num_threads(1)
    data = np.fromfile(f"{d}/data.f32", dtype=np.float32).reshape(-1, dims)
    qs = np.fromfile(f"{d}/queries.f32", dtype=np.float32).reshape(-1, dims)
    gt = np.fromfile(f"{d}/gt.i64", dtype=np.int64).reshape(-1, K)
    n = data.shape[0]
    print(f"faiss_version {faiss.__version__}")
    print(f"faiss_compile {faiss.get_compile_options()}")
    if os.environ.get("FAISS_SKIP_FLAT") != "1":
        flat = faiss.IndexFlatIP(dims)
        t0 = time.perf_counter()
        flat.add(data)
        print(f"flat_insert_per_s {n / (time.perf_counter() - t0):.0f}")
        p50 = queries(flat, qs, gt, "flat")
        print(f"flat_scan_GBps {n * dims * 4 / p50 / 1e9:.2f}")
        del flat
    if hnsw:
        m = int(os.environ.get("FAISS_M", "16"))
        efc = int(os.environ.get("FAISS_EFC", "200"))
        threads = int(os.environ.get("FAISS_THREADS", "1"))
        efs = [int(e) for e in os.environ.get("FAISS_EFS", "16,32,64,128,256").split(",")]
        max_s = float(os.environ.get("FAISS_BUILD_MAX_S", "0"))
        print(f"hnsw_m {m}\nhnsw_efc {efc}\nhnsw_threads {threads}", flush=True)
        cache = os.environ.get("FAISS_INDEX_CACHE", "")
        if cache and os.path.exists(cache):
            t0 = time.perf_counter()
            h = faiss.read_index(cache)
            if (h.ntotal != n or h.d != dims or h.hnsw.efConstruction != efc
                    or h.hnsw.nb_neighbors(1) != m):
                sys.exit(f"{cache}: not a graph of these vectors with M {m}, efConstruction {efc}")
            print(f"hnsw_loaded_s {time.perf_counter() - t0:.1f}")
            search_hnsw(h, qs, gt, efs)
            print(f"rss_peak_MB {rss_mb():.1f}")
            return
        h = faiss.IndexHNSWFlat(dims, m, faiss.METRIC_INNER_PRODUCT)
        h.hnsw.efConstruction = efc
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        c0 = time.process_time()
        batch = 20000
        for i in range(0, n, batch):
            h.add(data[i:i + batch])
            el = time.perf_counter() - t0
            if max_s > 0 and el > max_s and i + batch < n:
                done = i + batch
                print(f"hnsw_built_n {done}")
                print(f"hnsw_build_abandoned_s {el:.1f}")
                print(f"hnsw_build_cpu_s {time.process_time() - c0:.1f}")
                print(f"hnsw_insert_per_s {done / el:.0f}")
                # inserts slow down as the graph grows (~log n): a lower bound
                print(f"hnsw_build_projected_s_at_least {el * n / done:.0f}")
                print(f"rss_peak_MB {rss_mb():.1f}")
                return
        faiss.omp_set_num_threads(1)
        dt = time.perf_counter() - t0
        print(f"hnsw_build_s {dt:.1f}")
        print(f"hnsw_build_cpu_s {time.process_time() - c0:.1f}")
        print(f"hnsw_insert_per_s {n / dt:.0f}")
        if cache:
            faiss.write_index(h, cache)
            if os.environ.get("FAISS_BUILD_ONLY") == "1":
                print(f"hnsw_written {cache}")
                return
        search_hnsw(h, qs, gt, efs)
    print(f"rss_peak_MB {rss_mb():.1f}")


if __name__ == "__main__":
    main()
