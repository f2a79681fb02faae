"""`hf-emergence`: lm-eval's Hugging Face model plus the `emergence` request type.

The evaluator dispatches each request type to the model method of the same name, so emergence
tasks (whose requests have `request_type="emergence"`) reach `HFEmergenceLM.emergence`, while
every standard task uses the inherited `loglikelihood` / `generate_until` unchanged: one process,
one model load. `--use_cache` caches only the standard request types, so emergence requests are
always computed.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections import defaultdict
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from ..capture import (
    RandomProjection,
    capture_macro,
    capture_token_states,
    find_blocks,
    hidden_size,
    model_bos_token_id,
)
from .features import CaptureInfo, EmergenceFeatures, TokenTable
from .settings import EmergenceConfigError, IESettings

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


@register_model("hf-emergence")
class HFEmergenceLM(HFLM):
    """HFLM that also serves `emergence` requests (the plugin's tasks).

    Model arguments `ie_*` (see `lm_eval_emergence.harness.settings`) set the IE defaults and are
    removed before HFLM and `from_pretrained` see them; tasks may override them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ie = {key: kwargs.pop(key) for key in list(kwargs) if key.startswith("ie_")}
        self.ie_settings = IESettings.from_mapping(ie)
        super().__init__(*args, **kwargs)
        if getattr(self, "backend", "causal") != "causal":
            raise EmergenceConfigError(
                "hf-emergence measures decoder blocks of causal LMs; this model loaded as "
                f"backend={self.backend!r}. Use a causal LM (or backend=causal)."
            )
        find_blocks(self.model)  # fail at load time on an architecture we cannot hook
        global _LIVE
        _LIVE = weakref.ref(self)

    # ----------------------------------------------------------------------------------------
    # The emergence request type

    def _capture_batch_size(self, settings: IESettings) -> int:
        size = settings.batch_size if settings.batch_size is not None else self.batch_size
        if size == "auto" or isinstance(size, str):
            return int(self.max_batch_size or 64)
        return max(1, int(size))

    def emergence(self, requests: list[Instance]) -> list[EmergenceFeatures]:
        """One `EmergenceFeatures` per request, in order.

        A request's arguments are `(text, spec)`, where spec is a JSON object with `token_ids`,
        `positions` (token indices whose in-context states are kept), `next_token` (also read
        the greedy continuation), `tokenizer` (fingerprint of the tokenizer that built the
        document) and `settings` (the task's `ie_*` overrides).
        """
        if not requests:
            return []
        own = tokenizer_fingerprint(self.tokenizer)
        parsed: list[tuple[dict[str, Any], IESettings]] = []
        settings_cache: dict[str, IESettings] = {}
        for req in requests:
            spec = json.loads(req.args[1])
            if spec.get("tokenizer") != own:
                raise EmergenceConfigError(
                    f"task {req.task_name} built its documents with tokenizer "
                    f"{spec.get('tokenizer')!r}, but this model uses {own!r}; emergence tasks "
                    "must be loaded after the hf-emergence model that runs them"
                )
            key = json.dumps(spec.get("settings", {}), sort_keys=True)
            if key not in settings_cache:
                settings_cache[key] = IESettings.from_mapping(
                    spec.get("settings", {}), base=self.ie_settings
                )
            parsed.append((spec, settings_cache[key]))

        model = self.model
        hidden = hidden_size(model)
        bos = model_bos_token_id(model, self.tokenizer)
        n_params = sum(p.numel() for p in model.parameters())
        dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        progress = self.rank == 0
        out: list[EmergenceFeatures | None] = [None] * len(requests)

        # requests sharing capture settings share one micro table and one CaptureInfo
        by_capture: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, (_, settings) in enumerate(parsed):
            by_capture[settings.capture_key()].append(i)
        for indices in by_capture.values():
            settings = parsed[indices[0]][1]
            projection = None
            if settings.projection_dim is not None and settings.projection_dim < hidden:
                projection = RandomProjection(hidden, settings.projection_dim, settings.seed)
            layers = list(settings.layers) if settings.layers is not None else None
            batch = self._capture_batch_size(settings)
            t0 = time.perf_counter()
            distinct = torch.tensor(
                sorted({t for i in indices for t in parsed[i][0]["token_ids"]}), dtype=torch.long
            )
            try:
                table_states = capture_token_states(
                    model,
                    distinct,
                    bos_token_id=bos,
                    layers=layers,
                    batch_size=max(batch, 64),
                    projection=projection,
                    progress=progress,
                )
            except ValueError as exc:  # layer out of range, token outside the vocabulary
                raise EmergenceConfigError(str(exc)) from None
            info = CaptureInfo(
                layers=list(table_states.layers),
                projection_dim=settings.projection_dim,
                hidden_dim=hidden,
                state_dim=projection.k if projection is not None else hidden,
                bos_token_id=bos,
                model_name=str(getattr(model.config, "_name_or_path", "") or type(model).__name__),
                n_parameters=n_params,
                model_dtype=dtype,
                state_dtype="float16",
                rank=self.rank,
            )
            table = TokenTable(
                distinct,
                self._compact(table_states.inputs[:, :, 0], info),
                self._compact(table_states.outputs[:, :, 0], info),
            )
            seconds_micro = time.perf_counter() - t0

            groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
            for i in indices:
                spec = parsed[i][0]
                groups[
                    (len(spec["token_ids"]), tuple(spec["positions"]), bool(spec["next_token"]))
                ].append(i)
            micro_share = seconds_micro / len(indices)
            for (_, positions, next_token), members in groups.items():
                t_group = time.perf_counter()
                ids = torch.tensor([parsed[i][0]["token_ids"] for i in members], dtype=torch.long)
                offset = 0
                if bos is not None:
                    ids = torch.cat([torch.full((len(members), 1), bos), ids], dim=1)
                    offset = 1
                captured = capture_macro(
                    model,
                    ids,
                    layers=info.layers,
                    positions=[p + offset for p in positions],
                    batch_size=batch,
                    projection=projection,
                    progress=progress,
                    next_token=next_token,
                )
                macro_in = self._compact(captured.inputs, info)
                macro_out = self._compact(captured.outputs, info)
                share = micro_share + (time.perf_counter() - t_group) / len(members)
                for row, i in enumerate(members):
                    spec, doc_settings = parsed[i]
                    next_id = None
                    next_text = None
                    if captured.greedy_next_ids is not None:
                        next_id = int(captured.greedy_next_ids[row])
                        next_text = self.tokenizer.decode([next_id])
                    out[i] = EmergenceFeatures(
                        task_name=str(requests[i].task_name),
                        doc_id=int(requests[i].doc_id or 0),
                        token_ids=tuple(spec["token_ids"]),
                        positions=positions,
                        macro_inputs=macro_in[:, row].clone(),
                        macro_outputs=macro_out[:, row].clone(),
                        micro=table,
                        info=info,
                        settings=doc_settings,
                        next_token_id=next_id,
                        next_token=next_text,
                        seconds=share,
                    )
        assert all(f is not None for f in out)
        return out  # type: ignore[return-value]

    @staticmethod
    def _compact(states: torch.Tensor, info: CaptureInfo) -> torch.Tensor:
        """Half precision for the payload, unless a value would overflow it (then float32)."""
        if info.state_dtype == "float16":
            half = states.to(torch.float16)
            if bool(torch.isfinite(half).all()):
                return half
            logger.warning("hidden states exceed the float16 range; payloads kept in float32")
            info.state_dtype = "float32"
        return states.to(torch.float32)
