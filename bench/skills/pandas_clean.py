"""pandas_clean.py - the cleaning csv.clean does, done with pandas, for
bench/skills: read, trim text, parse numbers with thousands separators,
currency and percentages, dates in mixed forms to ISO, yes/no to booleans,
drop empty and duplicate rows, write the CSV and a JSON schema. Prints
{"secs", "peak_rss_kb", "rows_out"}."""
import json
import resource
import sys
import time

import pandas as pd

t0 = time.monotonic()
src, out = sys.argv[1], sys.argv[2]
df = pd.read_csv(src, dtype=str, keep_default_na=False, skipinitialspace=False)
df.columns = [c.strip() for c in df.columns]
for c in df.columns:
    df[c] = df[c].str.strip()
num = lambda s: pd.to_numeric(s.str.replace(r"[,$¥€£\s]", "", regex=True), errors="coerce")
df["id"] = num(df["id"]).astype("Int64")
df["amount"] = num(df["amount"])
df["price"] = num(df["price"])
df["share"] = num(df["share"].str.rstrip("%")) / 100
df["qty"] = num(df["qty"]).astype("Int64")
day = pd.to_datetime(df["day"], format="%Y-%m-%d", errors="coerce")
day = day.fillna(pd.to_datetime(df["day"], format="%Y/%m/%d", errors="coerce"))
day = day.fillna(pd.to_datetime(df["day"], format="%d/%m/%Y", errors="coerce"))
df["day"] = day.dt.strftime("%Y-%m-%d")
df["active"] = df["active"].str.lower().map({"yes": True, "no": False})
df = df.replace("", pd.NA).dropna(how="all").drop_duplicates()
df.to_csv(out, index=False)
schema = {c: str(t) for c, t in df.dtypes.items()}
with open(out + ".schema.json", "w") as f:
    json.dump(schema, f)
print(json.dumps({"secs": time.monotonic() - t0,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows_out": len(df)}))
