"""``edgekit live`` (registered by :mod:`edgekit.cli.main`): the command line of :mod:`edgekit.vision.live`."""

from __future__ import annotations

import sys

DEFAULT_OUT = "edgekit-live.mp4"  # where the annotated video goes when there is no window


def cmd_live(args) -> int:
    from ..vision import live  # here, not at the top: `edgekit --help` must not import numpy and OpenCV

    live.stages_for(args.model)  # a model live cannot run fails here, before the notice below
    shown, why = live.has_display()
    show = shown and not args.no_window
    out = args.out or (None if show else DEFAULT_OUT)
    if not show:
        print(f"no window ({why if not shown else '--no-window'}): writing the annotated video to {out}",
              file=sys.stderr)
    from ..perf.verdict import sensors_note, verdict, watch

    with watch() as w:  # the frame timings get the same clean/suspect word as a benchmark
        res = live.run_live(args.model, args.source, out=out, show=show, max_frames=args.max_frames,
                            drop_frames=False if args.no_drop else None, threads=args.threads,
                            mode="sequential" if args.sequential else args.mode, pin_cores=args.pin_cores)
    print(f"{res.pipeline}  [{verdict(w.suspect)}]")
    if sensors_note(w.suspect):
        print(sensors_note(w.suspect))
    print(f"{res.detected_frames}/{res.pipeline.frames} frames with a detection (pre-processing: {res.backend})")
    if res.out:
        print(f"wrote {res.out}")
    return 0


def register(sub) -> None:
    """Add ``edgekit live`` to an argparse subparsers object (called by :mod:`edgekit.cli.main`)."""
    s = sub.add_parser("live", help="a zoo model on a camera, video file, image folder or synthetic stream")
    s.add_argument("model", help="zoo model name, e.g. face-detector")
    s.add_argument("--source", default="camera://0",
                   help="camera://0, file://clip.mp4 (or a path), folder://DIR, synthetic://?frames=300&size=640x480")
    s.add_argument("--out", help="write the annotated video here (.mp4/.avi); the default without a display: "
                   + DEFAULT_OUT)
    s.add_argument("--max-frames", type=int, help="stop after this many frames read")
    s.add_argument("--no-drop", action="store_true", help="never drop frames, even from a live source (may lag)")
    s.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    s.add_argument("--mode", choices=["overlap", "pipelined", "sequential"], default="overlap",
                   help="overlap (default): the model in a thread of its own, the other stages in the main one; "
                        "pipelined: a thread per stage; sequential: no overlap, to compare")
    s.add_argument("--sequential", action="store_true", help="the same as --mode sequential")
    s.add_argument("--pin-cores", action="store_true", help="Linux: a CPU of its own for the model's thread")
    s.add_argument("--no-window", action="store_true", help="do not open a window even if a display exists")
    s.set_defaults(func=cmd_live)
