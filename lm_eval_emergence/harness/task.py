"""lm-eval task classes of the emergence tasks: one `emergence` request per document.

A task's YAML names its class (`class: !function lm_eval_emergence.harness.task.IclTask`);
lm-eval's `ConfigurableTask` does the rest (documents, limits, ranks, logging). The classes add
the request type, the per-document metric values, checks that fail before any forward pass, and
their own aggregations: a task holds its resolved settings, sends the capture half to the model
with each request and estimates with the estimation half (`TaskEstimate`).
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from dataclasses import replace
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from ..capture import StreamSpec
from ..estimators import MIN_SAMPLES
from ..metrics.emergence import stream_spec
from ..metrics.table import definition, value_keys, with_stderr_keys
from ..settings import EmergenceConfigError, IESettings, ie_keys
from . import metrics as _metrics  # noqa: F401  (registers the metric keys the config names)
from .aggregate import TaskEstimate
from .documents import options_of
from .features import EmergenceFeatures
from .model import live_model
from .requests import RequestContext, RequestSpec

__all__ = ["EmergenceTask", "IclTask", "ShotsTask", "WindowTask"]


#: What an ICL task reports beside its intrinsic metrics, averaged per document by lm-eval.
ICL_ABILITY = ("acc", "logprob_correct")


def _metric_list(keys: list[str], with_acc: bool) -> list[dict[str, Any]]:
    entries = [
        {"metric": k, "aggregation": k, "higher_is_better": definition(k).higher_is_better}
        for k in keys
    ]
    if with_acc:
        entries += [
            {"metric": k, "aggregation": "mean", "higher_is_better": definition(k).higher_is_better}
            for k in ICL_ABILITY
        ]
    return entries


class EmergenceTask(ConfigurableTask):
    """Base class: requests, metric keys and early checks shared by all emergence tasks."""

    #: The request type; `HFEmergenceLM.emergence` serves it.
    REQUEST_TYPE = "emergence"
    WITH_ACC = False
    #: Whether its estimate can come from streamed moments (where the protocol reads them); a
    #: task that splits its documents after the forward passes (by outcome) needs their states.
    CAN_STREAM = True

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str | None = None,
        download_mode: Any = None,
        config: dict | None = None,
    ) -> None:
        config = dict(config or {})
        config.pop("class", None)
        config.setdefault("output_type", "loglikelihood")  # validated by lm-eval; not used
        config.setdefault("test_split", "test")
        config.setdefault("doc_to_text", "{{text}}")
        config.setdefault("doc_to_target", "")
        config.setdefault("num_fewshot", 0)
        metadata = config.get("metadata") or {}
        overrides = ie_keys(metadata) if isinstance(metadata, dict) else {}
        model = live_model()
        base = model.ie_settings if model is not None else None
        # bad settings fail here, before the data is built
        settings = IESettings.from_mapping(overrides, base=base)
        # each task draws its own projections, so that a group's subtasks are independent
        # measurements (lm-eval's group stderr assumes it)
        salt = zlib.crc32(str(config.get("task", "")).encode())
        self.ie_settings = replace(settings, capture=replace(settings.capture, salt=salt))
        # recorded in the results JSON's task config, next to the numbers it names
        config["metadata"] = {
            **(metadata if isinstance(metadata, dict) else {}),
            "emergence_protocol": self.ie_settings.estimation.protocol,
        }
        if not config.get("metric_list"):
            config["metric_list"] = _metric_list(self._keys(metadata), self.WITH_ACC)
        super().__init__(data_dir, cache_dir, download_mode, config)
        # multi-GPU padding is keyed on the task's OUTPUT_TYPE (lm_eval/evaluator.py)
        self.OUTPUT_TYPE = self.REQUEST_TYPE
        self._model_settings = base
        self._stream: StreamSpec | None = None  # set per run by build_all_requests
        self._shared: dict[str, RequestContext] = {}  # this run's request context, by tokenizer
        self.estimate = TaskEstimate(
            self.ie_settings.estimation,
            self.shot_positions,
            capture=self.ie_settings.capture,
            metadata=self.config.metadata if isinstance(self.config.metadata, dict) else None,
        )
        for key in self.all_keys():
            self._aggregation_list[key] = self.estimate.aggregation(key)
        self._built = True

    # documents --------------------------------------------------------------------------------

    def test_docs(self) -> list[dict]:
        """The documents as one list of dicts, built once: lm-eval reads each document on every
        pass (requests, results), and a `datasets.Dataset` formats a row per read (0.1 ms; 30 s
        a pass at N = 300,000)."""
        docs = super().test_docs()
        if not getattr(self, "_built", False):  # lm-eval's __init__ reads the Dataset's features
            return docs
        cached = getattr(self, "_docs_cache", None)
        if cached is None or cached[0] is not docs:
            cached = self._docs_cache = (docs, docs.to_list() if hasattr(docs, "to_list") else docs)
        return cached[1]

    def doc_to_text(self, doc: dict, doc_to_text: Any = None) -> str:
        """The document's text, without rendering a Jinja template per document (0.6 ms each)."""
        return doc["text"]

    # metric keys ------------------------------------------------------------------------------

    def value_keys(self, metadata: dict) -> list[str]:
        """The value keys of this task's documents (stderr companions are added after them)."""
        return value_keys(control=self.ie_settings.capture.control is not None)

    def _keys(self, metadata: dict) -> list[str]:
        return with_stderr_keys(self.value_keys(metadata))

    def all_keys(self) -> list[str]:
        """Every metric key of a document, value keys first (see process_results)."""
        metadata = self.config.metadata if isinstance(self.config.metadata, dict) else {}
        return self._keys(metadata)

    # requests ---------------------------------------------------------------------------------

    def positions(self, doc: dict) -> list[int]:
        """Token indices whose in-context states the estimate needs (default: the last)."""
        return [len(doc["token_ids"]) - 1]

    def next_token(self) -> bool:
        return False

    def score_ids(self, doc: dict) -> list[int] | None:
        """Token ids whose next-token log-probability mass the payload carries (None: none)."""
        return None

    def shot_positions(self, seq_len: int) -> list[int] | None:
        """Token indices at which E is reported per shot (None: no shot curve)."""
        return None

    def build_all_requests(self, *, limit: int | float | None = None, **kwargs: Any) -> None:
        n_docs = len(self.eval_docs)
        used = n_docs if limit is None else (int(n_docs * limit) if limit < 1 else int(limit))
        used = min(used, n_docs)
        if used < MIN_SAMPLES:
            docs = f"{used} document{'' if used == 1 else 's'}"
            cause = f"--limit {limit:g} leaves {docs}" if limit is not None else f"it has {docs}"
            raise EmergenceConfigError(
                f"task {self.config.task}: {cause}, below the {MIN_SAMPLES} an MI "
                f"estimate needs; use --limit {MIN_SAMPLES} or more (or raise n_docs)"
            )
        if self.ie_settings.estimation.form == "psi" and len(self.positions(self.eval_docs[0])) > 1:
            raise EmergenceConfigError(
                f"task {self.config.task} reports E per position, which the psi form "
                "(ie_form=psi, ie_protocol=psi-update) does not have; run it on the "
                "emergence_icl tasks, or use ie_form=ie here"
            )
        self._stream = self._stream_spec(used, kwargs.get("samples"))
        self._shared = {}  # built again for this run's stream spec
        super().build_all_requests(limit=limit, **kwargs)

    def _stream_spec(self, used: int, samples: Any) -> StreamSpec | None:
        """How the model streams this run's states into moments, or None to keep them: the
        protocol decides (`emergence.stream_spec`), unless this task needs the states."""
        why = None
        if not self.CAN_STREAM:
            why = "this task splits its documents by outcome after the forward passes"
        elif samples is not None:
            why = "--samples picks documents by index, and the folds are drawn over 0..N-1"
        return stream_spec(used, self.ie_settings.estimation, blocked_by=why)

    def construct_requests(self, doc: dict, ctx: Any, **kwargs: Any) -> Instance:
        # what every request of this run shares, built once per tokenizer
        context = self._shared.get(doc["tokenizer"])
        if context is None:
            context = self._shared[doc["tokenizer"]] = RequestContext(
                tokenizer=doc["tokenizer"],
                capture=self.ie_settings.capture,
                model_settings=self._model_settings,  # the model they were built on
                stream=self._stream,
            )
        score = self.score_ids(doc)
        spec = RequestSpec(
            token_ids=tuple(doc["token_ids"]),
            positions=tuple(self.positions(doc)),
            next_token=self.next_token(),
            score_ids=None if score is None else tuple(score),
            context=context,
        )
        return Instance(
            request_type=self.REQUEST_TYPE,  # type: ignore[arg-type]
            doc=doc,
            arguments=(doc["text"], spec),
            idx=0,
            metadata=kwargs.get("metadata", (None, None, None)),
        )

    def process_results(self, doc: dict, results: list) -> dict[str, Any]:
        (features,) = results
        if not isinstance(features, EmergenceFeatures):
            raise TypeError(f"expected EmergenceFeatures, got {type(features).__name__}")
        # the same payload under every key; value keys first, so that a stderr key's number
        # replaces the "N/A" lm-eval writes for the value key's stderr
        return dict.fromkeys(self._result_keys, features)

    @functools.cached_property
    def _result_keys(self) -> list[str]:
        """`all_keys()`, worked out once per task, not once per document (issue 35: it was
        about 50 us of the plugin's per-document time)."""
        return self.all_keys()


class IclTask(EmergenceTask):
    """Synthetic ICL lists. Ability from the same passes: `acc`, the greedy continuation names
    an unlisted entity; `logprob_correct`, the natural log of the probability mass the next
    token puts on the unlisted entities (continuous: it moves where `acc` sits on a plateau)."""

    WITH_ACC = True

    def next_token(self) -> bool:
        return True

    def score_ids(self, doc: dict) -> list[int]:
        return list(doc["next_ok_ids"])

    def doc_to_target(self, doc: dict, doc_to_target: Any = None) -> str:
        return f"an unlisted {doc['category']}"

    def process_results(self, doc: dict, results: list) -> dict[str, Any]:
        out = super().process_results(doc, results)
        (features,) = results
        out["acc"] = int(features.next_token_id in set(doc["next_ok_ids"]))
        out["logprob_correct"] = features.next_logprob
        return out


class ShotsTask(IclTask):
    """Lists of up to 10 shots: E at the end of every shot (the shot curve), and IE split by
    what the model does next (`emergence_outcome_*`)."""

    CAN_STREAM = False  # the outcome groups are subsets of the documents' states

    def value_keys(self, metadata: dict) -> list[str]:
        control = self.ie_settings.capture.control is not None
        return value_keys(options_of("shots", metadata).max_shots, control, outcomes=True)

    def process_results(self, doc: dict, results: list) -> dict[str, Any]:
        (features,) = results
        if not isinstance(features, EmergenceFeatures):
            raise TypeError(f"expected EmergenceFeatures, got {type(features).__name__}")
        nxt = features.next_token_id
        if nxt in set(doc["next_ok_ids"]):
            outcome = "correct"
        elif nxt in set(doc["next_repeat_ids"]):
            outcome = "repeat"
        else:
            outcome = "other"
        return super().process_results(doc, [dataclasses.replace(features, outcome=outcome)])

    def positions(self, doc: dict) -> list[int]:
        return self.shot_positions(len(doc["token_ids"]))

    def shot_positions(self, seq_len: int) -> list[int]:
        return list(range(1, seq_len, 2))  # each shot ends with its separator


class WindowTask(EmergenceTask):
    """Windows of natural text: E at the last token and at every position."""

    def positions(self, doc: dict) -> list[int]:
        return list(range(len(doc["token_ids"])))
