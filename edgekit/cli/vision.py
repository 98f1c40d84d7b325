"""``edgekit run MODEL IMAGE``: one photo through a zoo model, pre- and post-processing included
(registered by :mod:`edgekit.cli.main`).

    edgekit run efficientnet-lite0 photo.jpg --top 5
    edgekit run face-detector group.jpg --out annotated.jpg --json
    edgekit run my-int8.onnx photo.jpg --like efficientnet-lite0
"""

from __future__ import annotations

import json

from .._errors import ConfigError


def cmd_run(args) -> int:
    import cv2

    from ..vision import preprocessing as vision
    from ..vision.image import load_image

    photo = load_image(args.image, "rgb")
    result = vision.run(args.model, photo, top=args.top, min_score=args.min_score, like=args.like)
    if args.out:
        # OpenCV draws and writes BGR; the photo was loaded as RGB for the model.
        annotated = result.draw(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), inplace=True)
        try:
            written = cv2.imwrite(args.out, annotated)
        except cv2.error:  # raised for an extension OpenCV has no writer for
            written = False
        if not written:
            raise ConfigError(f"edgekit run: could not write {args.out!r}; use a .jpg or .png name in an existing folder")
    if args.json:
        print(json.dumps({**result.to_dict(), "image": str(args.image),
                          **({"annotated": args.out} if args.out else {})}, indent=1))
    else:
        print(result)
        if args.out:
            print(f"wrote {args.out}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("run", help="classify or detect on one image with a zoo model (pre/post-processing included)")
    s.add_argument("model", help="zoo name (efficientnet-lite0, face-detector, digits-cnn) or .onnx path with --like")
    s.add_argument("image", help="image file (.jpg, .png, ...)")
    s.add_argument("--top", type=int, default=5, help="classification: how many classes to show (default 5)")
    s.add_argument("--min-score", type=float, help="detection: lowest score kept (default: the manifest's)")
    s.add_argument("--like", metavar="ZOO_NAME", help="a .onnx file: use this zoo model's pre/post-processing")
    s.add_argument("--out", help="write the image with the result drawn on it (.jpg or .png)")
    s.add_argument("--json", action="store_true", help="print the result as JSON (schema edgekit.vision/1)")
    s.set_defaults(func=cmd_run)
