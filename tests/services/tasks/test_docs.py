"""docs/tasks.md is the published contract: it must match the code."""

import re
from pathlib import Path

from reapi.protocols.tasks import TaskErrorCode
from reapi.providers.tasks.registry import TASK_ADAPTERS
from reapi.services.tasks.catalog import BILLING_UNITS, load_task_models

DOC = (Path(__file__).parents[3] / "docs" / "tasks.md").read_text()


def test_error_table_matches_the_code() -> None:
    rows = re.findall(r"^\| (\d{5}) \| (\d{3}) \| `([A-Z_]+)` \|", DOC, re.MULTILINE)
    documented = {(int(code), int(status), name) for code, status, name in rows}
    actual = {(int(c), c.http_status, c.name) for c in TaskErrorCode}
    assert documented == actual


def test_every_builtin_model_unit_and_adapter_is_documented() -> None:
    for name in load_task_models({}):
        assert f"`{name}`" in DOC, name
    for unit in BILLING_UNITS:
        assert f"`{unit}`" in DOC, unit
    for adapter in TASK_ADAPTERS:
        assert f"`{adapter}`" in DOC, adapter


def test_documented_example_prices_match_the_builtins() -> None:
    models = load_task_models({})
    assert models["veo3.1-fast"].billing.credits == 400
    assert "per generation: 400 credits" in DOC
    stem = models["audio-stem-separator"].billing
    assert stem.unit == "source_minute"
    assert stem.credits == 200
    tiers = models["gpt-image-2"].billing.credits
    assert isinstance(tiers, dict)
    assert "20 / 35 / 60 credits" in DOC
    assert [int(v) for v in tiers.values()] == [20, 35, 60]


def test_every_task_setting_and_the_worker_command_is_documented() -> None:
    from reapi.config import TaskSettings

    rows = set(re.findall(r"^\| `([a-z_0-9]+)` \| ", DOC.split("task-settings:")[1], re.MULTILINE))
    assert rows >= set(TaskSettings.model_fields)
    assert "reapi worker" in DOC
    for header in ("Idempotency-Key", "X-Reapi-Signature", "Idempotent-Replayed"):
        assert header in DOC
