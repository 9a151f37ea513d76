"""The systems under test and the upstream mocks, as processes the runner can
start, pin, probe and stop.

A system is only data: the command that starts it, its environment, the port
it listens on, a readiness path, an optional prepare step (migrations, keys) and
the API key clients send. `run.py` treats them all alike; adding a gateway is one
more entry in `build_systems`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fixtures import MODEL, SLOW_MODEL, STREAM_MODEL, chat_completion, sse_stream

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GATEWAY_CORE = "0"
RIG_CORE = "1"

MOCK_PORT = 18001  # nginx: fixed JSON, fixed SSE, and fronts the two delay mocks
TTFT_MOCK_PORT = 18002  # delay mock for the TTFT run: short, fast streams
HOLD_MOCK_PORT = 18003  # delay mock for the concurrent-streams run: long, paced streams
HOLD_MODEL = "gpt-5.5-hold"

# model -> path prefix on the nginx mock; every gateway routes by model name
UPSTREAM_PREFIX = {
    MODEL: "/v1",
    STREAM_MODEL: "/sse/v1",
    SLOW_MODEL: "/slow/v1",
    HOLD_MODEL: "/hold/v1",
}
UPSTREAM_KEY = "sk-upstream"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def rss_mb(self) -> float | None:
        """Resident set of the process and all its descendants (workers included)."""
        pids = _tree(self.popen.pid)
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return round(total / 1024, 1) if pids else None

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def start(
    name: str,
    cmd: list[str],
    core: str,
    logdir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    log = logdir / f"{name}.log"
    fh = log.open("ab")
    full_env = {**os.environ, **(env or {})}
    popen = subprocess.Popen(
        ["taskset", "-c", core, *cmd],
        stdout=fh,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    )
    return Proc(name, popen, log)


def wait_ready(url: str, proc: Proc | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc and proc.popen.poll() is not None:
            tail = proc.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


def _nginx_str(data: bytes) -> str:
    text = data.decode()
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


_NGINX_HEAD = """\
worker_processes 1;
daemon off;
user root;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; multi_accept on; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_buffer_size 64k;
  client_body_temp_path {dir}/{name}-body;
  proxy_temp_path {dir}/{name}-proxy;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_buffering off;
  proxy_request_buffering off;
"""


def nginx_mock_conf(workdir: Path) -> Path:
    (workdir / "files").mkdir(exist_ok=True)
    (workdir / "files" / "sse.txt").write_bytes(sse_stream())
    conf = (
        _NGINX_HEAD.format(dir=workdir, name="mock")
        + f"""\
  upstream ttft {{ server 127.0.0.1:{TTFT_MOCK_PORT}; keepalive 4096; }}
  upstream hold {{ server 127.0.0.1:{HOLD_MOCK_PORT}; keepalive 4096; }}
  server {{
    listen 127.0.0.1:{MOCK_PORT} backlog=4096;
    location = /healthz {{ return 200 'ok'; }}
    location = /v1/chat/completions {{
      default_type application/json;
      return 200 {_nginx_str(chat_completion())};
    }}
    # the SSE body is longer than an nginx string may be, so it is a file;
    # error_page turns the POST into an internal GET of that file
    location = /sse/v1/chat/completions {{ error_page 405 =200 /_files/sse.txt; return 405; }}
    location /_files/ {{
      internal;
      alias {workdir}/files/;
      types {{ }}
      default_type text/event-stream;
      etag off;
    }}
    location /slow/ {{ proxy_pass http://ttft/; }}
    location /hold/ {{ proxy_pass http://hold/; }}
  }}
}}
"""
    )
    path = workdir / "nginx-mock.conf"
    path.write_text(conf)
    return path


def nginx_proxy_conf(workdir: Path, port: int) -> Path:
    conf = (
        _NGINX_HEAD.format(dir=workdir, name="proxy")
        + f"""\
  upstream mock {{ server 127.0.0.1:{MOCK_PORT}; keepalive 1024; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ proxy_pass http://mock; }}
  }}
}}
"""
    )
    path = workdir / "nginx-proxy.conf"
    path.write_text(conf)
    return path


@dataclass
class Mocks:
    procs: list[Proc] = field(default_factory=list)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()

    def pids(self) -> list[int]:
        return [pid for p in self.procs for pid in _tree(p.popen.pid)]


def start_mocks(workdir: Path, hold_chunks: int, hold_itl: float) -> Mocks:
    """nginx on the rig core in front of two delay mocks, also on the rig core."""
    py = sys.executable
    mocks = Mocks()
    mocks.procs.append(
        start(
            "mock-ttft",
            [
                py,
                str(BENCH / "mock_upstream.py"),
                "--port",
                str(TTFT_MOCK_PORT),
                "--ttft",
                "0.01",
                "--itl",
                "0.001",
                "--chunks",
                "20",
            ],
            RIG_CORE,
            workdir,
        )
    )
    mocks.procs.append(
        start(
            "mock-hold",
            [
                py,
                str(BENCH / "mock_upstream.py"),
                "--port",
                str(HOLD_MOCK_PORT),
                "--ttft",
                "0.05",
                "--itl",
                str(hold_itl),
                "--chunks",
                str(hold_chunks),
            ],
            RIG_CORE,
            workdir,
        )
    )
    conf = nginx_mock_conf(workdir)
    mocks.procs.append(
        start("mock-nginx", ["nginx", "-e", "stderr", "-c", str(conf)], RIG_CORE, workdir)
    )
    try:
        wait_ready(f"http://127.0.0.1:{MOCK_PORT}/healthz", mocks.procs[-1], 10)
    except RuntimeError:
        mocks.stop()
        raise
    return mocks


@dataclass
class System:
    """One system under test. `url` is where clients send chat completions."""

    name: str
    port: int
    cmd: list[str] | None  # None: nothing to start (direct)
    ready_path: str = "/healthz"
    env: dict[str, str] = field(default_factory=dict)
    core: str = GATEWAY_CORE
    key: str | None = None
    prepare: Callable[[System, Path], None] | None = None
    version: str = ""
    ready_timeout: float = 60
    direct_paths: bool = False  # client must use the upstream's path per model

    def url(self, model: str) -> str:
        path = UPSTREAM_PREFIX[model] if self.direct_paths else "/v1"
        return f"http://127.0.0.1:{self.port}{path}/chat/completions"


def _pip_version(python: Path, package: str) -> str:
    out = subprocess.run(
        [str(python), "-m", "pip", "show", package], capture_output=True, text=True, check=False
    ).stdout
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split()[1]
    return "?"


def _nginx_version() -> str:
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False).stderr
    return out.strip().split("/")[-1]


def litellm_config(workdir: Path) -> Path:
    models = "\n".join(
        f"""  - model_name: {m}
    litellm_params:
      model: openai/{m}
      api_base: http://127.0.0.1:{MOCK_PORT}{prefix}
      api_key: {UPSTREAM_KEY}
      max_retries: 0
      timeout: 600"""
        for m, prefix in UPSTREAM_PREFIX.items()
    )
    # Settings from LiteLLM's "Best Practices for Production" page; no database,
    # so the master key is the only credential checked.
    text = f"""model_list:
{models}
general_settings:
  master_key: sk-bench-master
  proxy_batch_write_at: 60
  disable_spend_logs: true
  disable_error_logs: true
litellm_settings:
  set_verbose: false
  json_logs: true
  num_retries: 0
  request_timeout: 600
  turn_off_message_logging: true
  telemetry: false
router_settings:
  num_retries: 0
  enable_pre_call_checks: false
"""
    path = workdir / "litellm.yaml"
    path.write_text(text)
    return path


def reapi_config(workdir: Path) -> Path:
    channels = "\n".join(
        f'  - {{name: mock{i}, type: openai, base_url: "http://127.0.0.1:{MOCK_PORT}{prefix}", '
        f'api_key: "{UPSTREAM_KEY}", models: [{m}]}}'
        for i, (m, prefix) in enumerate(UPSTREAM_PREFIX.items())
    )
    prices = "\n".join(
        f'  {m}: {{input_per_mtok: "1.25", output_per_mtok: "10.00"}}' for m in UPSTREAM_PREFIX
    )
    text = f"""channels:
{channels}
models:
{prices}
groups:
  default: {{rpm: 1000000, tpm: 1000000000, price_ratio: "1.0"}}
"""
    path = workdir / "reapi.yaml"
    path.write_text(text)
    return path


def _reapi_prepare(system: System, workdir: Path) -> None:
    exe = str(Path(system.cmd[0]).parent / "reapi") if system.cmd else "reapi"
    env = {**os.environ, **system.env}
    db = env["REAPI_DATABASE_URL"]
    if db.startswith("sqlite:///"):
        Path(db.removeprefix("sqlite:///")).unlink(missing_ok=True)
    else:
        name = db.rsplit("/", 1)[1]
        admin = db.rsplit("/", 1)[0] + "/postgres"
        for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
            subprocess.run(["psql", admin, "-qc", sql], check=True, capture_output=True)
    if "REAPI_REDIS_URL" in env:
        subprocess.run(
            ["redis-cli", "-u", env["REAPI_REDIS_URL"], "flushdb"], check=True, capture_output=True
        )

    def cli(*args: str) -> str:
        r = subprocess.run([exe, *args], env=env, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"reapi {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
        return r.stdout

    cli("migrate")
    cli("users", "create", "bench")
    system.key = cli("keys", "create", "--user", "bench").strip().splitlines()[-1].strip()
    cli("credit", "bench", "1000000")


def build_systems(
    workdir: Path, reapi_python: Path | None, litellm_python: Path, pg_url: str, redis_url: str
) -> dict[str, System]:
    py = Path(sys.executable)
    systems = {
        "direct": System(
            "direct", MOCK_PORT, None, direct_paths=True, version=f"nginx {_nginx_version()}"
        ),
        "floor": System(
            "floor",
            18010,
            [str(py), str(BENCH / "floor_proxy.py"), "--port", "18010"],
            direct_paths=True,
            version=f"uvicorn {_pip_version(py, 'uvicorn')}, aiohttp {_pip_version(py, 'aiohttp')}",
        ),
        "nginx": System(
            "nginx",
            18011,
            ["nginx", "-e", "stderr", "-c", str(nginx_proxy_conf(workdir, 18011))],
            direct_paths=True,
            version=f"nginx {_nginx_version()}",
        ),
    }
    if litellm_python.exists():
        exe = litellm_python.parent / "litellm"
        systems["litellm"] = System(
            "litellm",
            18012,
            [
                str(exe),
                "--config",
                str(litellm_config(workdir)),
                "--host",
                "127.0.0.1",
                "--port",
                "18012",
                "--num_workers",
                "1",
                "--telemetry",
                "False",
            ],
            ready_path="/health/liveliness",
            env={
                "LITELLM_LOG": "ERROR",
                "LITELLM_MODE": "PRODUCTION",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "DISABLE_SCHEMA_UPDATE": "true",
            },
            key="sk-bench-master",
            version=f"litellm {_pip_version(litellm_python, 'litellm')}",
            ready_timeout=180,
        )
    if reapi_python is not None and (reapi_python.parent / "reapi").exists():
        exe = reapi_python.parent / "reapi"
        version = f"reapi {_pip_version(reapi_python, 'reapi')} ({_git_rev()})"
        conf = str(reapi_config(workdir))
        for name, port, env, workers in (
            ("reapi", 18013, {"REAPI_DATABASE_URL": f"sqlite:///{workdir}/reapi.db"}, 1),
            ("reapi-pg", 18014, {"REAPI_DATABASE_URL": pg_url, "REAPI_REDIS_URL": redis_url}, 1),
            ("reapi-w2", 18015, {"REAPI_DATABASE_URL": f"sqlite:///{workdir}/reapi-w2.db"}, 2),
        ):
            systems[name] = System(
                name,
                port,
                [
                    str(exe),
                    "serve",
                    "--config",
                    conf,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                env=env,
                prepare=_reapi_prepare,
                version=version,
                core=GATEWAY_CORE if workers == 1 else f"{GATEWAY_CORE},{RIG_CORE}",
            )
    return systems


def _git_rev() -> str:
    r = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return r.stdout.strip() or "?"


def require_tools() -> None:
    missing = [t for t in ("nginx", "wrk", "taskset") if shutil.which(t) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: apt-get install -y nginx wrk util-linux")
