#!/usr/bin/env python3
"""One command for the whole benchmark: start the mocks, then each system under
test in turn, measure it under identical conditions, stop it, and write the
report and chart.

    python3 bench/run.py                      # everything available, full length
    python3 bench/run.py --quick --only floor,nginx

The first run creates bench/.venv (the rig), and, when selected, bench/.venv-litellm
and bench/.venv-reapi. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv"
LITELLM_VENV = BENCH / ".venv-litellm"
REAPI_VENV = BENCH / ".venv-reapi"
ALL = ["direct", "floor", "nginx", "litellm", "reapi", "reapi-pg", "reapi-w2"]


def _bootstrap() -> None:
    """Re-run this script inside bench/.venv, creating it on first use."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin" / "python"
    if not py.exists():
        print("creating bench/.venv ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "-r", str(BENCH / "requirements.txt")],
            check=True,
        )
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def _ensure_venv(venv: Path, spec: list[str], label: str, always: bool = False) -> Path:
    py = venv / "bin" / "python"
    if py.exists() and not always:
        return py
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"installing {label} into {venv.name} (this can take minutes) ...", flush=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *spec], check=True)
    return py


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(ALL)}")
    ap.add_argument("--skip", default="", help="comma-separated systems to leave out")
    ap.add_argument("--quick", action="store_true", help="short runs, one repetition (smoke test)")
    ap.add_argument("--repeats", type=int, help="repetitions per point (default 2, quick 1)")
    ap.add_argument("--rates", default="50,500", help="fixed rates for the added-latency runs")
    ap.add_argument("--stream-levels", default="25,100,250,500,1000,1500")
    ap.add_argument("--hold-chunks", type=int, default=60, help="chunks per held stream")
    ap.add_argument("--hold-itl", type=float, default=0.05, help="seconds between held chunks")
    ap.add_argument(
        "--rate-cap",
        type=float,
        default=15000,
        help="highest rate tried; the rate client's own ceiling on one core",
    )
    ap.add_argument("--reapi-src", default=str(BENCH.parent), help="reapi checkout to install")
    ap.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/reapi_bench",
        help="database the rig drops and recreates for reapi-pg",
    )
    ap.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/15",
        help="redis db the rig flushes for reapi-pg",
    )
    ap.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="niceness of the rig and every system (all inherit it); 0 to disable",
    )
    ap.add_argument(
        "--out",
        help="results directory (default bench/results/<timestamp>); if it "
        "already holds results.json, systems measured there without error are kept "
        "and only the rest are run (resume)",
    )
    ap.add_argument(
        "--publish",
        action="store_true",
        help="also copy the report and chart to bench/REPORT.md and bench/chart.png",
    )
    return ap.parse_args()


def main() -> None:
    _bootstrap()
    sys.path.insert(0, str(BENCH))
    import measure
    import report
    import systems as sysmod

    args = parse_args()
    sysmod.require_tools()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.nice:
        # other tenants of this machine keep running; a higher priority for the
        # rig and the system under test (all children inherit it) cuts the
        # scheduling delays they inject, equally for every system
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        except PermissionError:
            print("cannot renice (not root); running at normal priority", flush=True)

    names = args.only.split(",") if args.only else list(ALL)
    names = [n for n in names if n not in args.skip.split(",")]
    unknown = set(names) - set(ALL)
    if unknown:
        sys.exit(f"unknown systems: {', '.join(sorted(unknown))}")
    if "direct" not in names:
        names.insert(0, "direct")  # every 'added' number is relative to direct
    workdir = Path(args.out or BENCH / "results" / time.strftime("%Y%m%dT%H%M%S")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    litellm_py = LITELLM_VENV / "bin" / "python"
    if "litellm" in names:
        litellm_py = _ensure_venv(LITELLM_VENV, ["litellm[proxy]"], "litellm[proxy]")
    reapi_py = None
    if any(n.startswith("reapi") for n in names):
        src = Path(args.reapi_src)
        if (src / "src" / "reapi" / "cli.py").exists():
            reapi_py = _ensure_venv(REAPI_VENV, ["-e", str(src)], f"reapi from {src}", always=True)
        else:
            print(f"no reapi CLI in {src}; skipping reapi systems", flush=True)

    cfg = measure.Config.make(args)
    systems = sysmod.build_systems(workdir, reapi_py, litellm_py, args.pg_url, args.redis_url)
    meta = report.machine_meta(cfg, args)
    results: dict[str, dict[str, object]] = {}
    previous = workdir / "results.json"
    if previous.exists():
        kept = json.loads(previous.read_text())["results"]
        results = {n: r for n, r in kept.items() if "error" not in r and n in names}
        print(f"resuming: keeping {', '.join(results) or 'nothing'}", flush=True)

    def _stop(signum: int, _frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")  # unwinds, so every child is stopped

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    mocks = sysmod.start_mocks(workdir, args.hold_chunks, args.hold_itl)
    try:
        for name in names:
            if name in results:
                continue
            if name not in systems:
                print(f"== {name}: not available, skipped", flush=True)
                continue
            print(f"== {name}", flush=True)
            cpu = measure.CpuWatch(mocks.pids())
            results[name] = measure.measure_system(systems[name], cfg, workdir)
            results[name]["other_tenants_cpu_pct"] = cpu.other_pct()
            (workdir / "results.json").write_text(
                json.dumps({"meta": meta, "results": results}, indent=1)
            )
    finally:
        mocks.stop()
    md = report.write(workdir, meta, results)
    print(md)
    if args.publish:
        (BENCH / "REPORT.md").write_text(md)
        (BENCH / "chart.png").write_bytes((workdir / "chart.png").read_bytes())
    print(f"results in {workdir}", flush=True)


if __name__ == "__main__":
    main()
