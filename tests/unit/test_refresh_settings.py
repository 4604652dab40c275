"""The beat's refresh settings refuse misspelt names too (kwargs and SLUICE_REFRESH_* variables)."""

from __future__ import annotations

import pytest

from sluice.errors import ConfigError
from sluice_workers.celery_app import RefreshSettings


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("SLUICE_REFRESH_INTERVALL", "SLUICE_REFRESH_INTERVAL"),
        ("SLUICE_REFRESH_WINDOWS", "SLUICE_REFRESH_WINDOW"),
    ],
)
def test_a_misspelt_variable_is_refused_with_the_nearest_name(
    monkeypatch: pytest.MonkeyPatch, name: str, nearest: str
) -> None:
    monkeypatch.setenv(name, "30")
    with pytest.raises(ConfigError, match=f"unknown variable {name}; did you mean {nearest}"):
        RefreshSettings()


def test_a_misspelt_keyword_is_refused_and_valid_ones_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'cache'; did you mean 'caches'"):
        RefreshSettings(cache=["default"])
    monkeypatch.setenv("SLUICE_REFRESH_TOP", "7")
    assert RefreshSettings(window=30).top == 7
