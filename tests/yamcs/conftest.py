"""Yamcs fixtures: Java and the jars (skip without them, fail under CI), a configuration
folder, and one Yamcs per test module (it takes seconds to start)."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.commands.yamcs import event_decoding, mdb_xml
from hil.errors import FarsideError
from hil.yamcs.config import YamcsSetup, write_config
from tests.conftest import need


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], Any], timeout_s: float = 30.0) -> bool:
    """Whether `cond()` holds within `timeout_s` (polled every 50 ms)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())




@pytest.fixture(scope="session")
def yamcs_tools() -> None:
    """Java and the Yamcs jars, or skip (fail under CI)."""
    from hil.yamcs.server import find_java, jar_dir

    try:
        find_java()
        jar_dir()
    except FarsideError as exc:
        need(False, str(exc))


def write_folder(folder: Path, **kw: object) -> YamcsSetup:
    kw.setdefault("http_port", free_port())
    kw.setdefault("tm_port", free_port(socket.SOCK_DGRAM))
    kw.setdefault("tc_port", free_port(socket.SOCK_DGRAM))
    setup = YamcsSetup.from_dictionary(**kw)  # type: ignore[arg-type]
    write_config(folder, setup, mdb_xml(), event_decoding())
    return setup


@pytest.fixture
def yamcs_folder(tmp_path: Path) -> Path:
    """A written configuration on free ports, not started."""
    write_folder(tmp_path / "yamcs")
    return tmp_path / "yamcs"


def no_java_env() -> dict[str, str]:
    """This environment with no Java reachable: PATH without any java, no JAVA_HOME."""
    env = dict(os.environ)
    env.pop("JAVA_HOME", None)
    java = shutil.which("java")
    dirs = [d for d in env.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "java").exists() and (java is None or Path(d) != Path(java).parent)]
    env["PATH"] = os.pathsep.join(dirs)
    return env


@pytest.fixture(scope="module")
def yamcs_server(yamcs_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One Yamcs for the module, on a configuration in a temporary folder."""
    from hil.yamcs.server import YamcsServer

    folder = tmp_path_factory.mktemp("yamcs")
    write_folder(folder)
    server = YamcsServer(folder)
    server.start()
    try:
        server.wait_ready(120)
        yield server
    finally:
        server.stop()


SDLS_CHECK = Path(__file__).resolve().parent / "SdlsCheck.java"


def yamcs_sdls(requests: list[str]) -> list[str]:
    """Answers of Yamcs's own AES-256-GCM security association to `requests` (see
    SdlsCheck.java), run by Java from the Yamcs jars in its own process."""
    import subprocess

    from hil.yamcs.server import find_java, jar_dir

    r = subprocess.run([find_java(), "-cp", f"{jar_dir()}/*", str(SDLS_CHECK)], input="\n".join(requests) + "\n",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.split("\n")[: len(requests)]
