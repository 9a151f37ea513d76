"""Turns the raw results of a run into the markdown report and the chart.

Every figure is the median of its repetitions; the spread between repetitions
is reported as the noise. "Added" figures subtract the direct run (load straight
at the mock), so they are what the proxy costs on top of the rig itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

TARGETS = """\
- throughput >= 30x LiteLLM and >= 50% of the floor proxy
- added latency at the moderate fixed rate: p50 <= 1 ms, p99 <= 2 ms
- streaming: added TTFT p50 <= 1 ms; >= 500 concurrent streams with no stall
- RSS <= 80 MB after load, no growth across repeated runs
- PostgreSQL + Redis within 20% of SQLite"""


def machine_meta(cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": (wrk.stdout + wrk.stderr).split("[")[0].strip(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "config": dataclasses.asdict(cfg),
        "quick": args.quick,
        "nice": args.nice,
    }


def _med(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _spread(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    if len(vals) < 2 or not statistics.median(vals):
        return None
    return (max(vals) - min(vals)) / statistics.median(vals) * 100


def summarize(results: dict[str, Any], moderate: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, r in results.items():
        if "throughput" not in r:
            out[name] = {"error": r.get("error", "no data")}
            continue
        s: dict[str, Any] = {}
        for key in ("c32", "c128", "sse_c32"):
            rps = [x["rps"] for x in r["throughput"][key]]
            s[key], s[key + "_noise"] = _med(rps), _spread(rps)
            s[key + "_errors"] = sum(x["errors"] for x in r["throughput"][key])
        s["c1_p50"] = _med([x["p50_ms"] for x in r["c1"]])
        s["c1_p99"] = _med([x["p99_ms"] for x in r["c1"]])
        s["c1_noise"] = _spread([x["p50_ms"] for x in r["c1"]])
        s["rates"] = {}
        for rate, runs in r["fixed_rate"].items():
            if any(x.get("skipped") for x in runs):
                s["rates"][rate] = {"p50": None, "p99": None, "noise": None, "held": False}
                continue
            held = all(
                x["errors"] == 0 and x["achieved_rps"] >= 0.97 * x["target_rps"] for x in runs
            )
            s["rates"][rate] = {
                "p50": _med([x["p50_ms"] for x in runs]),
                "p99": _med([x["p99_ms"] for x in runs]),
                "noise": _spread([x["p99_ms"] for x in runs]),
                "held": held,
            }
        s["max_rate"] = r["max_rate"]["max_rate"]
        s["max_rate_client_bound"] = r["max_rate"]["client_bound"]
        s["ttft_p50"] = _med([x["ttft_p50_ms"] for x in r["ttft"]])
        s["ttft_p99"] = _med([x["ttft_p99_ms"] for x in r["ttft"]])
        s["ttft_noise"] = _spread([x["ttft_p50_ms"] for x in r["ttft"]])
        s["streams"] = r["streams"]["held"]
        s["streams_confirmed"] = r["streams"]["confirmed"]
        s["rss_idle"] = r.get("rss_idle_mb")
        s["rss_reps"] = r.get("rss_after_rep_mb", [])
        s["rss_after"] = r.get("rss_after_load_mb")
        reps = [v for v in s["rss_reps"] if v is not None]
        # the same workload run again should not need more memory the second time
        s["rss_growth"] = reps[-1] - reps[0] if len(reps) >= 2 else None
        s["version"] = r["version"]
        s["startup_s"] = r.get("startup_s")
        out[name] = s
    d = out.get("direct", {})
    for s in out.values():
        if "error" in s or "error" in d or not d:
            continue
        s["add_c1_p50"] = s["c1_p50"] - d["c1_p50"]
        s["add_c1_p99"] = s["c1_p99"] - d["c1_p99"]
        for rate, v in s["rates"].items():
            dv = d["rates"].get(rate)
            if dv and v["p50"] is not None:
                v["add_p50"], v["add_p99"] = v["p50"] - dv["p50"], v["p99"] - dv["p99"]
        s["add_ttft_p50"] = s["ttft_p50"] - d["ttft_p50"]
        s["add_ttft_p99"] = s["ttft_p99"] - d["ttft_p99"]
    for s in out.values():
        if "error" in s:
            continue
        for ref in ("floor", "litellm"):
            base = out.get(ref, {}).get("c32")
            s["vs_" + ref] = s["c32"] / base if base else None
    return out


def _n(v: float | None, digits: int = 0, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}{unit}"


def _compact(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:.2f}"


def _noise(v: float | None) -> str:
    return "" if v is None else f" ±{v / 2:.0f}%"


def _targets(s: dict[str, dict[str, Any]], moderate: str, name: str) -> list[str]:
    r = s.get(name)
    if not r or "error" in r:
        return []

    def mark(ok: bool | None) -> str:
        return "-" if ok is None else ("met" if ok else "**missed**")

    mr = r["rates"].get(moderate, {})
    lines = [f"| {name} | target | measured | |", "|---|---|---|---|"]
    vl, vf = r.get("vs_litellm"), r.get("vs_floor")
    lines.append(
        f"| throughput vs LiteLLM (c32) | >= 30x | {_n(vl, 1, 'x')} | "
        f"{mark(None if vl is None else vl >= 30)} |"
    )
    lines.append(
        f"| throughput vs floor (c32) | >= 50% | {_n(vf and vf * 100, 0, '%')} | "
        f"{mark(None if vf is None else vf >= 0.5)} |"
    )
    a50, a99 = mr.get("add_p50"), mr.get("add_p99")
    if mr and not mr["held"]:
        for label in ("p50", "p99"):
            lines.append(
                f"| added {label} @ {moderate}/s | <= {1 if label == 'p50' else 2} ms | "
                f"rate not sustained | **missed** |"
            )
    else:
        lines.append(
            f"| added p50 @ {moderate}/s | <= 1 ms | {_n(a50, 2, ' ms')} | "
            f"{mark(None if a50 is None else a50 <= 1)} |"
        )
        lines.append(
            f"| added p99 @ {moderate}/s | <= 2 ms | {_n(a99, 2, ' ms')} | "
            f"{mark(None if a99 is None else a99 <= 2)} |"
        )
    at = r.get("add_ttft_p50")
    lines.append(
        f"| added TTFT p50 | <= 1 ms | {_n(at, 2, ' ms')} | "
        f"{mark(None if at is None else at <= 1)} |"
    )
    lines.append(
        f"| streams with no stall | >= 500 | {r['streams']} | {mark(r['streams'] >= 500)} |"
    )
    ra, g = r["rss_after"], r["rss_growth"]
    lines.append(
        f"| RSS after load | <= 80 MB | {_n(ra, 0, ' MB')} | "
        f"{mark(None if ra is None else ra <= 80)} |"
    )
    lines.append(
        f"| RSS growth across repeats | ~0 | {_n(g, 1, ' MB')} | "
        f"{mark(None if g is None else g <= 2)} |"
    )
    w2 = s.get("reapi-w2")
    if name == "reapi" and w2 and "error" not in w2:
        lines.append(
            f"| `--workers 2` throughput (c32) vs 1 worker | reported, not targeted | "
            f"{w2['c32'] / r['c32']:.2f}x | (shares the rig core) |"
        )
    pg = s.get("reapi-pg")
    if name == "reapi" and pg and "error" not in pg:
        ratio = pg["c32"] / r["c32"]
        lines.append(
            f"| PostgreSQL+Redis throughput vs SQLite | >= 80% | {ratio * 100:.0f}% | "
            f"{mark(ratio >= 0.8)} |"
        )
    return lines


def write(workdir: Path, meta: dict[str, Any], results: dict[str, Any]) -> str:
    cfg = meta["config"]
    moderate = str(int(max(cfg["rates"])))
    s = summarize(results, moderate)
    ok = [n for n, v in s.items() if "error" not in v]
    L: list[str] = [f"# reapi benchmark — {meta['date']}", ""]
    L.append(
        f"Machine: {meta['cpu']}, 2 cores, Linux {meta['kernel']}, Python {meta['python']}, "
        f"{meta['wrk']}. Load average at start: {' '.join(meta['loadavg_at_start'])}. "
        f"Each point is the median of {cfg['repeats']} run(s); ± is half the spread between "
        f"runs. Gateway on core 0; mocks and load generators on core 1; everything at nice "
        f"{meta.get('nice', 0)}. The last column below is the share of both cores other "
        f"processes on this shared machine used meanwhile: the noise we could not pin away."
    )
    L += ["", "| system | version | CPU used by other tenants during its runs |", "|---|---|---:|"]
    L += [
        f"| {n} | {results[n]['version']} | {_n(results[n].get('other_tenants_cpu_pct'), 0, '%')} |"
        for n in results
    ]
    L += [
        "",
        "## Throughput (non-streaming unless noted)",
        "",
        "| system | req/s @32 | req/s @128 | SSE req/s @32 | max rate p99<20ms | vs floor "
        "| vs LiteLLM |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in ok:
        v = s[n]
        mr = _n(v["max_rate"]) + (" (client-bound)" if v["max_rate_client_bound"] else "")
        L.append(
            f"| {n} | {_n(v['c32'])}{_noise(v['c32_noise'])} | {_n(v['c128'])}"
            f"{_noise(v['c128_noise'])} | {_n(v['sse_c32'])}{_noise(v['sse_c32_noise'])} | "
            f"{mr} | {_n(v['vs_floor'], 2, 'x')} | {_n(v['vs_litellm'], 1, 'x')} |"
        )
    rates = [str(int(r)) for r in cfg["rates"]]
    L += [
        "",
        "## Latency (ms; added = system minus direct)",
        "",
        "| system | c1 p50 | c1 p99 | added c1 p50 / p99 | "
        + " | ".join(f"@{r}/s p50 / p99 | added @{r}/s p50 / p99" for r in rates)
        + " |",
        "|---|---:|---:|---:|" + "---:|---:|" * len(rates),
    ]
    for n in ok:
        v = s[n]
        row = (
            f"| {n} | {_n(v['c1_p50'], 3)} | {_n(v['c1_p99'], 3)} | "
            f"{_n(v.get('add_c1_p50'), 3)} / {_n(v.get('add_c1_p99'), 3)} |"
        )
        for r in rates:
            x = v["rates"].get(r, {})
            sat = "" if x.get("held", True) else " (not held)"
            row += (
                f" {_n(x.get('p50'), 3)} / {_n(x.get('p99'), 3)}{sat} | "
                f"{_n(x.get('add_p50'), 3)} / {_n(x.get('add_p99'), 3)} |"
            )
        L.append(row)
    L += [
        "",
        "## Streaming and memory",
        "",
        "| system | TTFT p50 / p99 | added TTFT p50 / p99 | streams held, no stall | "
        "RSS idle | RSS after each repeat | RSS after load | startup |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in ok:
        v = s[n]
        reps = ", ".join(_n(x, 0) for x in v["rss_reps"])
        held = f"{v['streams']}" + (
            "" if v["streams_confirmed"] or not v["streams"] else " (unconfirmed)"
        )
        L.append(
            f"| {n} | {_n(v['ttft_p50'], 2)} / {_n(v['ttft_p99'], 2)} | "
            f"{_n(v.get('add_ttft_p50'), 2)} / {_n(v.get('add_ttft_p99'), 2)} | {held} | "
            f"{_n(v['rss_idle'], 0, ' MB')} | {reps or '-'} | {_n(v['rss_after'], 0, ' MB')} | "
            f"{_n(v['startup_s'], 1, ' s')} |"
        )
    failed = [n for n in s if n not in ok]
    if failed:
        L += ["", "## Systems that failed", ""]
        L += [f"- {n}: {s[n]['error'][:400]}" for n in failed]
    for name in ("reapi", "reapi-pg"):
        t = _targets(s, moderate, name)
        if t:
            L += ["", f"## Targets: {name}", "", *t]
    if "reapi" not in ok:
        L += ["", "## Targets (reapi not measured in this run)", "", TARGETS]
    noise = [
        (n, k, s[n][k])
        for n in ok
        for k in ("c32_noise", "c128_noise", "sse_c32_noise", "c1_noise", "ttft_noise")
        if s[n].get(k) is not None
    ]
    if noise:
        worst = sorted(noise, key=lambda x: -x[2])[:5]
        L += [
            "",
            "## Noise",
            "",
            "Largest spreads, (max - min) / median, between repetitions of the same point: "
            + "; ".join(f"{n} {k.removesuffix('_noise')} {x:.0f}%" for n, k, x in worst)
            + ".",
        ]
    L += ["", "![chart](chart.png)", ""]
    md = "\n".join(L)
    (workdir / "REPORT.md").write_text(md)
    chart(workdir / "chart.png", s, ok, moderate, meta["date"])
    return md


def chart(
    path: Path, s: dict[str, dict[str, Any]], ok: list[str], moderate: str, date: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(15, 8.5))
    x = range(len(ok))

    def bars(a: Any, series: list[tuple[str, list[float]]], title: str, log: bool = False) -> None:
        w = 0.8 / len(series)
        for i, (label, vals) in enumerate(series):
            pos = [j + (i - (len(series) - 1) / 2) * w for j in x]
            b = a.bar(pos, [v or 0 for v in vals], w, label=label)
            a.bar_label(
                b,
                labels=[_compact(v) for v in vals],
                fontsize=7,
                rotation=90 if len(series) > 2 else 0,
                padding=2,
            )
        a.set_xticks(list(x), ok, rotation=20, fontsize=8)
        a.set_title(title, fontsize=10)
        if log:
            a.set_yscale("log")
            a.set_ylim(top=a.get_ylim()[1] * 4)  # room for the labels
        if len(series) > 1:
            a.legend(fontsize=7)

    bars(
        ax[0][0],
        [
            ("c32", [s[n]["c32"] for n in ok]),
            ("c128", [s[n]["c128"] for n in ok]),
            ("SSE c32", [s[n]["sse_c32"] for n in ok]),
        ],
        "throughput, req/s (log)",
        True,
    )
    bars(
        ax[0][1],
        [("", [s[n]["max_rate"] for n in ok])],
        "max rate with p99 < 20 ms, req/s (log)",
        True,
    )
    gw = [n for n in ok if n != "direct"]
    ax[0][2].set_visible(False)
    a = fig.add_subplot(2, 3, 3)
    xs = range(len(gw))
    held = [s[n]["rates"].get(moderate, {}).get("held", False) for n in gw]
    for i, key in enumerate(("add_p50", "add_p99")):
        vals = [
            max(s[n]["rates"].get(moderate, {}).get(key) or 0, 0.01) if h else 0
            for n, h in zip(gw, held, strict=True)
        ]
        b = a.bar([j + (i - 0.5) * 0.4 for j in xs], vals, 0.4, label=key.removeprefix("add_"))
        a.bar_label(
            b, labels=[f"{v:.2f}" if h else "" for v, h in zip(vals, held, strict=True)], fontsize=7
        )
    for j, h in enumerate(held):
        if not h:
            a.text(j, 0.02, "rate not\nsustained", ha="center", fontsize=7, color="crimson")
    a.set_xticks(list(xs), gw, rotation=20, fontsize=8)
    a.set_yscale("log")
    a.set_title(f"added latency @ {moderate}/s, ms (log)", fontsize=10)
    a.legend(fontsize=7)
    bars(
        ax[1][0],
        [
            ("p50", [s[n].get("add_ttft_p50") for n in ok]),
            ("p99", [s[n].get("add_ttft_p99") for n in ok]),
        ],
        "added TTFT, ms",
    )
    bars(
        ax[1][1], [("", [s[n]["streams"] for n in ok])], "concurrent streams held, no gap > 100 ms"
    )
    bars(
        ax[1][2],
        [("idle", [s[n]["rss_idle"] for n in ok]), ("after load", [s[n]["rss_after"] for n in ok])],
        "RSS, MB",
    )
    fig.suptitle(f"reapi bench {date} — gateway pinned to 1 core", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    import json
    import sys

    # regenerate REPORT.md and chart.png of a finished (or resumed) run
    out = Path(sys.argv[1])
    data = json.loads((out / "results.json").read_text())
    print(write(out, data["meta"], data["results"]))
