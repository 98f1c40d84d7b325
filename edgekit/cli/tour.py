"""``edgekit tour``: the first five minutes with edgekit, on bundled models and images only.

1. device check (what this machine is, which execution providers ONNX Runtime offers),
2. inference: digits-cnn on the bundled handwritten digits with top-k output, and, when it has
   been built, EfficientNet-Lite0 on the bundled photos,
3. a short benchmark at 1 and 2 threads (digits-cnn and the MobileNetV2-shaped model),
4. a saved plot and a JSON file of everything measured.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..runtime import datasets

from ..runtime import zoo
from .._errors import MissingExtraError
from .._extras import require
from ..runtime.model import load
from ..vision.preprocessing import preprocess, softmax, topk


def tour(out: Path, quick: bool = False) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    record: dict = {}

    console.rule("[bold]1. Device check")
    from ..runtime.device import device_info

    info = device_info()
    console.print(str(info))
    record["device"] = info.to_dict()

    console.rule("[bold]2. Inference on bundled data")
    m = load("digits-cnn", providers="cpu")
    console.print(escape(repr(m)))  # escape: rich would read "[batch,1,8,8]" as markup
    console.print(f"[dim]provider choice: {escape(m.provider_choice.reason)}[/]")
    x, y = datasets.digits(split="test")
    probs = softmax(m(x)[0])
    acc = float((probs.argmax(1) == y).mean())
    labels = zoo.labels("digits-cnn")
    table = Table(title=f"digits-cnn: top-3 on the first test digits (accuracy on all {len(y)}: {acc:.1%})")
    for col in ("#", "true", "top-3 (probability)"):
        table.add_column(col)
    for i in range(5):
        table.add_row(str(i), str(y[i]), ", ".join(f"{c} ({p:.2f})" for c, p in topk(probs[i], labels, k=3)))
    console.print(table)
    record["digits_accuracy"] = acc

    if zoo.location("efficientnet-lite0").is_file():
        net = load("efficientnet-lite0", providers="cpu")
        pre, names = zoo.entry("efficientnet-lite0").preprocess, zoo.labels("efficientnet-lite0")
        table = Table(title="EfficientNet-Lite0 (ImageNet) on bundled photos: top-3")
        table.add_column("image")
        table.add_column("top-3 (probability)")
        for image in ("chelsea", "coffee", "rocket"):
            p = softmax(net(preprocess(datasets.sample_image(image, color="rgb"), pre).input)[0][0])
            top = topk(p, names, k=3)
            table.add_row(image, ", ".join(f"{c} ({q:.2f})" for c, q in top))
            record.setdefault("imagenet", {})[image] = top
        console.print(table)
    else:
        console.print(f"[dim]EfficientNet-Lite0 is built on demand; to classify the bundled photos: "
                      f"{zoo.entry('efficientnet-lite0').build_command()}[/]")

    console.rule("[bold]3. A short benchmark")
    from ..perf.bench import benchmark

    budget = dict(min_runs=20, min_s=0.2, warmup_s=0.1, max_s=2) if quick else dict(min_runs=50, min_s=1.0, max_s=4)
    rows = []
    for name in ("digits-cnn", "mobilenetv2-224"):
        if not zoo.location(name).is_file():
            console.print(f"[dim]building {name} from code (onnx.helper, deterministic weights)...[/]")
        for threads in (1, 2):
            r = benchmark(name, threads=threads, **budget)
            rows.append(r)
            console.print(escape(f"threads={threads}  {r}"), soft_wrap=True)  # one line: timing and its word together
    from ..perf.verdict import sensors_note

    if sensors_note(rows):
        console.print(escape(sensors_note(rows)), style="dim")
    record["benchmarks"] = [r.to_dict() for r in rows]
    (out / "tour.json").write_text(json.dumps(record, indent=1, default=str))

    console.rule("[bold]4. A plot")
    try:
        plot = _plot(rows, out / "tour.png")
        console.print(f"saved {plot} and {out / 'tour.json'}")
    except MissingExtraError as exc:
        console.print(f"[yellow]no plot: {exc}[/] (results are in {out / 'tour.json'})")
    console.print("\nNext: [bold]edgekit doctor[/], [bold]edgekit bench digits-cnn --threads 1,2[/], "
                  "[bold]jupyter lab notebooks/[/]")
    return 0


def _plot(results, path: Path) -> Path:
    require("matplotlib", extra="lab", purpose="the tour's plot")
    import matplotlib

    matplotlib.use("Agg")  # no display needed: we only write a PNG
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len({r.model for r in results}), figsize=(10, 3.8))
    for ax, model in zip(np.atleast_1d(axes), dict.fromkeys(r.model for r in results)):
        runs = [r for r in results if r.model == model]
        # Shared bins up to the largest p99: rare slow outliers would squash the histogram flat.
        lo = min(r.latency_ms["min"] for r in runs)
        hi = max(r.latency_ms["p99"] for r in runs)
        bins = np.linspace(lo, hi, 50)
        for r in runs:
            ax.hist(np.clip(r.samples_ms, lo, hi), bins=bins, alpha=0.6,
                    label=f"{r.config.threads} thread(s): p50 {r.latency_ms['p50']:.3g} ms")
        ax.set_title(f"{model} (slowest 1% clipped to p99)")
        ax.set_xlabel("latency per inference (ms)")
        ax.set_ylabel("runs")
        ax.legend()
    fig.suptitle(f"edgekit tour — latency histograms ({time.strftime('%Y-%m-%d')})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
