"""What is inside an ONNX model: ``Model.info()`` and ``edgekit info MODEL``.

Graph facts come from the ``onnx`` package (the file as exported), not from the optimized
graph ONNX Runtime runs — see the optimization tools for that.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ModelInfo:
    """Facts about one ONNX file; ``str()`` gives a plain table, ``table()`` a rich one."""

    name: str
    path: str | None
    file_bytes: int | None
    ir_version: int
    opsets: dict[str, int]
    producer: str
    parameters: int
    nodes: int
    op_histogram: dict[str, int]
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def rows(self) -> list[tuple[str, str]]:
        ops = ", ".join(f"{op} x{n}" for op, n in self.op_histogram.items())
        size = f"{self.file_bytes / 1e6:.2f} MB" if self.file_bytes is not None else "in memory"
        return [
            ("model", self.name), ("file", f"{self.path} ({size})"),
            ("producer", self.producer or "-"), ("IR version", str(self.ir_version)),
            ("opsets", ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in self.opsets.items())),
            ("parameters", f"{self.parameters:,}"), ("nodes", str(self.nodes)), ("ops", ops),
            ("inputs", "; ".join(self.inputs)), ("outputs", "; ".join(self.outputs)),
            ("providers", ", ".join(self.providers)),
        ]

    def table(self):
        from rich.table import Table

        table = Table(title=f"edgekit info: {self.name}", show_header=False)
        for key, value in self.rows():
            table.add_row(key, value)
        return table

    def __str__(self) -> str:
        return "\n".join(f"{key:<11} {value}" for key, value in self.rows())


def model_info(model) -> ModelInfo:
    """Build :class:`ModelInfo` for a loaded :class:`~edgekit.Model`."""
    import onnx

    path = model.path
    proto = onnx.load(str(path), load_external_data=False)
    graph = proto.graph
    params = sum(int(np.prod(init.dims)) for init in graph.initializer)
    # Constant nodes carry weights too in some exporters.
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.t is not None and attr.t.dims:
                    params += int(np.prod(attr.t.dims))
    hist = collections.Counter(node.op_type for node in graph.node)
    return ModelInfo(
        name=model.name,
        path=str(path),
        file_bytes=Path(path).stat().st_size,
        ir_version=proto.ir_version,
        opsets={imp.domain: imp.version for imp in proto.opset_import},
        producer=f"{proto.producer_name} {proto.producer_version}".strip(),
        parameters=params,
        nodes=len(graph.node),
        op_histogram=dict(hist.most_common()),
        inputs=[f"{s.name}: {s}" for s in model.inputs],
        outputs=[f"{s.name}: {s}" for s in model.outputs],
        providers=model.providers,
    )
