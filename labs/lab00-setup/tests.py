"""Tests of Lab 0. Everything is graded on recorded files and bundled models, never on the student's machine."""

from pathlib import Path

import numpy as np

from edgekit.runtime.datasets import digits
from edgekit.grading import call, case, equal, obj

HERE = Path(__file__).parent


def cpuinfo(device):
    return (HERE / f"lab00-{device}.cpuinfo").read_text()


def block(n, **fields):
    return "\n".join([f"processor\t: {n}"] + [f"{k.replace('_', ' ')}\t: {v}" for k, v in fields.items()])


# A two-socket server: 2 packages x 2 cores x 2 hyper-threads. core id restarts in each package,
# so counting distinct core ids alone gives 2, not 4.
server = "\n\n".join(block(n, physical_id=n // 4, core_id=n % 2, flags="fpu sse2 avx avx2 fma")
                     for n in range(8)) + "\n"
# big.LITTLE: the big cores have dotprod and i8mm, the little ones do not.
big_little = "\n\n".join(block(n, Features="fp asimd asimdhp" + (" asimddp i8mm" if n >= 4 else ""),
                               CPU_part="0xd46" if n < 4 else "0xd47") for n in range(6)) + "\n\nHardware\t: test\n"
# An old 32-bit ARM core: no feature edgekit knows.
old_arm = block(0, Features="half thumb fastmult vfp edsp vfpv3 tls", CPU_architecture=7) + "\n"

case("q1", "Raspberry Pi 4", call("count_cores", cpuinfo("rpi4")), equal(), public=True)
case("q1", "Intel laptop with hyper-threading", call("count_cores", cpuinfo("x86-laptop")), equal(), weight=2)
case("q1", "Snapdragon X Elite", call("count_cores", cpuinfo("snapdragon")), equal())
case("q1", "two-socket server (core id restarts per socket)", call("count_cores", server), equal(), weight=2)

case("q2", "Raspberry Pi 5", call("isa_features", cpuinfo("rpi5")), equal(), public=True)
case("q2", "Raspberry Pi 4: neon only", call("isa_features", cpuinfo("rpi4")), equal())
case("q2", "Intel laptop (x86 'flags')", call("isa_features", cpuinfo("x86-laptop")), equal(), weight=2)
case("q2", "Snapdragon X Elite (fphp and asimdhp are both fp16)", call("isa_features", cpuinfo("snapdragon")), equal())
case("q2", "big.LITTLE: features of all cores", call("isa_features", big_little), equal(), weight=2)
case("q2", "no known feature (and the Raspberry Pi 5's, so that an empty answer cannot pass)",
     lambda ns: [ns.isa_features(old_arm), ns.isa_features(cpuinfo("rpi5"))], equal())

STD = ["AzureExecutionProvider", "CPUExecutionProvider"]
GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
QNN = ["QNNExecutionProvider", "CPUExecutionProvider"]
MAC = ["CoreMLExecutionProvider", "AzureExecutionProvider", "CPUExecutionProvider"]
case("q3", "short names on the standard wheel", call("choose_providers", ["cuda", "cpu"], STD), equal(), public=True)
case("q3", "Jetson: all three, in order", call("choose_providers", ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                                                  "CPUExecutionProvider"], GPU), equal())
case("q3", "CPU added when missing", call("choose_providers", ["CUDAExecutionProvider"], GPU), equal(), weight=2)
case("q3", "mixed short names, upper case", call("choose_providers", ["QNN", "CoreML", "CPU"], QNN), equal())
case("q3", "duplicates kept once", call("choose_providers", ["cuda", "CUDAExecutionProvider", "cpu", "cuda"], GPU),
     equal())
case("q3", "CPU first stays first", call("choose_providers", ["cpu", "coreml"], MAC), equal())
case("q3", "nothing preferred", call("choose_providers", [], STD), equal())

x, y = digits(split="test")
counts = np.rint(x[:, 0] * 16).astype(np.int64)  # the scanner's 0..16 counts
digits_cnn, face = obj("edgekit:load", "digits-cnn"), obj("edgekit:load", "face-detector")
case("q4", "inputs and outputs of digits-cnn", call("io_names", digits_cnn), equal(), public=True)
case("q4", "inputs and outputs of face-detector (two outputs)", call("io_names", face), equal())
case("q4", "test digit 3 (a 3)", call("predict_digit", digits_cnn, counts[3]), equal(), public=True)
case("q4", "the first two test digits (a 0 and a 1)",
     lambda ns: [ns.predict_digit(ns.ek.load("digits-cnn"), counts[i]) for i in (0, 1)], equal())
for i in (7, 42, 228):
    case("q4", f"test digit {i}" + (" (the model is wrong on this one)" if i == 228 else ""), call("predict_digit", digits_cnn, counts[i]), equal())
case("q4", "counts as uint8", call("predict_digit", digits_cnn, counts[42].astype(np.uint8)), equal())
