"""Benchmark runner: `python -m benchmarks.run [--only runtime] [--quick]`.

Starts one embedded redis-server (AOF off), runs every selected suite against it (each suite runs
sluice and its peers side by side), prints markdown tables of ratios and writes
`benchmarks/results/<stamp>.json`, `.md` and `.png` (plus `latest.*`). A suite is a module with
`Options`, `Options.quick()` and `run(url, options) -> Report`; register new ones in SUITES.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import peers

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SUITES = {"runtime": "benchmarks.runtime", "history": "benchmarks.history", "vectors": "benchmarks.vectors"}
SUITES |= {
    "caches": "benchmarks.caches",
    "foreground": "benchmarks.foreground",
    "semantic": "benchmarks.semantic",
    "checkpoints": "benchmarks.checkpoints",
}


def _clean(obj: Any) -> Any:
    """JSON without NaN (null instead)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def write_plot(json_path: Path, png_path: Path) -> str:
    """Plot in this Python if it has matplotlib, else in the peers' environment."""
    try:
        import matplotlib  # noqa: F401

        from benchmarks.plot import plot

        plot(json.loads(json_path.read_text()), png_path)
        return str(png_path)
    except ImportError:
        pass
    try:
        python = peers.python_with("matplotlib")
    except peers.PeerUnavailable as e:
        return f"no plot: {e}"
    proc = subprocess.run(
        [python, "-m", "benchmarks.plot", str(json_path), str(png_path)],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return str(png_path) if proc.returncode == 0 else f"no plot: {proc.stderr.strip()[-500:]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(SUITES), help="suite(s) to run (default: all)")
    ap.add_argument("--quick", action="store_true", help="small sizes: a check that everything runs")
    ap.add_argument("--n", type=int, help="jobs per throughput case (overrides the default)")
    ap.add_argument("--repeat", type=int, help="rounds per case, systems interleaved")
    ap.add_argument("--latency-seconds", type=float, help="duration of the latency case")
    ap.add_argument("--systems", help="comma-separated subset, e.g. sluice,raw (skips celery)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = ap.parse_args(argv)

    from sluice_workers.server.embedded import EmbeddedRedis

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    reports = {}
    with EmbeddedRedis(appendonly=False) as server:
        redis_desc = f"redis-server {'.'.join(map(str, server.binary.version))}"
        print(f"# {redis_desc} at {server.url}; {os.cpu_count()} CPUs", file=sys.stderr)
        for name in args.only or list(SUITES):
            module = importlib.import_module(SUITES[name])
            opts = module.Options.quick() if args.quick else module.Options()
            if args.n is not None:
                opts.n = args.n
            if args.repeat is not None:
                opts.repeat = args.repeat
            if args.latency_seconds is not None:
                opts.latency_seconds = args.latency_seconds
            if args.systems:
                opts.systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
            reports[name] = module.run(server.url, opts)
    results = {
        "meta": {
            "started": stamp,
            "redis": redis_desc,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "argv": sys.argv[1:] if argv is None else argv,
        },
        "suites": {name: r.as_dict() for name, r in reports.items()},
    }
    json_path = args.out / f"{stamp}.json"
    json_path.write_text(json.dumps(_clean(results), indent=1))
    markdown = "\n\n".join(r.markdown() for r in reports.values())
    header = (
        f"# sluice benchmarks {stamp} — {redis_desc}, {os.cpu_count()} CPUs{' (quick)' if args.quick else ''}"
    )
    (args.out / f"{stamp}.md").write_text(f"{header}\n\n{markdown}\n")
    plot = write_plot(json_path, args.out / f"{stamp}.png")
    for ext in ("json", "md", "png"):
        src = args.out / f"{stamp}.{ext}"
        if src.exists():
            shutil.copyfile(src, args.out / f"latest.{ext}")
    print(f"{header}\n\n{markdown}\n")
    print(f"results: {json_path}, {args.out / (stamp + '.md')}; plot: {plot}")
    ok = all(m["ok"] for r in reports.values() for m in r.data.get("measurements", []))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
