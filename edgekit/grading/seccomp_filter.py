"""A seccomp filter for student code, written as classic BPF by hand (x86_64 and aarch64).

Why by hand: libseccomp's Python bindings are not on PyPI (Debian's ``python3-seccomp`` serves
the system Python only), and the filter is short: a list of syscalls that answer ``EPERM``.
Denied calls fail with an ``OSError`` in the student's code — never a kill, so the notebook
goes on and the case fails with a message.

Denied: the kernel keyring (``keyctl``, ``add_key``, ``request_key``); looking into other
processes (``ptrace``, ``process_vm_readv/writev``); mounts of every API generation, ``chroot``
and ``pivot_root``; new namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*``
flag; ``clone3``, whose flags a filter cannot read, answers ``ENOSYS`` so glibc falls back to
``clone``); raw I/O ports (``iopl``, ``ioperm``); ``bpf``, ``perf_event_open``,
``userfaultfd``; ``io_uring`` (its requests bypass seccomp); kernel modules and ``kexec``;
file handles (``open_by_handle_at`` walks around mounts). A call through another ABI (i386
``int 0x80``, x32) is denied whole. Seccomp cannot read the path of an AF_UNIX ``connect``:
host sockets are out of reach because the fence's root has none (see :mod:`.sandbox`).

>>> len(program("x86_64")) > 40
True
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# syscall numbers: (x86_64, aarch64); None where the architecture has no such call
DENIED = {
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "unshare": (272, 97), "setns": (308, 268),
    "iopl": (172, None), "ioperm": (173, None),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
}
CLONE, CLONE3 = (56, 220), (435, 435)
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
X32_BIT = 0x40000000

_LD_W_ABS, _JEQ, _JSET, _JGE, _RET = 0x20, 0x15, 0x45, 0x35, 0x06
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


def machine() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions; jumps count instructions skipped."""
    col = 0 if arch == "x86_64" else 1
    denied = sorted({v[col] for v in DENIED.values() if v[col] is not None})
    head = [(_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
            (_JEQ, 1, 0, AUDIT_ARCH[arch]),
            (_RET, 0, 0, RET_ERRNO | errno.EPERM),  # another ABI: nothing allowed
            (_LD_W_ABS, 0, 0, 0)]  # seccomp_data.nr
    body: list[tuple[str, int, int]] = []  # (where to jump, op, k), resolved below
    if arch == "x86_64":
        body.append(("eperm", _JGE, X32_BIT))
    body += [("eperm", _JEQ, nr) for nr in denied]
    body += [("enosys", _JEQ, CLONE3[col]), ("clone", _JEQ, CLONE[col])]
    tail_start = len(head) + len(body) + 1  # after the "allow" that ends the scan
    tail = {"clone": tail_start, "eperm": tail_start + 3, "enosys": tail_start + 4}
    prog = list(head)
    for target, op, k in body:
        here = len(prog)
        prog.append((op, tail[target] - here - 1, 0, k))
    prog.append((_RET, 0, 0, RET_ALLOW))
    prog += [(_LD_W_ABS, 0, 0, 16),  # clone: the low word of args[0], the flags
             (_JSET, 1, 0, CLONE_NEW),
             (_RET, 0, 0, RET_ALLOW),
             (_RET, 0, 0, RET_ERRNO | errno.EPERM),
             (_RET, 0, 0, RET_ERRNO | errno.ENOSYS)]
    assert all(0 <= jt < 256 for _, jt, _, _ in prog)
    return prog


def install() -> str:
    """Install the filter on this process (and every child it starts); returns "" or why not.

    Needs ``no_new_privs`` (set by :func:`sandbox.drop_capabilities`) or CAP_SYS_ADMIN.
    """
    arch = machine()
    if arch not in AUDIT_ARCH:
        return f"no seccomp filter for {arch} (x86_64 and aarch64 only)"
    prog = program(arch)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"seccomp: {errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}"
    return ""
