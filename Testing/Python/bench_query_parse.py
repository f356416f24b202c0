"""Benchmark (not a test): per-description time of ``parse_text`` over coded report files.

Usage: ``python Testing/Python/bench_query_parse.py FILE.csv [FILE.csv …]``, or ``--fallback`` to time
20 descriptions that only the similarity fallback reads (its phrase cache cleared before each,
wall and CPU time, since the shared machine's load inflates wall time); to time another
version of the parser against this one in the same run, put its ``TextLesionSeg`` folder first on
``PYTHONPATH`` (e.g. ``git archive <commit> TextLesionSeg/TextLesionSegLib | tar -x -C /tmp/old``).
"""

from __future__ import annotations

import csv
import statistics
import sys
import time

from TextLesionSegLib.query import parse_text


def main(paths: list[str]) -> None:
    """Print total, mean, median, p95 and max milliseconds per description (wall), and CPU time
    (the shared machine's load inflates wall time)."""
    texts: list[str] = []
    for name in paths:
        with open(name, newline="", encoding="utf-8-sig") as f:
            texts += [r["report"] for r in csv.DictReader(f) if r["report"].strip()]
    parse_text(texts[0])  # warm-up: tables compiled
    times, cpu = [], []
    start, start_cpu = time.perf_counter(), time.process_time()
    for text in texts:
        t, c = time.perf_counter(), time.process_time()
        parse_text(text)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    total, total_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    times.sort()
    ms = [1000 * t for t in times]
    print(f"{len(texts)} reports: total {total:.2f} s (CPU {total_cpu:.2f} s), mean {statistics.mean(ms):.2f} ms, median "
          f"{statistics.median(ms):.2f} ms, p95 {ms[int(0.95 * len(ms))]:.2f} ms, max {ms[-1]:.2f} ms; CPU mean "
          f"{1000 * statistics.mean(cpu):.2f} ms, max {1000 * max(cpu):.2f} ms")


def fallback() -> None:
    """Per-description wall and CPU milliseconds of descriptions the similarity fallback reads."""
    from TextLesionSegLib.query import similarity

    texts = [f"mass {n} cm in the liver with internal texture of varying attenuation" for n in range(1, 21)]
    parse_text(texts[0])  # warm-up: the model loads and embeds its prototypes once
    wall, cpu = [], []
    for text in texts:
        similarity.nearest.cache_clear()
        t, c = time.perf_counter(), time.process_time()
        parse_text(text)
        wall.append(1000 * (time.perf_counter() - t))
        cpu.append(1000 * (time.process_time() - c))
    print(f"fallback, {len(texts)} descriptions: wall median {statistics.median(wall):.1f} ms, max {max(wall):.1f} ms;"
          f" CPU median {statistics.median(cpu):.1f} ms, max {max(cpu):.1f} ms")


if __name__ == "__main__":
    fallback() if sys.argv[1:] == ["--fallback"] else main(sys.argv[1:])
