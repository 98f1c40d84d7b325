"""Images and video: loading, preprocessing recipes, detection decoding, video sources, pipelines.

The everyday calls are here as well (``from edgekit import vision; vision.run("face-detector", photo)``):
:func:`~edgekit.vision.preprocessing.preprocess`, :func:`~edgekit.vision.preprocessing.run` and the
image operations; the modules hold the rest (``detect``, ``video``, ``pipeline``, ``live``).
"""

from .preprocessing import *  # noqa: F401,F403 (its __all__: preprocess, run, softmax, topk, letterbox...)
from .preprocessing import __all__  # noqa: F401
