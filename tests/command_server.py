"""A warm ``inpaint-kit`` for the documentation tests (tests/test_readme.py): one server process imports torch,
diffusers, transformers and inpaint-kit once, and every ``inpaint-kit ...`` line of an example runs in a fresh
``fork()`` of it, so the examples do not pay those imports (about 8 s a command on a loaded 2-core machine)
forty times over.

The examples call ``inpaint-kit`` through a shim placed first on ``PATH`` (:func:`write_shim`): a stdlib-only
client (``python -S``) that hands the server its argv, working folder, environment and its stdin/stdout/stderr
file descriptors (``SCM_RIGHTS``) and exits with the command's exit code. The forked child takes those
descriptors, folder and environment, sets ``sys.argv`` and runs ``inpaint_kit.cli.main(argv)`` exactly as the
console script does (``SystemExit`` and uncaught exceptions become the exit code, as in a process of its own).
What a child cannot see differently from a new process: modules imported by the server read the environment
at import time from the server's environment (the test's), not from variables a block exports before a
command (no example does). ``python -m inpaint_kit`` (torchrun) and ``python scripts/*.py`` stay real processes.

    python tests/command_server.py serve SOCKET     # the server (the test starts and stops it)
    python -S tests/command_server.py SOCKET ARGS   # one command (what the shim runs)
"""

from __future__ import annotations

import array
import json
import os
import socket
import sys
from pathlib import Path

PRELOAD = ("torch", "diffusers", "transformers", "accelerate", "peft", "inpaint_kit.cli", "inpaint_kit.inpaint",
           "inpaint_kit.outpaint", "inpaint_kit.batch", "inpaint_kit.engine.sd", "inpaint_kit.engine.ddpm",
           "inpaint_kit.engine.controlnet", "inpaint_kit.train.trainer")


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """One request: a JSON object (argv, cwd, env) sent with the client's three standard descriptors."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 20)
        if not more:
            break
        data += more
    return json.loads(data), list(fds)


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """Run one command in this forked process and report its exit code; never returns."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["inpaint-kit", *request["argv"]]
        from inpaint_kit.cli import main

        try:
            code = main(request["argv"])
        except SystemExit as e:  # argparse errors and --help
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if e.code is not None and not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
    except BaseException:  # an uncaught exception: a traceback and exit code 1, as in a process of its own
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()  # what a process of its own runs at exit (writers' flushes, ...)
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(f"{code}\n".encode())
        finally:
            os._exit(0)


def serve(path: str) -> None:
    """Import the heavy modules, then fork one child per request until the socket file is removed."""
    import importlib
    import signal

    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    Path(path + ".ready").touch()
    while True:
        conn, _ = server.accept()
        request, fds = _recv_request(conn)
        if request.get("stop"):
            return
        if os.fork() == 0:
            server.close()
            _child(conn, request, fds)
        conn.close()
        for fd in fds:
            os.close(fd)


def call(path: str, argv: list[str]) -> int:
    """Run ``inpaint-kit argv`` in the server with this process's descriptors, folder and environment."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode() + b"\n"
    conn.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
    reply = b""
    while not reply.endswith(b"\n"):
        more = conn.recv(64)
        if not more:
            return 1  # the child died without a word (killed)
        reply += more
    return int(reply)


def stop(path: str) -> None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    conn.sendmsg([b'{"stop": true}\n'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
    conn.close()


def write_shim(folder: Path, socket_path: str) -> Path:
    """An ``inpaint-kit`` executable in ``folder`` that runs its command in the server at ``socket_path``."""
    shim = folder / "inpaint-kit"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -S {Path(__file__).resolve()} {socket_path} \"$@\"\n")
    shim.chmod(0o755)
    return shim


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        sys.exit(call(sys.argv[1], sys.argv[2:]))
