"""farside's Yamcs extension (the TC link whose COP-1 retransmits a frame as first secured, and
the PUS-1 verifier that keeps early reports):
compiled against the bundle's jars once per folder and source, and a missing compiler is one
line naming the JDK package. That it fixes COP-1 under SDLS is test_server_flight's loss test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil.gs.keys import DEV_KEYS
from hil.yamcs.config import sdls_key_from_setting
from hil.yamcs.extension import LINK_CLASS, STAMP, VERIFIER_CLASS, build, sources
from tests.yamcs.conftest import no_java_env, write_folder

pytestmark = [pytest.mark.yamcs]


def test_the_extension_compiles_once_and_again_only_when_stale(yamcs_tools: None, tmp_path: Path) -> None:
    from hil.yamcs.server import find_java, jar_dir

    assert {p.name for p in sources()} == {"Cop1UdpTcFrameLink.java", "SecureOnceFrameFactory.java",
                                           "Pus1ReportVerifier.java"}
    out = build(tmp_path, find_java(), jar_dir())
    link = out / (LINK_CLASS.replace(".", "/") + ".class")
    assert link.read_bytes()[:4] == b"\xca\xfe\xba\xbe"
    assert (out / "farside" / "yamcs" / "SecureOnceFrameFactory.class").is_file()
    assert (out / (VERIFIER_CLASS.replace(".", "/") + ".class")).is_file()
    stamp = (out / STAMP).read_text()
    os.utime(link, (1, 1))
    assert build(tmp_path, find_java(), jar_dir()) == out and link.stat().st_mtime == 1  # current: not compiled
    (out / STAMP).write_text("stale\n")
    build(tmp_path, find_java(), jar_dir())
    assert link.stat().st_mtime > 1 and (out / STAMP).read_text() == stamp
    assert [p.name for p in out.parent.iterdir()] == ["classes"]  # no build folder left behind


def test_start_of_a_secured_folder_without_a_java_compiler_names_the_jdk_package(
        yamcs_tools: None, tmp_path: Path) -> None:
    key, _ = sdls_key_from_setting(DEV_KEYS)
    write_folder(tmp_path / "yamcs", sdls_key=key)
    # a Java with neither javac beside it nor a jdk.compiler module (like a trimmed runtime)
    home = tmp_path / "jre"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'Error occurred during initialization of boot layer' >&2\n"
                    "echo 'java.lang.module.FindException: Module jdk.compiler not found' >&2\nexit 1\n")
    java.chmod(0o755)
    env = no_java_env()
    env["JAVA_HOME"] = str(home)
    r = subprocess.run([sys.executable, "-m", "hil.cli", "yamcs", "start", str(tmp_path / "yamcs")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("farside: error: "), r.stderr
    assert "needs a Java compiler" in lines[0] and "openjdk-17-jdk-headless" in lines[0]
    assert not (tmp_path / "yamcs" / "yamcs.log").exists()  # Yamcs was never started
