"""Names claimed in lm-eval's registries, whether lm-eval loaded the plugin's entry points or not.

lm-eval releases with plugin discovery put each entry point in its registry as a lazy placeholder
(the entry point or its "module:attr" string) and import the module at the first lookup of the
name, which then registers the same names again. lm-eval 0.4.13's `Registry` accepts that only for
a string placeholder of a class, so the plugin resolves a placeholder first and checks that it is
its own object. A name held by anything else (a built-in of a later lm-eval) is a clash: the
registry keeps the built-in, and the plugin's numbers would be aggregated by it, so it stops.
"""

from __future__ import annotations

from typing import Any, TypeVar

from lm_eval.api.registry import Registry

__all__ = ["PluginNameClashError", "claim"]

T = TypeVar("T")


class PluginNameClashError(RuntimeError):
    """An lm-eval registry already holds one of the plugin's names for something else."""


def _same_definition(a: Any, b: Any) -> bool:
    """Two objects with one qualified name: the module was imported again (reload)."""
    return (
        getattr(a, "__module__", None) is not None
        and getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )


def claim(registry: Registry, name: str, obj: T) -> T:
    """Register `obj` as `name` in `registry` and return what `name` holds afterwards: `obj`, or
    the first import's definition of it when this module was reloaded."""
    if name not in registry:
        registry.register(name, target=obj)
        return obj
    held = registry.get(name)  # resolves a lazy placeholder (an entry point to `obj` itself)
    if held is obj or _same_definition(held, obj):  # (True and False are singletons)
        return held
    raise PluginNameClashError(
        f"lm-eval's {registry!r} already holds {name!r} ({held!r}), which the "
        f"lm-eval-emergence plugin registers as {obj!r}; lm-eval keeps its own, so the plugin's "
        "numbers would be handled by it. Install an lm-eval-emergence release made for this "
        "lm-eval version, or an lm-eval version below it"
    )
