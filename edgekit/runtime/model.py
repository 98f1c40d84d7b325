"""``edgekit.load`` and ``Model``: a thin, fast wrapper around ``onnxruntime.InferenceSession``.

The wrapper adds three things and hides nothing: zoo names (``load("digits-cnn")``), provider
choice with a recorded reason, and errors that teach. The session stays reachable as
``model.session``, and the words are ONNX Runtime's (providers, inputs, outputs).

>>> import edgekit as ek
>>> m = ek.load("digits-cnn")
>>> x, y = ek.datasets.digits(split="test")
>>> logits, = m(x)
>>> logits.shape
(364, 10)
>>> m.inputs[0]
TensorSpec(input: float32[batch,1,8,8])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from math import isnan
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from numpy import vdot

from .._errors import (
    ConfigError,
    InferenceError,
    InputError,
    InvalidModelError,
    ModelLoadError,
    UnsupportedModelError,
)
from ._validate import check_feed, fmt_shape
from .providers import ProviderChoice, resolve_providers
from .zoo import resolve

if TYPE_CHECKING:
    from .info import ModelInfo

# ONNX Runtime names tensor types "tensor(float)"; numpy names them float32.
ORT_TO_NUMPY = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16, "tensor(int32)": np.int32, "tensor(uint32)": np.uint32,
    "tensor(int64)": np.int64, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "layout", "all")
EXECUTION_MODES = ("sequential", "parallel")


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (ints, or strings/None for dynamic axes) and numpy dtype of a model input/output."""

    name: str
    shape: tuple
    dtype: np.dtype
    onnx_type: str

    def __str__(self) -> str:
        return f"{self.dtype.name}{fmt_shape(self.shape)}"

    def __repr__(self) -> str:
        return f"TensorSpec({self.name}: {self})"


def _spec(node_arg) -> TensorSpec:
    dtype = np.dtype(ORT_TO_NUMPY.get(node_arg.type, np.float32))
    return TensorSpec(node_arg.name, tuple(node_arg.shape), dtype, node_arg.type)


def _session_options(threads, optimization, execution_mode, spin_wait, base):
    import onnxruntime as ort

    so = base if base is not None else ort.SessionOptions()
    if threads is not None:
        if not isinstance(threads, int) or threads < 0:
            raise ConfigError(f"threads must be an int >= 0 (0 = ONNX Runtime's default), got {threads!r}")
        so.intra_op_num_threads = threads
    if optimization not in OPTIMIZATION_LEVELS:
        raise ConfigError(f"optimization must be one of {OPTIMIZATION_LEVELS}, got {optimization!r}")
    level_name = {"disable": "ORT_DISABLE_ALL"}.get(optimization, f"ORT_ENABLE_{optimization.upper()}")
    # ORT_ENABLE_LAYOUT only exists in newer onnxruntime releases; fall back to EXTENDED.
    so.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, level_name, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    )
    if execution_mode not in EXECUTION_MODES:
        raise ConfigError(f"execution_mode must be one of {EXECUTION_MODES}, got {execution_mode!r}")
    so.execution_mode = getattr(ort.ExecutionMode, f"ORT_{execution_mode.upper()}")
    if spin_wait is not None:
        # Spinning keeps worker threads hot between ops: lower latency, more CPU time burnt.
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
    return so


def _load_error(path: Path, exc: Exception) -> ModelLoadError:
    """Map ONNX Runtime's load failures to an edgekit error that says what to do."""
    msg = str(exc)
    first = msg.split("\n")[0][-400:]
    if "INVALID_PROTOBUF" in msg or "Protobuf parsing failed" in msg:
        return InvalidModelError(
            f"{path} is not a valid ONNX model (the file could not be parsed as ONNX protobuf; "
            f"{path.stat().st_size} bytes). Expected a .onnx file exported by torch.onnx / tf2onnx / onnx. "
            "If it is a zoo model, run: edgekit models verify  (and edgekit models build NAME to rebuild)"
        )
    if "IR version" in msg or ("opset" in msg.lower() and "support" in msg.lower()):
        import onnxruntime as ort

        return UnsupportedModelError(
            f"{path} needs a newer ONNX Runtime than {ort.__version__}: {first}. "
            "Re-export the model with a lower opset (torch.onnx.export(..., opset_version=17)) "
            "or upgrade: pip install -U onnxruntime"
        )
    if "No Op registered" in msg or "INVALID_GRAPH" in msg:
        return UnsupportedModelError(
            f"{path} uses an operator this ONNX Runtime cannot run: {first}. Check the op with "
            "Model.info() on a machine where it loads, re-export with a standard opset, or use a "
            "build/provider that implements it"
        )
    return ModelLoadError(f"ONNX Runtime could not load {path}: {first}")


def load(
    model: str | os.PathLike,
    *,
    providers: str | Sequence[Any] | None = None,
    threads: int | None = None,
    optimization: str = "all",
    execution_mode: str = "sequential",
    spin_wait: bool | None = None,
    check_nan: bool = True,
    session_options: Any = None,
) -> "Model":
    """Load an ``.onnx`` file or a zoo name into a :class:`Model`.

    ``providers``: ``None``/``"auto"`` picks the best available execution provider (the choice
    and its reason are in ``model.provider_choice``); or a name (``"cpu"``,
    ``"CUDAExecutionProvider"``) or a list of names / ``(name, options)`` like ONNX Runtime's.
    ``threads`` sets ``intra_op_num_threads``; ``optimization`` is one of
    ``disable|basic|extended|layout|all``; ``session_options`` is an ``ort.SessionOptions`` to
    start from.

    >>> load("digits-cnn", providers="cpu", threads=1).providers
    ['CPUExecutionProvider']
    """
    import onnxruntime as ort

    path, zoo_name = resolve(model)
    so = _session_options(threads, optimization, execution_mode, spin_wait, session_options)
    choice = resolve_providers(providers)
    try:
        if choice.plugin:  # QNN, chosen by "auto" on a Snapdragon: through its devices, CPU implied
            from .qnn import add_qnn

            session = ort.InferenceSession(str(path), sess_options=add_qnn(so, choice.soc), enable_fallback=0)
        else:
            session = ort.InferenceSession(str(path), sess_options=so, providers=choice.providers)
    except Exception as exc:  # ORT raises its own pybind classes; map them all
        raise _load_error(path, exc) from None
    return Model(session, path=path, name=zoo_name or path.stem, provider_choice=choice, check_nan=check_nan)


class Model:
    """An ONNX model ready to run: ``model(x)`` or ``model.run({"input": x})``.

    ``session`` is the underlying ``onnxruntime.InferenceSession``; ``inputs``/``outputs`` are
    :class:`TensorSpec` lists; ``provider_choice`` records which execution provider was picked and why.
    """

    def __init__(self, session, *, path: Path | None = None, name: str = "model",
                 provider_choice: ProviderChoice | None = None, check_nan: bool = True):
        self.session = session
        self.path = Path(path) if path is not None else None
        self.name = name
        self.provider_choice = provider_choice
        self.check_nan = check_nan
        self.inputs = [_spec(a) for a in session.get_inputs()]
        self.outputs = [_spec(a) for a in session.get_outputs()]
        self._input_names = [s.name for s in self.inputs]
        self._output_names = [s.name for s in self.outputs]
        self._n_inputs = len(self.inputs)
        self._nan_checked = [s.name for s in self.inputs if s.dtype.kind == "f"] if check_nan else []
        # The fast path: the C++ session's run(), skipping InferenceSession.run's Python-side
        # checks (~1.7 us of a ~4 us call); our own diagnosis runs only when ORT refuses a feed.
        self._run = getattr(session, "_sess", session).run

    @property
    def providers(self) -> list[str]:
        """The providers the session actually has, in priority order (``session.get_providers()``)."""
        return self.session.get_providers()

    def run(self, feed: Mapping[str, np.ndarray] | np.ndarray, output_names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Run the model; return the outputs as a list of numpy arrays (in ``self.outputs`` order).

        ``feed`` is a dict ``{input name: array}``, or one array for a one-input model.
        """
        if type(feed) is not dict:
            feed = self._as_feed(feed)
        try:
            for name in self._nan_checked:  # the float inputs; empty when check_nan=False
                value = feed[name]
                # vdot(v, v) is NaN exactly when v holds a NaN (squares cannot cancel to NaN),
                # and costs half of np.isnan(v).any() on small inputs.
                if isnan(vdot(value, value)):
                    raise InputError("NaN")  # diagnosed below, with the index
            if len(feed) != self._n_inputs:
                raise InputError("count")  # ORT would log an error line before failing
            return self._run(list(output_names) if output_names else self._output_names, feed, None)
        except Exception as exc:
            raise self._diagnose(feed, exc) from None

    __call__ = run

    def _as_feed(self, feed) -> dict:
        # ndarray first: isinstance(..., Mapping) is an ABC check, slow on the hot path
        if self._n_inputs == 1 and (type(feed) is np.ndarray or not isinstance(feed, Mapping)):
            return {self._input_names[0]: feed}
        if isinstance(feed, Mapping):
            return dict(feed)
        raise InputError(
            f"this model has {len(self.inputs)} inputs ({', '.join(map(repr, self.inputs))}); "
            f"pass a dict: model.run({{{', '.join(f'{n!r}: ...' for n in self._input_names)}}})"
        )

    def _diagnose(self, feed, exc: Exception) -> Exception:
        check_feed(self.inputs, feed, check_nan=self.check_nan)  # raises InputError if it finds the cause
        if isinstance(exc, InputError):  # our own pre-checks fired but the full check found nothing
            return exc
        text = str(exc).replace("\n", " ")[-600:]
        if "output" in text.lower() and "name" in text.lower():
            return InputError(f"unknown output name; this model's outputs are {self._output_names}: {text}")
        return InferenceError(f"ONNX Runtime failed while running {self.name}: {text}")

    def info(self) -> "ModelInfo":
        """Opset, producer, parameter count, size, op histogram and input/output specs."""
        from .info import model_info

        return model_info(self)

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}: {s}" for s in self.inputs)
        outs = ", ".join(f"{s.name}: {s}" for s in self.outputs)
        return f"Model({self.name!r}, inputs=[{ins}], outputs=[{outs}], providers={self.providers})"
