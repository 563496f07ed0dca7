"""The constraint files pin what `make test` installs, and are current (scripts/lock.py)."""

from __future__ import annotations

import json

from scripts import lock

MAIN, AIRBYTE, CDK = lock.LOCKS


def test_every_constraint_file_is_resolved_from_its_current_inputs():
    assert lock.stale() == [], "run `make lock`"


def test_a_changed_dependency_makes_the_lock_stale(monkeypatch):
    inputs = json.loads(MAIN.inputs())
    inputs["test"].append("hypothesis")
    monkeypatch.setattr(lock.Lock, "inputs", lambda self: json.dumps(inputs))

    assert "constraints.txt" in lock.stale()


def test_this_virtualenv_has_the_locked_versions():
    pins = {pin.name for pin in MAIN.pins()}
    assert {"singer-sdk", "meltano", "pytest", "ruff", "mypy"} <= pins
    assert lock.installed_mismatches(MAIN) == [], "rebuild it: make clean test"
