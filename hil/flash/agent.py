"""The code the flash tool runs on the board, defined once per raw-REPL session.

The functions live in the REPL's globals under the `_fa_` prefix. Paths are relative
to the filesystem root (FARSIDE_ROOT from boot.py, else the current directory), so
the same calls work on a Pico (root `/`) and on a virtual board (its flash folder).
Hashes are SHA-256 computed on the board in 1 KB chunks through a preallocated buffer.
The survey lists the rover's own state files (bootfiles.ROVER_STATE_FILES) without a
hash ("-"): they are not firmware. Its header says what the firmware froze of farside
(`firmware_py._frozen`, imported with only ".frozen" on sys.path; null when nothing is) and
which farside package folders at the filesystem's root would shadow frozen modules.
"""

from __future__ import annotations

from hil.flash.bootfiles import ROVER_STATE_FILES

_AGENT = """\
import os, sys, hashlib, binascii, json
try:
    _fa_root = FARSIDE_ROOT
except NameError:
    _fa_root = os.getcwd()
_fa_root = "" if _fa_root == "/" else _fa_root
_fa_buf = bytearray(1024)
_fa_f = None
_fa_wdt = None
_fa_state = _FA_STATE_
if sys.platform == "rp2":
    # The rover's watchdog keeps running at the REPL (rp2 cannot stop it): feed it while
    # flashing. Only when it is already enabled (WATCHDOG CTRL.ENABLE, RP2040).
    try:
        import machine
        if "RP2040" in os.uname().machine and machine.mem32[0x40058000] & 0x40000000:
            _fa_wdt = machine.WDT(timeout=8388)
    except Exception:
        _fa_wdt = None
def _fa_p(rel):
    if _fa_wdt:
        _fa_wdt.feed()
    return _fa_root + "/" + rel
def _fa_hash(rel):
    h = hashlib.sha256()
    mv = memoryview(_fa_buf)
    with open(_fa_p(rel), "rb") as f:
        while True:
            n = f.readinto(_fa_buf)
            if not n:
                break
            h.update(mv[:n])
    return binascii.hexlify(h.digest()).decode()
def _fa_walk(slot, rel):
    try:
        it = list(os.ilistdir(_fa_p(slot + rel)))
    except OSError:
        return
    for e in it:
        sub = rel + "/" + e[0]
        if e[1] == 0x4000:
            _fa_walk(slot, sub)
        else:
            n = sub[1:]
            st = n in _fa_state or (n[-4:] == ".new" and n[:-4] in _fa_state)
            print("F", slot[8:], os.stat(_fa_p(slot + sub))[6], "-" if st else _fa_hash(slot + sub), n)
def _fa_read(rel):
    try:
        with open(_fa_p(rel)) as f:
            return f.read()
    except OSError:
        return None
def _fa_isdir(rel):
    try:
        return os.stat(_fa_p(rel))[0] & 0x4000 != 0
    except OSError:
        return False
def _fa_isolated(path, names, fn):
    # fn() with sys.path = `path` and the modules `names` not yet imported; sys.path and
    # sys.modules are left as found.
    old = list(sys.path)
    keep = {}
    for k in names:
        if k in sys.modules:
            keep[k] = sys.modules.pop(k)
    sys.path.clear()
    sys.path.extend(path)
    try:
        return fn()
    finally:
        sys.path.clear()
        sys.path.extend(old)
        for k in names:
            sys.modules.pop(k, None)
        sys.modules.update(keep)
def _fa_record():
    try:
        import firmware_py._frozen as r
        return {"hash": r.HASH, "version": r.VERSION, "files": r.FILES}
    except (ImportError, AttributeError):
        return None
def _fa_frozen():
    # What the firmware froze of farside (the record `farside firmware build` adds), or None.
    return _fa_isolated([".frozen"], ("firmware_py", "firmware_py._frozen"), _fa_record)
def _fa_pkgs():
    out = {}
    for n in ("firmware_py", "boards"):
        try:
            out[n] = getattr(__import__(n), "__path__", "")
        except ImportError:
            out[n] = None
    return out
def _fa_where(slot):
    # Where the rover's packages come from when it runs from `slot`: main.py's working
    # directory, and boot.py's sys.path (that slot first, no other slot).
    cwd = os.getcwd()
    s = _fa_p(slot)
    b = _fa_p("farside/")
    path = [s] + [p for p in sys.path if p[:len(b)] != b]
    os.chdir(s)
    try:
        print(json.dumps(_fa_isolated(path, ("firmware_py", "boards"), _fa_pkgs)))
    finally:
        os.chdir(cwd)
def _fa_rmtree(rel):
    if not _fa_isdir(rel):
        _fa_rm(rel)
        return
    for e in list(os.ilistdir(_fa_p(rel))):
        _fa_rmtree(rel + "/" + e[0])
    os.rmdir(_fa_p(rel))
def _fa_survey():
    # One line per item (no big strings on a small heap): a JSON header, then
    # R name hash | M slot manifest-json | F slot size hash path
    print(json.dumps({"version": list(sys.implementation.version[:3]), "mpy": getattr(sys.implementation, "_mpy", 0),
         "platform": sys.platform, "active": _fa_read("farside/active"), "frozen": _fa_frozen(),
         "shadow": [n for n in ("firmware_py", "boards") if _fa_isdir(n)]}))
    for n in ("boot.py", "main.py"):
        try:
            print("R", n, _fa_hash(n))
        except OSError:
            pass
    for s in ("a", "b"):
        m = _fa_read("farside/" + s + "/MANIFEST")
        if m:
            print("M", s, m.replace("\\n", " "))
        m = None
        _fa_walk("farside/" + s, "")
def _fa_mkdirs(rel):
    p = ""
    for part in rel.split("/"):
        p = part if not p else p + "/" + part
        try:
            os.mkdir(_fa_p(p))
        except OSError:
            pass
def _fa_open(rel):
    global _fa_f
    if _fa_f:
        _fa_f.close()
    d = rel.rsplit("/", 1)[0] if "/" in rel else ""
    if d:
        _fa_mkdirs(d)
    _fa_f = open(_fa_p(rel), "wb")
def _fa_w(data):
    # base64 text (binary files) or a bytes literal (text files: fewer octets on the wire)
    _fa_f.write(binascii.a2b_base64(data) if isinstance(data, str) else data)
def _fa_close():
    global _fa_f
    if _fa_f:
        _fa_f.close()
    _fa_f = None
def _fa_put(rel, data):
    _fa_open(rel)
    _fa_w(data)
    _fa_close()
def _fa_rm(rel):
    try:
        os.remove(_fa_p(rel))
    except OSError:
        pass
def _fa_cp(src, dst):
    _fa_open(dst)
    with open(_fa_p(src), "rb") as f:
        while True:
            n = f.readinto(_fa_buf)
            if not n:
                break
            _fa_f.write(memoryview(_fa_buf)[:n])
    _fa_close()
def _fa_rename(src, dst):
    try:
        os.rename(_fa_p(src), _fa_p(dst))
    except OSError:
        # A filesystem whose rename will not replace (FAT): remove, then rename.
        _fa_rm(dst)
        os.rename(_fa_p(src), _fa_p(dst))
def _fa_hashes(rels, pre=""):
    for r in rels:
        try:
            print(_fa_hash(pre + r), pre + r)
        except OSError:
            print("-", pre + r)
def _fa_cps(src, dst, rels):
    for r in rels:
        _fa_cp(src + r, dst + r)
def _fa_rms(pre, rels):
    for r in rels:
        _fa_rm(pre + r)
def _fa_sync():
    try:
        os.sync()
    except (AttributeError, OSError):
        pass
"""
AGENT = _AGENT.replace("_FA_STATE_", repr(ROVER_STATE_FILES))


def minified(source: str = AGENT) -> str:
    """The agent with comment lines dropped and 4-space indents made 1 space (fewer
    octets on the wire, same program)."""
    out = []
    for line in source.splitlines():
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        out.append(" " * ((len(line) - len(body)) // 4) + body)
    return "\n".join(out) + "\n"
