"""Yamcs as its own process: Java found, the jars found, ports checked, started, awaited, stopped.

Yamcs is AGPL; farside never imports it. It runs as

    java -cp "<fprime_yamcs_bundle.LIB_DIR>/*" org.yamcs.YamcsServer --etc-dir DIR/etc

with the configuration `hil.yamcs.config.write_config` wrote, its log in DIR/yamcs.log; a folder
that names farside's classes (the MDB's PUS-1 verifier; the TC link when secured) adds them
(hil.yamcs.extension, compiled into DIR/ext on first start) to the class path.
Java comes from $JAVA_HOME/bin/java, else `java` on PATH (Debian: openjdk-17-jre-headless).

    server = YamcsServer(folder)      # checks Java, the jars and the ports: FarsideError if not
    server.start(); server.wait_ready(timeout_s=60)   # the instance RUNNING on the HTTP API
    ...
    server.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.yamcs.config import read_summary
from hil.yamcs.extension import build as build_extension
from hil.yamcs.extension import classes_dir

JAVA_PACKAGE = "openjdk-17-jre-headless"
MAIN_CLASS = "org.yamcs.YamcsServer"
LOG_FILE = "yamcs.log"


def find_java(env: dict[str, str] | None = None) -> str:
    """The java executable: $JAVA_HOME/bin/java, else `java` on PATH; FarsideError naming the
    package to install when there is none."""
    env = dict(os.environ if env is None else env)
    home = env.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java", path=env.get("PATH", ""))
    if found:
        return found
    raise FarsideError(f"Yamcs needs Java 17 or newer: no java on PATH or in $JAVA_HOME "
                       f"(install Debian's {JAVA_PACKAGE})")


def jar_dir() -> Path:
    """The folder of Yamcs jars from the fprime-yamcs-bundle package."""
    try:
        import fprime_yamcs_bundle
    except ImportError:
        raise FarsideError("the Yamcs jars are missing: pip install 'farside[yamcs]' (fprime-yamcs-bundle)") from None
    lib = Path(fprime_yamcs_bundle.LIB_DIR)
    if not any(lib.glob("yamcs-core-*.jar")):
        raise FarsideError(f"{lib}: no yamcs-core jar there (reinstall fprime-yamcs-bundle)")
    return lib


def check_port(port: int, kind: int = socket.SOCK_STREAM, what: str = "HTTP") -> None:
    """FarsideError if `port` on this host is taken (TCP for HTTP, UDP for the TM link)."""
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            proto = "TCP" if kind == socket.SOCK_STREAM else "UDP"
            raise FarsideError(f"Yamcs's {what} port {port} ({proto}) is busy: stop what holds it, "
                               f"or choose another with farside yamcs init --{what.lower()}-port") from None


class YamcsServer:
    """One Yamcs process on a folder that `farside yamcs init` wrote."""

    def __init__(self, folder: Path | str, env: dict[str, str] | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.summary = read_summary(self.folder)
        self.instance: str = self.summary["instance"]
        self.http_port: int = int(self.summary["http_port"])
        self.env = env
        self.java = find_java(env)
        self.lib = jar_dir()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_s: float | None = None
        self.build_s = 0.0  # seconds start() spent compiling farside's extension (0 when cached)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_FILE

    def command(self) -> list[str]:
        cp = f"{self.lib}/*"
        if self.summary.get("extension"):
            cp += f"{os.pathsep}{classes_dir(self.folder)}"
        return [self.java, "-cp", cp, MAIN_CLASS, "--etc-dir", str(self.folder / "etc")]

    def start(self) -> None:
        """Check the ports, then start Yamcs in the background (see wait_ready)."""
        check_port(self.http_port)
        check_port(int(self.summary["tm_port"]), socket.SOCK_DGRAM, "TM")
        if self.summary.get("extension"):
            t0 = time.monotonic()
            build_extension(self.folder, self.java, self.lib, self.env)
            self.build_s = time.monotonic() - t0
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise FarsideError(f"cannot start Yamcs with {self.java}: {exc.strerror or exc}") from None
        finally:
            log.close()
        self.started_at = time.monotonic()

    def api(self, path: str, timeout_s: float = 5.0) -> Any:
        """GET /api<path> as JSON."""
        with urllib.request.urlopen(f"{self.url}/api{path}", timeout=timeout_s) as r:
            return json.loads(r.read())

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no log"
        severe = [ln for ln in lines if "SEVERE" in ln or "Exception" in ln or "Error" in ln]
        return (severe or lines or ["no log"])[-1].strip()[:300]

    def wait_ready(self, timeout_s: float = 90.0) -> float:
        """Wait until the instance is RUNNING; returns the seconds since start(). FarsideError
        (with the log's last error line) if Yamcs exits or the time runs out."""
        if self.proc is None:
            raise FarsideError("Yamcs was not started")
        deadline = self.started_at + timeout_s
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise FarsideError(f"Yamcs exited with code {code}: {self._log_tail()} (log: {self.log_path})")
            with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
                if self.api(f"/instances/{self.instance}", 2.0).get("state") == "RUNNING":
                    self.ready_s = time.monotonic() - self.started_at
                    return self.ready_s
            time.sleep(0.2)
        self.stop()
        raise FarsideError(f"Yamcs did not come up within {timeout_s:g} s: {self._log_tail()} (log: {self.log_path})")

    def stop(self, timeout_s: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> YamcsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
