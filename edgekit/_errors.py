"""The one exception tree of edgekit.

Every error edgekit raises on purpose derives from :class:`EdgekitError` and says three
things: what happened, what was expected versus what was got, and what to do next.

    EdgekitError
    ├── ModelLoadError          a model file could not become a session
    │   ├── ModelNotFoundError  (also FileNotFoundError) no such file or zoo name
    │   ├── InvalidModelError   not an ONNX file, or a corrupt one
    │   └── UnsupportedModelError  opset / IR version / operator this ONNX Runtime lacks
    ├── ProviderError           (also ValueError) unknown, unavailable, or plugin-only (QNN) execution provider
    ├── InputError              (also ValueError) a feed that does not match the model's inputs
    │   └── ImageNotFoundError  (also FileNotFoundError) no image file at that path
    ├── InferenceError          (also RuntimeError) ONNX Runtime failed while running
    ├── NpuError                (also RuntimeError) the QNN execution provider could not register or build
    │   └── SocError            (also ValueError) a Snapdragon chip name edgekit does not know
    ├── ZooError                zoo manifest, checksum or build problems
    ├── QuantizationError       (also ValueError) quantization options or calibration data that cannot work
    ├── MissingExtraError       (also ImportError) an optional extra is not installed
    └── ResultError             (also ValueError) a benchmark result file that cannot be read
"""

from __future__ import annotations


class EdgekitError(Exception):
    """Base class of every error edgekit raises on purpose."""


class ModelLoadError(EdgekitError):
    """A model could not be turned into an ONNX Runtime session."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """The path does not exist and is not a zoo name."""


class InvalidModelError(ModelLoadError):
    """The file is not a valid ONNX model (corrupt, truncated or another format)."""


class UnsupportedModelError(ModelLoadError):
    """The model needs an opset, IR version or operator this ONNX Runtime does not have."""


class ProviderError(EdgekitError, ValueError):
    """An execution provider was asked for that is unknown or not available here."""


class InputError(EdgekitError, ValueError):
    """The inputs given to ``Model.run`` do not match what the model expects."""


class ImageNotFoundError(InputError, FileNotFoundError):
    """No image file at the path given (a file that exists but does not decode is an :class:`InputError`)."""


class InferenceError(EdgekitError, RuntimeError):
    """ONNX Runtime failed while running a model on inputs that looked valid."""


class NpuError(EdgekitError, RuntimeError):
    """The QNN execution provider could not be registered or could not build a session."""


class SocError(NpuError, ValueError):
    """A ``soc`` that is neither a number nor a chip in :data:`edgekit.runtime.qnn.SOCS`."""


class ZooError(EdgekitError):
    """A zoo model is unknown, fails its checksum, or could not be built."""


class QuantizationError(EdgekitError, ValueError):
    """Quantization options or calibration data that cannot work, or ONNX Runtime's quantizer failed."""


class MissingExtraError(EdgekitError, ImportError):
    """An optional dependency group (``pip install 'edgekit[extra]'``) is missing."""


class ResultError(EdgekitError, ValueError):
    """A benchmark result file is missing, not JSON, not an edgekit result, or of another schema."""


class LabError(EdgekitError, ValueError):
    """A lab folder, manifest, notebook or tests file that cannot be used."""
