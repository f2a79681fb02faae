"""The values validity_round2 prints (see studies/render/values/__init__.py)."""

from __future__ import annotations


def values() -> dict:
    return {}
