#!/usr/bin/env python3
"""A quick interleaved A/B of two or more ways to start reapi, with the rig's own pieces.

    python3 bench/ab.py before='/tmp/old/.venv/bin/reapi serve' after='.venv/bin/reapi serve'

Each variant is NAME=COMMAND; the rig appends ``--config FILE --host 127.0.0.1 --port N`` when
the command contains no ``{config}`` / ``{port}`` placeholders (a server other than ``reapi
serve`` uses them, and gets the config as REAPI_CONFIG too). Every round starts each variant in
turn on the gateway core against the nginx mock, warms it up and runs ``wrk`` closed-loop
(non-streaming @32 and the fixed SSE stream @32), then stops it: rounds interleave the variants,
so a burst from another tenant of the machine hits one round, not one variant. Besides req/s it
reports the gateway's CPU time per request (its process tree's user + system time over the
run, divided by the requests served), which other tenants disturb far less than throughput:
on a busy machine, compare that. It prints the median of the rounds per variant. Runs at
``--nice`` like run.py. Needs nginx and wrk, like run.py; no venv of its own.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import measure  # noqa: E402
import systems as sysmod  # noqa: E402
from fixtures import MODEL, STREAM_MODEL  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("variants", nargs="+", help="NAME=COMMAND")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--nice", type=int, default=-10)
    args = ap.parse_args()
    sysmod.require_tools()
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    workdir = Path(tempfile.mkdtemp(prefix="reapi-ab-"))
    config = sysmod.reapi_config(workdir)
    mock = sysmod.start(
        "mock-nginx",
        ["nginx", "-e", "stderr", "-c", str(sysmod.nginx_mock_conf(workdir))],
        sysmod.RIG_CORE,
        workdir,
    )
    variants: list[sysmod.System] = []
    try:
        sysmod.wait_ready(f"http://127.0.0.1:{sysmod.MOCK_PORT}/healthz", mock, 10)
        for index, spec in enumerate(args.variants):
            name, _, command = spec.partition("=")
            port = 18100 + index
            cmd = shlex.split(command.format(config=config, port=port))
            if "{port}" not in command:
                cmd += ["--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
            system = sysmod.System(
                name,
                port,
                cmd,
                env={
                    "REAPI_DATABASE_URL": f"sqlite:///{workdir}/{name}.db",
                    "REAPI_CONFIG": str(config),
                },
            )
            sysmod._reapi_prepare(system, workdir)
            variants.append(system)
        results: dict[str, dict[str, list[float]]] = {v.name: {} for v in variants}
        for round_ in range(args.rounds):
            # Each round starts with the next variant, so none always runs first.
            for system in variants[round_ % len(variants) :] + variants[: round_ % len(variants)]:
                assert system.cmd is not None
                proc = sysmod.start(
                    f"{system.name}-{round_}",
                    system.cmd,
                    system.core,
                    workdir,
                    env=system.env,
                )
                try:
                    sysmod.wait_ready(f"http://127.0.0.1:{system.port}/healthz", proc, 60)
                    measure.wrk(system, MODEL, 32, 3, workdir)
                    for label, model in (("req/s @32", MODEL), ("SSE req/s @32", STREAM_MODEL)):
                        cpu = _cpu(proc)
                        r = measure.wrk(system, model, 32, args.seconds, workdir)
                        cpu = _cpu(proc) - cpu
                        if r["errors"]:
                            print(f"  {system.name}: {r['errors']} errors in {label}", flush=True)
                        row = results[system.name]
                        row.setdefault(label, []).append(r["rps"])
                        row.setdefault(label.replace("req/s", "p50 ms"), []).append(r["p50_ms"])
                        row.setdefault(label.replace("req/s", "p99 ms"), []).append(r["p99_ms"])
                        served = r["rps"] * args.seconds
                        per_request = round(cpu / served * 1e6) if served else 0
                        row.setdefault(label.replace("req/s", "CPU us/req"), []).append(per_request)
                    print(
                        f"round {round_ + 1} {system.name}: "
                        + ", ".join(f"{k} {v[-1]:g}" for k, v in results[system.name].items()),
                        flush=True,
                    )
                finally:
                    proc.stop()
                time.sleep(1)
        print(f"\nmedian of {args.rounds} interleaved rounds, load {os.getloadavg()[0]:.2f} now")
        for name, row in results.items():
            print(f"{name}: " + ", ".join(f"{k} {statistics.median(v):g}" for k, v in row.items()))
    finally:
        mock.stop()


def _cpu(proc: sysmod.Proc) -> float:
    return sum(measure._proc_cpu(pid) for pid in sysmod._tree(proc.popen.pid))


if __name__ == "__main__":
    main()
