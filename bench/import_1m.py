"""Lead import and hopper benchmark with one million leads.

    python bench/import_1m.py                  # 1,000,000 leads
    python bench/import_1m.py --rows 200000    # quicker
    python bench/import_1m.py --workers 1      # parsing in one process (no pool)
    python bench/import_1m.py --keep DIR       # keep the CSV and the store
    python bench/import_1m.py --store postgresql  # on a private PostgreSQL cluster

1. Writes a CSV of N distinct valid London numbers (``+44 20 7xxx xxxx``
   and ``+44 20 8xxx xxxx``), half in national format (``020 7...``), half
   E.164, with a name and an account column; a sample is checked valid with
   phonenumbers before the run.
2. Imports it with the real importer (``dialerd.store.importer.import_csv``)
   into a fresh store: wall time, rows/s, peak RSS of the process.
3. With the N leads in the store, times ``Store.fetch_due_leads`` (the
   hopper, on its partial index) with ``limit=1`` and ``limit=50``, 1000
   calls each (each call marks its leads held, so every call finds new
   ones, as the daemon's does): median and p99.

``--store postgresql`` does the same on a throwaway cluster the sandbox
starts (``dialerd.sandbox.postgres``: its own port, fsync off): the import
goes through COPY, the hopper through its ``FOR UPDATE SKIP LOCKED`` claim.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import phonenumbers  # noqa: E402

from dialerd.store import importer, open_store  # noqa: E402
from dialerd.store.postgres import CLAIM_HOPPER_SQL  # noqa: E402
from dialerd.store.sqlite import HOPPER_SQL  # noqa: E402


def write_csv(path: Path, n: int, seed: int = 1) -> None:
    """n distinct numbers: a random sample of the 20 million London
    020 7xxx xxxx / 020 8xxx xxxx numbers."""
    rng = random.Random(seed)
    picks = rng.sample(range(20_000_000), n)
    with path.open("w", newline="") as f:
        f.write("phone,name,account\n")
        lines = []
        for i, k in enumerate(picks):
            exch, sub = divmod(k, 10_000_000)
            digit = 7 + exch
            if i % 2:
                phone = f"+4420{digit}{sub:07d}"
            else:
                s = f"{sub:07d}"
                phone = f"020 {digit}{s[:3]} {s[3:]}"
            lines.append(f"{phone},Customer {i},AC-{i:07d}\n")
            if len(lines) >= 100_000:
                f.writelines(lines)
                lines.clear()
        f.writelines(lines)


def check_sample(path: Path, k: int = 2000) -> None:
    with path.open() as f:
        next(f)
        rows = [next(f).split(",")[0] for _ in range(k)]
    bad = [r for r in rows if not phonenumbers.is_valid_number(phonenumbers.parse(r, "GB"))]
    if bad:
        raise SystemExit(f"generated invalid numbers, e.g. {bad[:3]}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_children_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def run(rows: int, workdir: Path, url: str | None = None) -> list[tuple[str, str]]:
    csv_path = workdir / "leads.csv"
    t = time.perf_counter()
    # in a child process, so the peak RSS below is the import's alone
    gen = multiprocessing.get_context("spawn").Process(target=write_csv, args=(csv_path, rows))
    gen.start()
    gen.join()
    t_gen = time.perf_counter() - t
    check_sample(csv_path)
    size_mb = csv_path.stat().st_size / 1e6
    rss_before = peak_rss_mb()

    store: Any = await open_store(url or workdir / "bench.sqlite3")
    try:
        t = time.perf_counter()
        rep = await importer.import_csv(store, "bench", csv_path, "GB", now=1_000.0)
        t_imp = time.perf_counter() - t
        if rep.imported != rows or rep.rejected:
            raise SystemExit(f"imported {rep.imported}, rejected {rep.rejected}: {rep.errors[:3]}")
        rss_after = peak_rss_mb()
        if url is None:
            plan = " / ".join(await store.explain(HOPPER_SQL, ("bench", 2_000.0, 1)))
            select = HOPPER_SQL
        else:
            await store._execute("ANALYZE leads")
            plan = " / ".join(
                line.strip() for line in await store.explain(CLAIM_HOPPER_SQL, "bench", 2e3, [], 1)
            )
            # the claim's SELECT alone (no lock, no update)
            select = (
                "SELECT id FROM leads WHERE campaign = $1 AND NOT held"
                " AND status IN ('new', 'retry') AND next_due_at <= $2"
                " ORDER BY priority DESC, next_due_at, id LIMIT $3"
            )

        timings: dict[int, list[float]] = {1: [], 50: []}
        for limit in (1, 50):
            for _ in range(1000):
                t = time.perf_counter()
                got = await store.fetch_due_leads("bench", 2_000.0, limit)
                timings[limit].append(time.perf_counter() - t)
                assert len(got) == limit
        raw = []
        for _ in range(1000):  # the SELECT alone, through the same connection
            t = time.perf_counter()
            if url is None:
                await store._fetchall(select, ("bench", 2_000.0, 1))
            else:
                await store._fetch(select, "bench", 2_000.0, 1)
            raw.append(time.perf_counter() - t)
    finally:
        await store.close()

    us = 1e6
    return [
        ("leads", f"{rows:,}"),
        ("CSV", f"{size_mb:.1f} MB (generated in {t_gen:.1f} s)"),
        ("parse workers", str(importer.parse_workers())),
        ("import: total", f"{t_imp:.2f} s"),
        ("import: rows/s", f"{rows / t_imp:,.0f}"),
        ("import: per row", f"{t_imp / rows * us:.1f} µs"),
        ("peak RSS (process)", f"{rss_after:.0f} MB (before the import: {rss_before:.0f} MB)"),
        ("peak RSS (largest parse worker)", f"{peak_children_mb():.0f} MB"),
        ("hopper plan", plan),
        (
            "fetch_due_leads(limit=1)",
            f"median {statistics.median(timings[1]) * us:.0f} µs,"
            f" p99 {pct(timings[1], 0.99) * us:.0f} µs",
        ),
        (
            "fetch_due_leads(limit=50)",
            f"median {statistics.median(timings[50]) * us:.0f} µs,"
            f" p99 {pct(timings[50], 0.99) * us:.0f} µs",
        ),
        (
            "hopper SELECT alone (limit=1)",
            f"median {statistics.median(raw) * us:.0f} µs, p99 {pct(raw, 0.99) * us:.0f} µs",
        ),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=None, help="parse processes (default: auto)")
    ap.add_argument("--keep", type=Path, default=None, help="keep CSV and store in this dir")
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    if args.workers is not None:
        importer.PARSE_WORKERS = args.workers
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="dialerd-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = None
    if args.store == "postgresql":
        from dialerd.sandbox.postgres import PostgresCluster

        cluster = PostgresCluster()
        cluster.start()
    try:
        table = asyncio.run(run(args.rows, workdir, cluster.url() if cluster else None))
        table.insert(0, ("store", args.store))
    finally:
        if cluster is not None:
            cluster.close()
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    w = max(len(k) for k, _ in table)
    print(f"| {'':{w}} | |\n|{'-' * (w + 2)}|---|")
    for k, v in table:
        print(f"| {k:{w}} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
