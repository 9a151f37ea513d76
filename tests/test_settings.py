"""Settings read from the environment, and what the gateway says about ones it no longer reads."""

from __future__ import annotations

import logging

import pytest

from reapi.app import create_app
from reapi.config import build_config
from reapi.settings import Settings


def test_a_retired_variable_is_named_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"REAPI_UPSTREAM_READ_TIMEOUT": "5"})
    (said,) = settings.retired_variables
    assert said.startswith("REAPI_UPSTREAM_READ_TIMEOUT is no longer read")
    assert "timeouts" in said
    with caplog.at_level(logging.WARNING, logger="reapi"):
        create_app(settings, build_config({}))
    assert any("REAPI_UPSTREAM_READ_TIMEOUT" in r.getMessage() for r in caplog.records)


def test_current_variables_raise_no_warning() -> None:
    assert Settings.from_env({"REAPI_MAX_HEADER_BYTES": "1024"}).retired_variables == []
