#!/usr/bin/env python3
"""compare.py - aos's HNSW beside faiss's at equal recall (bench/memory).

    compare.py AOS_OUT FAISS_OUT

Reads the "key value" lines of vec_bench and faiss_bench.py and, for
each recall@10 target (0.90, 0.95, 0.99), takes each library's fastest
ef row (by p50; aos's float32 and int8 walks both count) that reaches it and prints both p50s and faiss/aos
(above 1: aos is faster). A library none of whose rows reaches a target
prints "-" there. Also checks the issue's target: p50 <= 2 ms at recall@10
>= 0.95."""
import sys


def read(path):
    kv = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                kv[parts[0]] = parts[1]
    return kv


def rows(kv):
    """(label, p50, recall) of every ef row: hnsw_ef* (float32) and, from
    vec_bench, hnsw8_ef* (the walk on int8 codes, re-ranked)."""
    out = []
    for k, v in kv.items():
        for pre, name in (("hnsw_ef", "ef"), ("hnsw8_ef", "int8 ef")):
            if k.startswith(pre) and k.endswith("_p50_ms"):
                ef = k[len(pre):-len("_p50_ms")]
                r = kv.get(f"{pre}{ef}_recall10")
                if r is not None:
                    out.append((f"{name} {ef}", float(v), float(r)))
    return out


def best(rs, target):
    ok = [r for r in rs if r[2] >= target]
    return min(ok, key=lambda r: r[1]) if ok else None


def main():
    a, f = rows(read(sys.argv[1])), rows(read(sys.argv[2]))
    for t in (0.90, 0.95, 0.99):
        ba, bf = best(a, t), best(f, t)
        sa = f"aos {ba[0]} {ba[1]:.3f} ms (recall {ba[2]:.4f})" if ba else "aos -"
        sf = f"faiss {bf[0]} {bf[1]:.3f} ms (recall {bf[2]:.4f})" if bf else "faiss -"
        ratio = f"{bf[1] / ba[1]:.2f}" if ba and bf else "-"
        print(f"recall>={t:.2f}: {sa}; {sf}; faiss/aos p50 {ratio}")
    ba = best(a, 0.95)
    met = "met" if ba and ba[1] <= 2.0 else "not met"
    print(f"target p50 <= 2 ms at recall@10 >= 0.95: {met}")


if __name__ == "__main__":
    main()
