"""farside's Yamcs extension: a TC frame link whose COP-1 retransmits a frame as first secured,
and a PUS-1 verifier that does not miss a report which arrives before the command's sequence count.

Yamcs 5.12.8's COP-1 (`Cop1TcPacketHandler.getFrame`) encodes every frame it takes off its out
queue, and a retransmission queues the same frame object again: with SDLS on the virtual channel
the data field, already encrypted under the first ARSN, is encrypted once more under a new one,
and the rover's FARM-1 accepts a frame that opens to ciphertext. `farside.yamcs.Cop1UdpTcFrameLink`
(Java source in hil/yamcs/java) is Yamcs's `UdpTcFrameLink` with a frame factory on each COP-1
virtual channel that encodes a frame once and gives a retransmission its first octets, as FOP-1
(CCSDS 232.1-B-2) retransmits.

`farside.yamcs.Pus1ReportVerifier` is Yamcs's `Pus1Verifier` that remembers its stage's recent
reports: the stock one compares only the latest report with the sequence count the PUS
postprocessor assigned, which reaches it through the command history on another thread; when a
busy server delivers the report first, the stage misses it and completion cancels it. It also
reads its report inputs from the packet being processed, as Yamcs now and then runs a verifier
on a report with the previous report's inputs.

It is compiled against the bundle's jars into DIR/ext/classes the first time Yamcs starts on a
folder that uses it (every folder farside writes, since its MDB names the verifier), and again
only when the source or the Yamcs jars change. The compiler is `javac` ($JAVA_HOME/bin, next to
the java that runs Yamcs, else on PATH; Debian: openjdk-17-jdk-headless), else the runtime's own
jdk.compiler module (Debian's JRE has it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hil.errors import FarsideError

LINK_CLASS = "farside.yamcs.Cop1UdpTcFrameLink"
VERIFIER_CLASS = "farside.yamcs.Pus1ReportVerifier"
STOCK_VERIFIER = "org.yamcs.pus.Pus1Verifier"  # the Yamcs class it extends, for an MDB any Yamcs runs
JDK_PACKAGE = "openjdk-17-jdk-headless"
SOURCE_DIR = Path(__file__).resolve().parent / "java"
EXT_DIR = "ext"
STAMP = "farside-ext.sha256"


def sources() -> list[Path]:
    return sorted(SOURCE_DIR.rglob("*.java"))


def classes_dir(folder: Path | str) -> Path:
    return Path(folder).resolve() / EXT_DIR / "classes"


def find_compiler(java: str, env: dict[str, str] | None = None) -> list[str]:
    """The command that compiles Java: javac from $JAVA_HOME, next to `java`, or on PATH; else
    `java -m jdk.compiler/...` (whether that module exists shows when it runs)."""
    env = dict(os.environ if env is None else env)
    candidates = [Path(env["JAVA_HOME"]) / "bin" / "javac"] if env.get("JAVA_HOME") else []
    candidates.append(Path(java).resolve().parent / "javac")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return [str(c)]
    found = shutil.which("javac", path=env.get("PATH", ""))
    if found:
        return [found]
    return [java, "-m", "jdk.compiler/com.sun.tools.javac.Main"]


def _digest(lib: Path) -> str:
    h = hashlib.sha256()
    for src in sources():
        h.update(src.relative_to(SOURCE_DIR).as_posix().encode() + b"\0" + src.read_bytes() + b"\0")
    for jar in sorted(lib.glob("yamcs-*.jar")):
        h.update(jar.name.encode() + b"\0")
    return h.hexdigest()


def build(folder: Path | str, java: str, lib: Path, env: dict[str, str] | None = None) -> Path:
    """The compiled extension for `folder` (DIR/ext/classes), compiled now unless it is current.
    FarsideError, one line, when there is no compiler or the source does not compile."""
    out = classes_dir(folder)
    digest = _digest(lib)
    stamp = out / STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return out
    compiler = find_compiler(java, env)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=out.parent))
    except OSError as exc:
        raise FarsideError(f"{out.parent}: cannot write farside's Yamcs extension: {exc.strerror or exc}") from None
    try:
        cmd = [*compiler, "-d", str(work), "-cp", f"{lib}/*", "--release", "17", "-nowarn",
               *map(str, sources())]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FarsideError(f"cannot run {compiler[0]} for farside's Yamcs extension: {exc}") from None
        text = (r.stdout + r.stderr).strip()
        if r.returncode != 0:
            if len(compiler) > 1 and "jdk.compiler" in text:
                raise FarsideError(f"farside's Yamcs link extension needs a Java compiler: no javac next to {java} "
                                   f"or on PATH, and that Java has no jdk.compiler module (install Debian's {JDK_PACKAGE})")
            first = next((ln for ln in text.splitlines() if "error" in ln.lower()), text.splitlines()[0] if text else "")
            raise FarsideError(f"cannot compile farside's Yamcs extension with {compiler[0]}: {first.strip()[:300]}")
        (work / STAMP).write_text(digest + "\n")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
