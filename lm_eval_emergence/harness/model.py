"""`hf-emergence`: lm-eval's Hugging Face model plus the `emergence` request type.

The evaluator dispatches each request type to the model method of the same name, so emergence
tasks (whose requests have `request_type="emergence"`) reach `HFEmergenceLM.emergence`, while
every standard task uses the inherited `loglikelihood` / `generate_until` unchanged: one process,
one model load. `--use_cache` caches only the standard request types, so emergence requests are
always computed.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import model_registry
from lm_eval.models.huggingface import HFLM

from ..capture import (
    Capture,
    CaptureInfo,
    CapturePlan,
    StreamSpec,
    TokenTable,
    capture_moments,
    capture_states,
    capture_token_table,
    find_blocks,
    fitting_batch_size,
    plan_capture,
)
from ..controls import random_weights_copy
from ..meta import MODEL_NAME
from ..settings import DEFAULT_BATCH_SIZE, CaptureSettings, EmergenceConfigError, IESettings
from .features import EmergenceFeatures, StreamedMoments
from .registration import claim
from .requests import RequestSpec

__all__ = ["HFEmergenceLM", "live_model", "tokenizer_fingerprint"]

logger = logging.getLogger(__name__)

_LIVE: weakref.ref[HFEmergenceLM] | None = None


def live_model() -> HFEmergenceLM | None:
    """The most recently built `hf-emergence` model of this process, if it is still alive.

    Emergence tasks build their documents with this model's tokenizer (task loading comes after
    the model in `simple_evaluate`).
    """
    return None if _LIVE is None else _LIVE()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Identifies the tokenizer documents were built with: name and vocabulary size."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return f"{name}|{len(tokenizer)}"


def _unloadable_message(pretrained: object, exc: OSError) -> str:
    """One line for a `pretrained` that transformers cannot load, naming the fix."""
    text = str(pretrained)
    local = isinstance(pretrained, str) and text.startswith(("/", ".", "~"))
    if local and not Path(text).expanduser().exists():
        return (
            f"the model directory {text!r} does not exist; pass --model_args "
            "pretrained=<a directory holding config.json and the weights> (or leave out "
            "--model_args pretrained=... for the embedded SmolLM2-135M)"
        )
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot load the model {text!r} ({reason}); pass --model_args pretrained=<a local "
        "model directory or a Hugging Face model name that can be downloaded or is cached>"
    )


class HFEmergenceLM(HFLM):
    """HFLM that also serves `emergence` requests (the plugin's tasks).

    Model arguments `ie_*` (see `lm_eval_emergence.settings`) set the IE defaults and are
    removed before HFLM and `from_pretrained` see them; tasks may override them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: the keyword arguments it was built with (lm-eval merges the model arguments into each
        #: task's metadata, so a task's options check knows these are not typos)
        self.argument_names = frozenset(kwargs)
        _check_device_and_batch(kwargs.get("device"), kwargs.get("batch_size"))
        ie = {key: kwargs.pop(key) for key in list(kwargs) if key.startswith("ie_")}
        self.ie_settings = IESettings.from_mapping(ie)
        self._controls: dict[int, torch.nn.Module] = {}  # random-weights copies, by seed
        pretrained = kwargs.get("pretrained", args[0] if args else None)
        try:
            super().__init__(*args, **kwargs)
        except OSError as exc:  # transformers' way of saying "no model there"
            raise EmergenceConfigError(_unloadable_message(pretrained, exc)) from None
        if getattr(self, "backend", "causal") != "causal":
            raise EmergenceConfigError(
                "hf-emergence measures decoder blocks of causal LMs; this model loaded as "
                f"backend={self.backend!r}. Use a causal LM (or backend=causal)."
            )
        find_blocks(self.model)  # fail at load time on an architecture we cannot hook
        if self.ie_settings.capture.control == "random":  # fail before any capture, not after
            self._random_control(self.ie_settings.capture.seed)
        global _LIVE
        _LIVE = weakref.ref(self)

    # ----------------------------------------------------------------------------------------
    # The emergence request type

    def _plan(self, model: torch.nn.Module, settings: CaptureSettings, seq_len: int) -> CapturePlan:
        """The capture plan of `settings`; lm-eval's --batch_size unless ie_batch_size is set.
        "auto" is the largest batch of sequences of `seq_len` tokens that fits, from
        --max_batch_size down (halved on out-of-memory, as lm-eval's auto does)."""
        size = settings.batch_size if settings.batch_size is not None else self.batch_size
        if size == "auto" or isinstance(size, str):
            start = int(self.max_batch_size or DEFAULT_BATCH_SIZE)
            size = fitting_batch_size(model, seq_len, start)
            logger.info("emergence: --batch_size auto gives %d (from %d)", size, start)
        try:
            return plan_capture(model, self.tokenizer, settings, batch_size=max(1, int(size)))
        except ValueError as exc:  # a block out of range
            raise EmergenceConfigError(f"ie_layers: {exc}") from None

    def _specs(self, requests: list[Instance]) -> list[RequestSpec]:
        """Each request's spec, its shared context checked once per distinct context."""
        own = tokenizer_fingerprint(self.tokenizer)
        checked: set[int] = set()
        specs = []
        for req in requests:
            spec = req.args[1]
            if not isinstance(spec, RequestSpec):
                raise TypeError(
                    f"an emergence request carries a RequestSpec, not {type(spec).__name__}; "
                    "build it with the plugin's task classes (harness/task.py)"
                )
            context = spec.context
            if id(context) not in checked:
                if context.tokenizer != own:
                    raise EmergenceConfigError(
                        f"task {req.task_name} built its documents with tokenizer "
                        f"{context.tokenizer!r}, but this model uses {own!r}; emergence "
                        "tasks must be loaded after the hf-emergence model that runs them"
                    )
                if context.model_settings != self.ie_settings:
                    raise EmergenceConfigError(
                        f"task {req.task_name} resolved its settings against another "
                        f"hf-emergence model's ie_* arguments ({context.model_settings}), not "
                        f"this model's ({self.ie_settings}); load the emergence tasks after the "
                        "model that runs them (or use --cache_requests refresh)"
                    )
                checked.add(id(context))
            specs.append(spec)
        return specs

    def emergence(self, requests: list[Instance]) -> list[EmergenceFeatures]:
        """One `EmergenceFeatures` per request, in order.

        A request's arguments are `(text, spec)`, spec a `requests.RequestSpec` (the document's
        token ids and what to keep of it, with its task's shared `RequestContext`: the
        tokenizer, the resolved capture settings, how to stream). Requests sharing capture
        settings share one micro table and one `CaptureInfo`. With `ie_control=random` each
        payload also carries the same document's payload from a random-weights copy.
        """
        specs = self._specs(requests)
        out: dict[int, EmergenceFeatures] = {}
        by_capture: dict[CaptureSettings, list[int]] = defaultdict(list)
        for i, spec in enumerate(specs):
            by_capture[spec.context.capture].append(i)
        for settings, indices in by_capture.items():
            features = self._capture(self.model, requests, specs, indices, settings)
            if settings.control == "random":
                control = self._capture(
                    self._random_control(settings.seed), requests, specs, indices, settings
                )
                for i in indices:
                    features[i].control = control[i]
            out.update(features)
        return [out[i] for i in range(len(requests))]

    def _random_control(self, seed: int) -> torch.nn.Module:
        """The random-weights copy of this model for `seed`, built once."""
        if seed not in self._controls:
            self._controls[seed] = random_weights_copy(self.model, seed)
        return self._controls[seed]

    def _capture(
        self,
        model: torch.nn.Module,
        requests: list[Instance],
        specs: list[RequestSpec],
        indices: list[int],
        settings: CaptureSettings,
    ) -> dict[int, EmergenceFeatures]:
        """Payloads of the requests `indices` (one capture setting) from `model`."""
        bos = 1  # a BOS may be prepended: probe one token longer
        seq_len = max(len(specs[i].token_ids) for i in indices) + bos
        plan = self._plan(model, settings, seq_len)
        t0 = time.perf_counter()
        tokens = torch.tensor(sorted({t for i in indices for t in specs[i].token_ids}))
        try:
            table = capture_token_table(model, tokens, plan, progress=self.rank == 0)
        except ValueError as exc:  # a token outside the vocabulary
            raise EmergenceConfigError(str(exc)) from None
        info = replace(plan.info, state_dtype="float16")
        table = replace(
            table, inputs=_compact(table.inputs, info), outputs=_compact(table.outputs, info)
        )
        micro_share = (time.perf_counter() - t0) / len(indices)
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i in indices:
            spec = specs[i]
            shape = (
                len(spec.token_ids),
                spec.positions,
                spec.next_token,
                spec.score_ids is not None,  # scored: the correct next ids' log-prob
            )
            streamed = spec.context.stream is not None  # then moments per task: the task in the key
            groups[(*shape, str(requests[i].task_name) if streamed else None)].append(i)
        out = {}
        for (_, positions, next_token, _, streamed_task), members in groups.items():
            t_group = time.perf_counter()
            if streamed_task is not None:
                stream = specs[members[0]].context.stream
                out.update(
                    self._streamed(model, requests, specs, members, plan, table, info, stream)
                )
                continue
            ids = torch.tensor([specs[i].token_ids for i in members], dtype=torch.long)
            captured = capture_states(
                model,
                ids,
                plan,
                positions=list(positions),
                next_token=next_token,
                score_ids=_score_ids(specs, members),
                table=table,
                progress=self.rank == 0,
            )
            share = (time.perf_counter() - t_group) / len(members)
            for row, features in enumerate(self._payloads(captured, info, share)):
                i = members[row]
                features.task_name = str(requests[i].task_name)
                features.doc_id = int(requests[i].doc_id or 0)
                out[i] = features
        for i in indices:
            out[i].seconds += micro_share
        return out

    def _streamed(
        self,
        model: torch.nn.Module,
        requests: list[Instance],
        specs: list[RequestSpec],
        members: list[int],
        plan: CapturePlan,
        table: TokenTable,
        info: CaptureInfo,
        stream: StreamSpec,
    ) -> dict[int, EmergenceFeatures]:
        """Payloads of one task's requests whose states are streamed into shared moments; a
        document sent twice (lm-eval pads a rank's last request) is added once."""
        t0 = time.perf_counter()
        first_of: dict[int, int] = {}
        for i in members:
            first_of.setdefault(int(requests[i].doc_id or 0), i)
        unique = list(first_of.values())
        spec = specs[unique[0]]
        doc_ids = torch.tensor(list(first_of), dtype=torch.long)
        if int(doc_ids.max()) >= stream.rows:
            raise EmergenceConfigError(
                f"task {requests[unique[0]].task_name}: document {int(doc_ids.max())} is beyond "
                f"the {stream.rows} the stream was set up for (requests cached by another run? "
                "rerun with --cache_requests refresh)"
            )
        captured = capture_moments(
            model,
            torch.tensor([specs[i].token_ids for i in unique], dtype=torch.long),
            plan,
            stream,
            rows=doc_ids,
            positions=list(spec.positions),
            next_token=spec.next_token,
            score_ids=_score_ids(specs, unique),
            table=table,
            progress=self.rank == 0,
        )
        moments = StreamedMoments(
            macro=captured.macro,
            stream=stream,
            doc_ids=tuple(first_of),
            unit_sums=captured.unit_sums,
        )
        share = (time.perf_counter() - t0) / len(unique)
        greedy = captured.greedy_next_ids
        logprobs = captured.next_logprobs
        row_of = {i: row for row, i in enumerate(unique)}
        out = {}
        for i in members:
            doc_id = int(requests[i].doc_id or 0)
            first = first_of[doc_id]  # i itself, unless i is a padded copy
            next_id = None if greedy is None else int(greedy[row_of[first]])
            logprob = None if logprobs is None else float(logprobs[row_of[first]])
            out[i] = EmergenceFeatures(
                task_name=str(requests[i].task_name),
                doc_id=doc_id,
                token_ids=specs[i].token_ids,
                positions=tuple(captured.positions),
                macro_inputs=None,
                macro_outputs=None,
                micro=table,
                info=info,
                next_token_id=next_id,
                next_token=None if next_id is None else self.tokenizer.decode([next_id]),
                next_logprob=logprob,
                seconds=share if first == i else 0.0,
                moments=moments,
            )
        return out

    def _payloads(
        self, captured: Capture, info: CaptureInfo, seconds: float
    ) -> list[EmergenceFeatures]:
        """One payload per captured row: its macro states in half precision, shared table."""
        macro_in = _compact(captured.macro_inputs, info)
        macro_out = _compact(captured.macro_outputs, info)
        greedy = captured.greedy_next_ids
        logprobs = captured.next_logprobs
        out = []
        for row, ids in enumerate(captured.token_ids.tolist()):
            next_id = None if greedy is None else int(greedy[row])
            out.append(
                EmergenceFeatures(
                    task_name="",
                    doc_id=0,
                    token_ids=tuple(ids),
                    positions=tuple(captured.positions),
                    macro_inputs=macro_in[:, row].clone(),
                    macro_outputs=macro_out[:, row].clone(),
                    micro=captured.micro,
                    info=info,
                    next_token_id=next_id,
                    next_token=None if next_id is None else self.tokenizer.decode([next_id]),
                    next_logprob=None if logprobs is None else float(logprobs[row]),
                    seconds=seconds,
                )
            )
        return out


def _check_device_and_batch(device: object, batch_size: object) -> None:
    """A device this torch cannot run on, or a batch size below 1, in one message naming the
    fix (HFLM would stop with an assertion of torch's, or run with batch size 1)."""
    name = str(device or "")
    # HFLM takes a device it lists ("cuda", "cuda:<i>" for each GPU, "mps") and falls back to
    # the CPU for any other: lm-eval's own default, "cuda:0", runs on the CPU of a machine
    # without a GPU, as it always has
    if name == "cuda" and not torch.cuda.is_available():
        raise EmergenceConfigError(
            f"--device {name}, but this torch has no usable CUDA (torch.cuda.is_available() is "
            "False: a CPU build, or no GPU here); use --device cpu, or install a CUDA build of "
            "torch on a machine with a GPU"
        )
    if name.startswith("mps") and not torch.backends.mps.is_available():
        raise EmergenceConfigError(f"--device {name}, but MPS is not available here; use cpu")
    text = str(batch_size).strip() if batch_size is not None else ""
    if text and not text.startswith("auto"):
        try:
            size = int(text)
        except ValueError:
            size = 0
        if size < 1:
            raise EmergenceConfigError(
                f"--batch_size must be a positive integer or 'auto', got {batch_size!r}"
            )


def _score_ids(specs: list[RequestSpec], members: list[int]) -> list[list[int]] | None:
    """The `score_ids` of the requests `members` (None when they ask for none)."""
    ids = [None if specs[i].score_ids is None else list(specs[i].score_ids) for i in members]
    if all(s is None for s in ids):
        return None
    if any(s is None for s in ids):
        raise EmergenceConfigError("requests of one task differ in whether they score a next token")
    return ids  # type: ignore[return-value]


def _compact(states: torch.Tensor, info: CaptureInfo) -> torch.Tensor:
    """Half precision for the payload, unless a value would overflow it (then float32)."""
    if info.state_dtype == "float16":
        half = states.to(torch.float16)
        if bool(torch.isfinite(half).all()):
            return half
        logger.warning("hidden states exceed the float16 range; payloads kept in float32")
        info.state_dtype = "float32"
    return states.to(torch.float32)


# after the class exists: a lookup that imports this module through the entry point resolves it
claim(model_registry, MODEL_NAME, HFEmergenceLM)
