"""Choosing ONNX Runtime execution providers, and saying why.

An execution provider (EP) is the backend that runs a graph's nodes: CPU, CUDA, CoreML, QNN...
``resolve_providers`` turns what a user asked for into the list ``InferenceSession`` wants and
records the choice, so a benchmark or a grade can show which backend produced a number.

>>> choice = resolve_providers("cpu")
>>> choice.providers
['CPUExecutionProvider']
>>> resolve_providers("auto").chosen in choice.available
True
>>> resolve_providers("auto", where=Platform("rpi4", "Linux", "aarch64")).reason
'auto: a Raspberry Pi (rpi4): no GPU or NPU that ONNX Runtime can use, so the CPU EP'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

from .._errors import ProviderError

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

# On a PC, "auto" takes the first of these that this onnxruntime build offers (each comes only with
# a wheel installed on purpose: onnxruntime-gpu, -directml, -openvino). Boards have rules of their
# own (auto_choice). TensorRT is left out on a PC: it compiles an engine on first use, a surprise
# for a default. QNN is a plugin EP that a providers list cannot select (see PLUGIN_ONLY).
AUTO_ORDER = (
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
CPU = "CPUExecutionProvider"

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
    "QNNExecutionProvider": "edgekit.runtime.qnn.qnn_session(model, soc=57) for an InferenceSession on the QNN HTP "
                            "(57 = Snapdragon 8 Gen 3; edgekit.runtime.qnn.SOCS lists chips), edgekit.deploy.npu.npu_check(model, "
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
    plugin: str | None = None  # a plugin EP added through its devices, ahead of `providers` (QNN)
    soc: int | None = None  # QNN: the chip (soc_model), where the board says which

    @property
    def chosen(self) -> str:
        first = self.plugin or self.providers[0]
        return first if isinstance(first, str) else first[0]


@dataclass(frozen=True)
class Platform:
    """What ``"auto"`` looks at: the board family (``edgekit.runtime.board``), the OS and CPU
    architecture, whether onnxruntime-qnn is installed, and the Snapdragon chip when known."""

    family: str | None
    system: str
    machine: str
    qnn: bool = False
    soc: int | None = None

    @classmethod
    def of(cls, model: str | None, family: str | None, qnn: bool | None = None) -> "Platform":
        """This OS and CPU architecture with a board's model string and family (``edgekit.runtime.board``);
        ``qnn``: is onnxruntime-qnn installed (``None``: look)."""
        import importlib.util
        import platform

        from .board import norm_arch

        if qnn is None:
            qnn = importlib.util.find_spec("onnxruntime_qnn") is not None
        return cls(family, platform.system(), norm_arch(platform.machine()) or "", qnn, snapdragon_soc(model))

    @classmethod
    def here(cls) -> "Platform":
        global _HERE
        if _HERE is None:  # the board does not change while we run: probe once
            from .board import board

            _HERE = cls.of(*board())
        return _HERE


_HERE: Platform | None = None


def snapdragon_soc(model: str | None) -> int | None:
    """The QNN ``soc_model`` of a Snapdragon board from its model string, when it says which chip."""
    text = (model or "").lower()
    if "x1e" in text or "x1p" in text or "x elite" in text or "x plus" in text:
        return 60  # Snapdragon X Elite / X Plus (SC8380XP)
    return None


def auto_choice(available: Sequence[str], where: Platform) -> ProviderChoice:
    """The ``"auto"`` rule for a platform, with the reason in words (``edgekit doctor`` prints it).

    >>> auto_choice(["CPUExecutionProvider"], Platform("rpi5", "Linux", "aarch64")).chosen
    'CPUExecutionProvider'
    >>> auto_choice(["CoreMLExecutionProvider", "CPUExecutionProvider"], Platform(None, "Darwin", "aarch64")).providers
    ['CoreMLExecutionProvider', 'CPUExecutionProvider']
    """
    available = list(available)

    def pick(chain: list, why: str, **plugin) -> ProviderChoice:
        return ProviderChoice("auto", [*chain, CPU], available, f"auto: {why}", **plugin)

    family = where.family or ""
    if family == "snapdragon":
        if where.qnn:
            return pick([], "a Snapdragon with onnxruntime-qnn: QNNExecutionProvider (the Hexagon NPU, HTP backend) "
                        "takes the nodes it supports, the CPU EP the rest", plugin="QNNExecutionProvider", soc=where.soc)
        if where.system == "Windows":
            return pick([], 'a Snapdragon, but onnxruntime-qnn is not installed, so the NPU is idle: pip install '
                        '"edgekit[qnn]"; CPU until then')
        return pick([], f"a Snapdragon under {where.system}: onnxruntime-qnn has wheels for Windows (and the NPU "
                    f"emulator for Linux x86_64) only, so the NPU is out of reach here; CPU")
    if family == "jetson":
        gpu = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        if not gpu:
            return pick([], "a Jetson, but this onnxruntime has no CUDA: install NVIDIA's onnxruntime-gpu wheel for "
                        "your JetPack (see the README's Jetson guide); CPU until then")
        trt = tensorrt_options()
        chain = [(p, trt) if p.startswith("Tensorrt") else p for p in gpu]
        why = "a Jetson with onnxruntime-gpu: " + " then ".join(gpu) + ", the CPU EP for the rest"
        if "TensorrtExecutionProvider" in gpu:
            why += (f"; TensorRT builds an engine on a model's first load (minutes), cached in "
                    f"{trt['trt_engine_cache_path']}")
        return pick(chain, why)
    if where.system == "Darwin" and where.machine == "aarch64":
        if "CoreMLExecutionProvider" in available:
            return pick(["CoreMLExecutionProvider"], "Apple silicon: CoreMLExecutionProvider (the Neural Engine and GPU "
                        "where Core ML places the nodes), the CPU EP for the rest")
        return pick([], "Apple silicon, but this onnxruntime has no CoreML EP (the standard macOS wheel has it); CPU")
    if family.startswith("rpi"):
        return pick([], f"a Raspberry Pi ({family}): no GPU or NPU that ONNX Runtime can use, so the CPU EP")
    best = next(p for p in AUTO_ORDER if p in available or p == CPU)
    if best == CPU:
        return pick([], "no GPU or NPU execution provider in this onnxruntime build (onnxruntime-gpu, "
                    "-directml or -openvino bring one), so the CPU EP")
    skipped = AUTO_ORDER[: AUTO_ORDER.index(best)]
    return pick([best], f"{best}, the first available of {', '.join(AUTO_ORDER[:-1])}"
                + (f" ({', '.join(skipped)} not in this build)" if skipped else ""))


def tensorrt_options() -> dict:
    """TensorRT provider options for "auto": engines cached, so only a model's first load pays."""
    from .._paths import cache_dir

    return {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache_dir("tensorrt"))}


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


def resolve_providers(requested: str | Sequence[ProviderSpec] | None = "auto", *,
                      where: Platform | None = None) -> ProviderChoice:
    """Turn ``"auto"``, ``None``, a name or a list of names/``(name, options)`` into a choice.

    ``"auto"`` follows :func:`auto_choice` for this machine (``where`` overrides it, for tests).
    """
    import onnxruntime as ort

    available = list(ort.get_available_providers())
    if requested is None or requested == "auto":
        return auto_choice(available, where or Platform.here())

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
