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
    ├── ConfigError             (also ValueError) a setting, option value or config file that cannot work
    │   └── FleetError          no board matches, or a fleet run without a scheduler
    ├── ResultError             (also ValueError) a benchmark result or profile file that cannot be read
    ├── EvaluationError         (also ValueError) a dataset or model output evaluation cannot use
    ├── QuantizationError       (also ValueError) quantization options or data that cannot work
    ├── VideoSourceError        (also ValueError) a video source that cannot be opened
    ├── PipelineError           (also RuntimeError) a vision pipeline stage raised
    ├── LabError                (also ValueError) a lab folder, manifest, notebook or tests file
    │   └── AutotestError       an AUTOTEST directive or its autotests.yml
    ├── FencedCallError         (also RuntimeError) a fenced grading call returned no value
    └── CgroupError             (also RuntimeError) no cgroup to cap a submission: grading refuses

The command line (:func:`edgekit.cli.main.main`) prints any of them as one ``edgekit: error: ...``
line and exits with status 2.
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


class ConfigError(EdgekitError, ValueError):
    """A setting, command-line value or config file (e.g. a benchmark suite) that cannot work."""


class FleetError(ConfigError):
    """No board matches, or the fleet run was asked for without a scheduler."""


class ResultError(EdgekitError, ValueError):
    """A benchmark result (or profile) file is missing, not JSON, not an edgekit result, or of another schema."""


class LabError(EdgekitError, ValueError):
    """A lab folder, manifest, notebook or tests file that cannot be used."""


class AutotestError(LabError):
    """An AUTOTEST directive, or the autotests.yml it needs, that cannot be expanded."""


class EvaluationError(EdgekitError, ValueError):
    """A dataset or model output that evaluation cannot use (shape, labels, unknown name)."""


class VideoSourceError(EdgekitError, ValueError):
    """A video source URI that cannot be opened (bad scheme, missing file, no camera)."""


class PipelineError(EdgekitError, RuntimeError):
    """A stage raised; ``stage`` and ``frame_index`` say where, the original is ``__cause__``."""

    def __init__(self, message: str, stage: str, frame_index: int | None):
        super().__init__(message)
        self.stage, self.frame_index = stage, frame_index


class FencedCallError(EdgekitError, RuntimeError):
    """A fenced grading call did not return a value.

    ``reason`` is one of ``"timeout"``, ``"cpu"``, ``"memory"``, ``"crashed"``, ``"raised"``,
    ``"reply"`` (the child sent something that is not data) or ``"unsupported"`` (no fork here);
    ``error`` is ``(exception type name, message)`` when the function raised.
    """

    def __init__(self, message: str, reason: str, error: tuple[str, str] | None = None):
        super().__init__(message)
        self.reason, self.error = reason, error


class CgroupError(EdgekitError, RuntimeError):
    """No cgroup to cap a submission's memory and processes: grading refuses to start."""
