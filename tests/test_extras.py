"""Optional extras name the exact pip command when missing; import edgekit stays lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edgekit as ek
from edgekit._extras import require


def test_missing_extra_is_one_line_with_pip_command():
    with pytest.raises(ek.MissingExtraError) as info:
        require("definitely_not_installed_module", extra="lab", purpose="plots")
    msg = str(info.value)
    assert "pip install 'edgekit[lab]'" in msg and "plots" in msg and "\n" not in msg
    assert isinstance(info.value, ImportError)


def test_import_edgekit_imports_no_heavy_module():
    code = "import sys, edgekit; print(sorted(m for m in ('onnxruntime','numpy','cv2','onnx','rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import edgekit pulled in {out}"


def test_public_api_is_explicit():
    assert "load" in ek.__all__ and "Model" in ek.__all__ and "EdgekitError" in ek.__all__
    for name in ek.__all__:
        assert getattr(ek, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ek.nope
