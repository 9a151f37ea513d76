"""Child-process entry point: run llama.cpp's own HTTP server (from xllamacpp) and nothing else.

``python -m reapi.providers.llamacpp.server --model PATH [--port N] ...``; the flags mirror
``llama-server``'s. xllamacpp ships llama.cpp's C++ server as a Python extension rather than a
binary, so this module is the binary: it lives in its own process so that a crash in native code
cannot take the gateway down, and so that the supervisor can kill and restart it.

Its contract with the supervisor, and all it does:

- once the model is loaded and the socket bound, it prints one line ``LISTENING <url>`` to
  stdout (with ``--port 0`` the kernel picks the port, so the supervisor learns it from here);
- it exits when its stdin reaches end of file. The supervisor never writes to that pipe; the
  kernel closes it when the gateway dies, however it dies, so a server never outlives its
  gateway and never keeps holding the port;
- if the server cannot start it exits with status 2 after one line on stderr (llama.cpp's own
  error lines precede it).

It imports nothing from reapi beyond its (empty) package: it runs in a fresh interpreter on every
start and restart, and each import would delay serving. Written against xllamacpp 2026.10.11549.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

EXIT_START_FAILED = 2
EXIT_NOT_INSTALLED = 3
LISTENING_PREFIX = "LISTENING "


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reapi.providers.llamacpp.server",
        description="Run llama.cpp's server (xllamacpp) for the reapi gateway.",
    )
    parser.add_argument("-m", "--model", required=True, type=Path, help="GGUF model file")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 lets the kernel choose")
    parser.add_argument("-t", "--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("-c", "--ctx-size", type=int, default=4096, help="context size in tokens")
    parser.add_argument("--chat-template-file", type=Path, default=None, help="Jinja template")
    parser.add_argument("-a", "--alias", default=None, help="model id the server reports")
    parser.add_argument(
        "-n", "--n-predict", type=int, default=-1, help="max_tokens when a request omits it"
    )
    parser.add_argument("-np", "--parallel", type=int, default=1, help="concurrent slots")
    return parser.parse_args(argv)


def build_params(xlc: Any, args: argparse.Namespace) -> Any:
    """Translate our flags into xllamacpp's ``CommonParams`` (llama-server's own settings)."""
    params = xlc.CommonParams()
    params.model.path = str(args.model)
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx_size
    params.n_parallel = args.parallel
    # Only a default for requests that omit max_tokens, and /v1/messages ignores it (checked):
    # it is not a ceiling, so the gateway must clamp max_tokens itself.
    params.n_predict = args.n_predict
    if args.threads is not None:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    if args.chat_template_file is not None:
        params.chat_template = args.chat_template_file.read_text(encoding="utf-8")
    if args.alias:
        params.model_alias = {args.alias}
    params.ui = False
    params.endpoint_metrics = True
    # /slots shows every slot's prompt; nobody behind the gateway needs it.
    params.endpoint_slots = False
    return params


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        xlc = importlib.import_module("xllamacpp")
    except ImportError:
        print("xllamacpp is not installed: pip install 'reapi[local]'", file=sys.stderr)
        return EXIT_NOT_INSTALLED
    try:
        server = xlc.Server(build_params(xlc, args))
    except RuntimeError as exc:
        print(f"llama-server failed to start: {exc}", file=sys.stderr, flush=True)
        return EXIT_START_FAILED
    print(LISTENING_PREFIX + str(server.listening_address), flush=True)
    sys.stdin.buffer.read()
    # The native server's teardown joins its HTTP and inference threads, which can take as long
    # as a request in flight; the supervisor has already stopped sending, so skip it.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
