"""Write ``imagenet_labels.txt``: the 1,000 ImageNet-1k class names, one per line, in class order.

What: line ``i`` is the WordNet lemma list of class ``i`` (``tabby, tabby cat`` for 281), the
order every ImageNet-1k classifier in the zoo uses (the synsets sorted by WordNet id).

Why from timm: its wheel ships the two tables as plain text files (Apache-2.0), so the names can
be read without importing timm (which would need torch and torchvision). The wheel is only
unzipped. The file is committed, so this script only runs when the names need re-deriving.

    python models/build/imagenet_labels.py --out models/imagenet_labels.txt [--wheel W]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

TIMM = "timm==1.0.31"
INFO = "timm/data/_info/"


def download(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", TIMM, "--no-deps", "-d", str(tmp), "-q"]
    if subprocess.run(cmd, stdout=sys.stderr).returncode != 0:
        print(f"could not download {TIMM}: pip download {TIMM} --no-deps, then pass --wheel PATH",
              file=sys.stderr)
        sys.exit(3)
    return next(tmp.glob("timm-*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="where to write the labels file")
    parser.add_argument("--wheel", type=Path, help=f"a downloaded {TIMM} wheel")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:  # a wheel is a zip file
            synsets = zf.read(INFO + "imagenet_synsets.txt").decode().split()
            table = zf.read(INFO + "imagenet_synset_to_lemma.txt").decode().splitlines()

    # table lines look like "n02123045<TAB>tabby, tabby cat" and cover all 21k synsets
    lemma = dict(line.split("\t", 1) for line in table)
    names = [lemma[s] for s in synsets]
    assert len(names) == 1000 and names[281] == "tabby, tabby cat", "unexpected timm tables"

    data = ("\n".join(names) + "\n").encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}))


if __name__ == "__main__":
    main()
