# What link security keeps on the rover's flash (CCSDS 355.0-B-2 security associations,
# keys per 355.1-B): per SPI the anti-replay mark M and the key in use, the TM sequence
# mark, the retired key ids, and the keys loaded over the link (OTAR).
#
# Files in the rover's root, each written atomically like the parameter store
# (params.write_atomic: the whole text to <file>.new, then renamed over the file; read
# back by params.read_json, which falls back to <file>.new after a cut between remove
# and rename), so a power cut at any step leaves the old contents or the new:
#   sdls_state.json  {"version": 1, "sas": {"<spi>": {"mark": M, "key_id": K}, ...},
#                     "tm_mark": T, "retired": [key ids]}
#   sdls_keys.json   {"version": 1, "keys": {"<key id>": "<64 hex>"}}
# Invariant kept by firmware_py.sdls: every accepted sequence number is <= the mark on
# flash before its frame is acted on; the old marks are as safe as the new ones, since
# the frame that asked for the new ones has not been acted on yet.
#
#   SaStore(root="", fs=None)        fs: params.OsFs or a test's failing one
#   .load()                          read both files (missing or unreadable: empty)
#   .mark(spi) / .key_id(spi, default) / .tm_mark / .retired / .keys {key id: bytes}
#   .set_sa(spi, mark, key_id)       persist one SA's mark and key (raises OSError)
#   .save_state()                    persist tm_mark and retired as they are (raises OSError)
#   (firmware_py.otar writes the keys file: only key changes need that code)
import json
from binascii import unhexlify

from firmware_py.params import join, read_json, write_atomic

STATE_FILE = "sdls_state.json"
KEYS_FILE = "sdls_keys.json"


class SaStore:
    def __init__(self, root="", fs=None):
        self.fs = fs
        self.state_path = join(root, STATE_FILE)
        self.keys_path = join(root, KEYS_FILE)
        self._sas = {}  # spi -> [mark, key_id]
        self.tm_mark = 0
        self.retired = []
        self.keys = {}
        self.writes = 0  # state files written (a test and the benchmark count them)

    def load(self):
        d = read_json(self.state_path, self.fs)
        self._sas = {}
        self.tm_mark = 0
        self.retired = []
        if isinstance(d, dict) and d.get("version") == 1:
            sas = d.get("sas") or {}
            for k in sas:
                e = sas[k]
                self._sas[int(k)] = [int(e.get("mark", 0)), int(e.get("key_id", 0))]
            self.tm_mark = int(d.get("tm_mark", 0))
            self.retired = [int(x) for x in d.get("retired", ())]
        k = read_json(self.keys_path, self.fs)
        self.keys = {}
        if isinstance(k, dict) and k.get("version") == 1:
            keys = k.get("keys") or {}
            for kid in keys:
                self.keys[int(kid)] = unhexlify(keys[kid])

    def mark(self, spi):
        e = self._sas.get(spi)
        return e[0] if e else 0

    def key_id(self, spi, default):
        e = self._sas.get(spi)
        return e[1] if e else default

    def save_state(self):
        sas = {}
        for spi in self._sas:
            e = self._sas[spi]
            sas[str(spi)] = {"mark": e[0], "key_id": e[1]}
        text = json.dumps({"version": 1, "sas": sas, "tm_mark": self.tm_mark, "retired": self.retired})
        write_atomic(self.state_path, text, self.fs)
        self.writes += 1

    def set_sa(self, spi, mark, key_id):
        old = self._sas.get(spi)
        self._sas[spi] = [mark, key_id]
        try:
            self.save_state()
        except OSError:
            if old is None:
                del self._sas[spi]
            else:
                self._sas[spi] = old
            raise

