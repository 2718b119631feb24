"""gen.py - the inputs of bench/skills: a messy 10-column CSV of N rows
(thousands separators, currency, percentages, mixed date forms, spaces,
yes/no, ~1% duplicate and ~0.5% empty rows), a 1,000,000-point series, and
a tree of text files for search. Deterministic (seeded)."""
import os
import random
import sys


def messy(path, n):
    rnd = random.Random(1)
    cities = ["Beijing", "Shanghai", "Berlin", "Paris", "Lagos", "Lima", "Oslo", "Pune"]
    prev = None
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id,name,amount,price,share,day,active,city,qty,note\n")
        for i in range(n):
            r = rnd.random()
            if r < 0.005:
                f.write(",,,,,,,,,\n")
                continue
            if r < 0.015 and prev:
                f.write(prev)
                continue
            amt = rnd.randint(0, 5_000_000) / 100
            m, d = rnd.randint(1, 12), rnd.randint(1, 28)
            day = (f"2025-{m:02d}-{d:02d}" if i % 3 == 0 else
                   f"2025/{m}/{d}" if i % 3 == 1 else f"{d:02d}/{m:02d}/2025")
            line = (f'{i}, name {i % 1000} ,"{amt:,.2f}",${rnd.randint(1, 99999) / 100:.2f},'
                    f'{rnd.randint(0, 1000) / 10}%,{day},{"yes" if i % 2 else "no"},'
                    f'{cities[i % 8]},{rnd.randint(1, 500)},note {rnd.randint(0, 99)}\n')
            f.write(line)
            prev = line


def series(path, n):
    import math
    with open(path, "w") as f:
        f.write("t,v\n")
        for i in range(n):
            f.write(f"{i},{math.sin(i / 5000) * 100 + (i % 7):.3f}\n")


def tree(path, files):
    rnd = random.Random(2)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    for k in range(files):
        d = os.path.join(path, f"d{k % 100:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{k}.txt"), "w") as f:
            for ln in range(100):
                ws = " ".join(rnd.choice(words) for _ in range(12))
                if rnd.random() < 0.0005:
                    ws += " needle_xyz"
                f.write(f"{ln} {ws}\n")


if __name__ == "__main__":
    what, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"messy": messy, "series": series, "tree": tree}[what](path, n)
