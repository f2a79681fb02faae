"""The values validity_baselines prints (see studies/render/values/__init__.py)."""

from __future__ import annotations


def values() -> dict:
    return {}
