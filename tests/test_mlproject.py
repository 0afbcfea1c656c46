"""Every MLproject parameter matches its click option one to one, with the same default."""
import importlib
import re

import click
import pytest
import yaml

from tests.conftest import REPO

PROJECT = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]


def as_text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_parameters_match_click_options(name):
    entry = PROJECT[name]
    module = re.search(r"python -m entrypoints\.(\w+)", entry["command"]).group(1)
    command = importlib.import_module(f"entrypoints.{module}").main
    options = {p.opts[0][2:].replace("-", "_"): p for p in command.params if isinstance(p, click.Option)}
    params = entry.get("parameters", {})
    assert set(params) == set(options), f"{name}: MLproject and click disagree on parameter names"
    for key, spec in params.items():
        assert as_text(spec["default"]) == as_text(options[key].default), f"{name}.{key}: default differs"
        flag = "--" + key.replace("_", "-")
        assert f"{flag} {{{key}}}" in entry["command"], f"{name}: command does not pass {key}"
