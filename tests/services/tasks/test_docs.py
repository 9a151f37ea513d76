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


def test_documented_prices_are_the_public_ones_and_only_those() -> None:
    models = load_task_models({})
    horse = models["happyhorse-1.0"].billing
    assert horse is not None and isinstance(horse.credits, dict)
    assert [str(v) for v in horse.credits.values()] == ["162.5", "287.5"]
    assert "162.5 / 287.5 credits" in DOC
    stem = models["audio-stem-separator"].billing
    assert stem is not None and (stem.unit, stem.credits) == ("source_minute", 200)
    assert "per rounded-up source minute: 200 credits" in DOC
    rows = dict(re.findall(r"^\| (`[^|]+`) \| (?:image|video|audio) \|.*\| ([^|]+) \|$", DOC,
                           re.MULTILINE))  # fmt: skip
    for name, model in models.items():
        row = next(v for k, v in rows.items() if f"`{name}`" in k)
        assert ("not public" in row) == (not model.priced), name


def test_every_task_setting_and_the_worker_command_is_documented() -> None:
    from reapi.config import TaskSettings

    rows = set(re.findall(r"^\| `([a-z_0-9]+)` \| ", DOC.split("task-settings:")[1], re.MULTILINE))
    assert rows >= set(TaskSettings.model_fields)
    assert "reapi worker" in DOC
    for header in ("Idempotency-Key", "X-Reapi-Signature", "Idempotent-Replayed"):
        assert header in DOC
