"""The plugin's entry points, loaded one at a time as an lm-eval registry with plugin discovery
loads them (upstream PRs #4013-#4015); run by test_plugin_registry.py in a fresh process.

`python registry_probe.py KIND`: lm-eval's built-ins are registered first, then every
`lm_eval.*` entry point of lm-eval-emergence as a lazy placeholder (KIND `entrypoint`: the
EntryPoint object; `string`: its "module:attr" value), skipping names lm-eval already has (built-ins
win). Each entry point is then looked up alone, in a child forked before the plugin is imported,
through the registry functions lm-eval's evaluator calls. Prints one JSON object: `clashes` (names
lm-eval already has, tasks included), `loaded` (what each lookup gave, by "group:name") and `failed`
(the error of each lookup that raised).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import sys
import traceback
from pathlib import Path

import lm_eval.api.metrics  # noqa: F401  (the built-in metrics and aggregations)
import lm_eval.models  # noqa: F401  (the built-in models, as lazy placeholders)
import lm_eval.models.huggingface  # noqa: F401  (heavy imports done once, before the forks)
from lm_eval.api import registry as lm_registry

DIST = "lm-eval-emergence"
REGISTRIES = {
    "lm_eval.models": lm_registry.model_registry,
    "lm_eval.metrics": lm_registry.metric_registry,
    "lm_eval.aggregations": lm_registry.aggregation_registry,
}
TASK_GROUP = "lm_eval.tasks"


def _ours(group: str) -> list[md.EntryPoint]:
    return [ep for ep in md.entry_points(group=group) if ep.dist and ep.dist.name == DIST]


def _task_names(directory: Path) -> list[str]:
    names = set()
    for path in directory.glob("**/*.yaml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key in ("task", "group") and value.strip():
                names.add(value.strip())
    return sorted(names)


def _lookup(group: str, ep: md.EntryPoint) -> object:
    """What lm-eval's evaluator gets for `ep`'s name, as JSON-ready values."""
    if group == "lm_eval.models":
        cls = lm_registry.get_model(ep.name)
        from lm_eval.api.model import LM

        return {"class": cls.__name__, "is_lm": issubclass(cls, LM)}
    if group == "lm_eval.metrics":
        fn = lm_registry.get_metric(ep.name)
        aggregation = lm_registry.get_metric_aggregation(ep.name)
        return {
            "passes_through": fn is not None and fn([1, 2]) == [1, 2],
            "aggregation": getattr(aggregation, "__name__", None),
            "higher_is_better": lm_registry.is_higher_better(ep.name),
        }
    if group == "lm_eval.aggregations":
        return {"aggregation": getattr(lm_registry.get_aggregation(ep.name), "__name__", None)}
    module = ep.load()  # lm_eval.tasks: a package whose directory is scanned for YAMLs
    return {"tasks": _task_names(Path(module.__file__).parent)}


def _in_child(group: str, ep: md.EntryPoint) -> tuple[str, object]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one lookup, its answer on the pipe
        os.close(read)
        try:
            answer = ("loaded", _lookup(group, ep))
        except BaseException:  # noqa: BLE001 - the probe reports every failure
            answer = ("failed", traceback.format_exc(limit=4))
        with os.fdopen(write, "w") as out:
            json.dump(answer, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as inp:
        text = inp.read()
    os.waitpid(pid, 0)
    return tuple(json.loads(text)) if text else ("failed", "the child wrote nothing")


def main(kind: str) -> dict:
    assert "lm_eval_emergence" not in sys.modules, "the plugin was imported before the probe"
    clashes = []
    for group, registry in REGISTRIES.items():
        for ep in _ours(group):
            if ep.name in registry:
                clashes.append(f"{group}:{ep.name}")
                continue
            registry.register(ep.name, target=ep if kind == "entrypoint" else ep.value)
    from lm_eval.tasks import TaskManager

    builtin_tasks = set(TaskManager().all_tasks)
    loaded, failed = {}, {}
    for group in (*REGISTRIES, TASK_GROUP):
        for ep in _ours(group):
            status, answer = _in_child(group, ep)
            (loaded if status == "loaded" else failed)[f"{group}:{ep.name}"] = answer
            if group == TASK_GROUP and status == "loaded":
                clashes += [f"task:{name}" for name in answer["tasks"] if name in builtin_tasks]
    return {"clashes": clashes, "loaded": loaded, "failed": failed}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
