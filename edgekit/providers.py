"""Choosing ONNX Runtime execution providers, and saying why.

An execution provider (EP) is the backend that runs a graph's nodes: CPU, CUDA, CoreML, QNN...
``resolve_providers`` turns what a user asked for into the list ``InferenceSession`` wants and
records the choice, so a benchmark or a grade can show which backend produced a number.

>>> choice = resolve_providers("cpu")
>>> choice.providers
['CPUExecutionProvider']
>>> resolve_providers("auto").chosen in choice.available
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

from ._errors import ProviderError

ProviderSpec = Union[str, tuple]

# Short names students type, mapped to ONNX Runtime's own names.
ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "directml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
}

# "auto" takes the first of these that this onnxruntime build offers. TensorRT is left out on
# purpose: it compiles an engine on first use (minutes on a Jetson), a surprise for a default.
# QNN is left out: it is a plugin EP that a providers list cannot select (see PLUGIN_ONLY).
AUTO_ORDER = (
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)

# Where to get the onnxruntime build that carries a provider.
INSTALL_HINTS = {
    "CUDAExecutionProvider": "pip install onnxruntime-gpu (NVIDIA GPU; on Jetson use NVIDIA's wheel for your JetPack)",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu plus TensorRT",
    "DmlExecutionProvider": "pip install onnxruntime-directml (Windows)",
    "OpenVINOExecutionProvider": "pip install onnxruntime-openvino (Intel)",
    "CoreMLExecutionProvider": "use the standard onnxruntime wheel on macOS",
}

# Plugin EPs: once registered they show in get_available_providers(), but InferenceSession(providers=[...])
# then silently runs every node on the CPU EP (checked with onnxruntime 1.31/1.32 and onnxruntime-qnn
# 2.7.0). They are chosen through their devices instead, which these edgekit functions do.
PLUGIN_ONLY = {
    "QNNExecutionProvider": "edgekit.qnn.qnn_session(model, soc=57) for an InferenceSession on the QNN HTP "
                            "(57 = Snapdragon 8 Gen 3; edgekit.qnn.SOCS lists chips), edgekit.npu.npu_check(model, "
                            "soc=57) or the command  edgekit npu-check MODEL --soc 57  to see which nodes run there "
                            "(needs pip install 'edgekit[qnn]')",
}


@dataclass
class ProviderChoice:
    """What was asked for, what ONNX Runtime offers here, and what will be used."""

    requested: Any
    providers: list  # the list handed to InferenceSession (names or (name, options) tuples)
    available: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def chosen(self) -> str:
        first = self.providers[0]
        return first if isinstance(first, str) else first[0]


def _canonical(name: str, known: Sequence[str]) -> str:
    if name in known:
        return name
    alias = ALIASES.get(name.lower()) or ALIASES.get(name.lower().removesuffix("executionprovider"))
    if alias:
        return alias
    raise ProviderError(
        f"unknown execution provider {name!r}. Expected an ONNX Runtime provider name such as "
        f"'CPUExecutionProvider' or a short name ({', '.join(sorted(ALIASES))}). "
        f"Known to this onnxruntime: {', '.join(known)}"
    )


def resolve_providers(requested: str | Sequence[ProviderSpec] | None = "auto") -> ProviderChoice:
    """Turn ``"auto"``, ``None``, a name or a list of names/``(name, options)`` into a choice."""
    import onnxruntime as ort

    available = list(ort.get_available_providers())
    if requested is None or requested == "auto":
        best = next(p for p in AUTO_ORDER if p in available or p == "CPUExecutionProvider")
        chain = [best] + (["CPUExecutionProvider"] if best != "CPUExecutionProvider" else [])
        others = [p for p in AUTO_ORDER[: AUTO_ORDER.index(best)]]
        why = f"auto: {best} is the first available of {', '.join(AUTO_ORDER)}"
        if others:
            why += f" ({', '.join(others)} not in this onnxruntime build)"
        return ProviderChoice(requested or "auto", chain, available, why)

    items = [requested] if isinstance(requested, (str, tuple)) else list(requested)
    if not items:
        raise ProviderError("providers=[] is empty: pass 'auto', 'cpu' or a list such as ['CPUExecutionProvider']")
    known = list(ort.get_all_providers())
    resolved: list = []
    for item in items:
        name, options = (item, None) if isinstance(item, str) else (item[0], item[1])
        name = _canonical(name, known)
        if name in PLUGIN_ONLY:
            raise ProviderError(
                f"{name} cannot be chosen with a providers list: it is a plugin execution provider, and "
                f"providers=[{name!r}] makes ONNX Runtime run every node on the CPU EP without a word. "
                f"Use {PLUGIN_ONLY[name]}."
            )
        if name not in available:
            hint = INSTALL_HINTS.get(name, "install an onnxruntime build that includes it")
            raise ProviderError(
                f"execution provider {name} is not available in this onnxruntime build "
                f"(available here: {', '.join(available)}). To get it: {hint}. "
                f"Or pass providers='auto' to use the best available one."
            )
        resolved.append(name if options is None else (name, options))
    return ProviderChoice(requested, resolved, available, "explicit")
