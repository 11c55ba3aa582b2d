# Space Data Link Security (CCSDS 355.0-B-2), the rover's side: security associations
# (SAs) by SPI, verification and anti-replay of TC frames, persistent sequence marks,
# rekeying, and the optional authentication of TM frames.
#
# Suites (algorithms per CCSDS 352.0-B), laid out as Yamcs' SecurityAssociationAes256Gcm128:
#   aes-gcm (default): TC = header(5) | SPI u16 | IV(12) | ciphertext | MAC(16) | FECF(2);
#       AES-256-GCM, nonce = IV, AAD = (header AND 00 00 FC 00 00: the VCID only) || the
#       security header AND its mask (FF FF then 12 x 00: the SPI, the IV zeroed, as the
#       standard and Yamcs mask it), plaintext = the frame data field. IV = the anti-replay sequence number (ARSN) as a
#       96-bit big-endian counter: IV[0:8] = 0 (else OUT_OF_WINDOW), IV[8:12] = the u32 ARSN.
#   gmac: the same layout, data field in the clear; MAC = the GCM tag of an empty
#       plaintext with AAD = masked header || SPI || 12 x 00 || data field.
#   hmac-sha256 (legacy): header(5) | SPI u16 | seq u32 | data | MAC(16) | FECF(2),
#       MAC = HMAC-SHA256(key, header + SPI + seq + data)[:16].
# The frame length field covers everything; the FECF is checked by the deframer.
#
# Checks in order: too short -> NO_SECURITY_HEADER, unknown SPI -> UNKNOWN_SPI (then a
# frame too short for that SA's suite -> NO_SECURITY_HEADER), MAC mismatch -> BAD_MAC,
# ARSN <= H - window (or IV[0:8] not zero) -> OUT_OF_WINDOW, already accepted ->
# REPLAYED, and for a Type-B frame (bypass flag: BD data and BC control commands) an
# ARSN not above H -> REPLAYED: BD frames bypass FARM-1, so only a fresh number lets
# them through.
# Anti-replay per SPI, IPsec style: H = highest accepted ARSN, the ARSNs H-63..H already
# accepted as a circular bitmap indexed by ARSN mod 64 (no big ints on a 32-bit board).
# Persistence (firmware_py.sastore): a mark M per SPI on flash with the invariant "every
# accepted ARSN <= M on flash before the frame is acted on". The link calls reserve()
# for a verified frame before FARM-1 judges it: it writes M = ARSN + RESERVE - 1 first
# when the ARSN is above M (one flash write per 256 frames; a frame FARM then discards
# has only raised the mark early, which is safe). At boot H := M with the whole window
# marked (M > 0; M = 0 means nothing was ever accepted), so nothing at or below M is
# accepted after any reset or power cut, AD or BD. commit() records the ARSN
# in RAM once FARM-1 (AD) or the BD path accepted the frame, so a COP-1 retransmission
# of a frame FARM discarded is not a replay.
# Because every accepted frame, AD or BD, carries an ARSN above the boot mark and never
# seen before, the commands that stop the flight software or change keys (ENTER_REPL,
# REBOOT, KEY_OTAR, SA_REKEY) are as safe in a BD frame as in an AD frame: a recorded
# frame of either kind is a replay on every boot.
#
#   sec = Security(sas, window=64, store=None, master=None, tm_spi=0)
#       sas: {spi: key bytes} (legacy hmac-sha256) or {spi: (suite, key, key_id)}
#       store: a sastore.SaStore (loaded here) for persistent marks and keys; None keeps
#       everything in RAM (unit tests)
#   .verify(frame, n) -> reason     0 ok, else AUTH_* (dictionary enum auth_reason); then
#       .spi, .seq, .data_start, .data_end (data span in frame) are set (0 when the
#       frame is too short to carry them). On AUTH_OK an aes-gcm frame's data field is
#       decrypted in place (frame must be writable).
#   .reserve(spi, seq) -> bool      persist the mark first when seq > M (False: the flash
#                                   write failed, the frame must not be acted on)
#   .commit(spi, seq)               record seq as accepted (after FARM-1 accepted it)
#   .highest(spi) -> H, .mark(spi) -> M, .key_id(spi), .spis() -> tuple of SPIs
#   .build_frame(buf, bypass, control, scid, vcid, ns, spi, seq, data) -> n
#   .pending: (spi, key id) of a rekey to apply once its report is sent
#   Key changes (KEY_OTAR, SA_REKEY) are firmware_py.otar's, the TM frames of TM
#   authentication firmware_py.sdls_frame's: modules imported only when used, so a rover
#   that never changes keys keeps their code off its heap.
#   load_key_file(path) -> (sas, master or None, tm_spi)
#   load_keys(path) -> {spi: key bytes} (legacy form) or {spi: (suite, key, key_id)}
#   hmac_sha256(key, msg) -> 32 octets     (plain RFC 2104, for tests)
import hashlib

from firmware_py.compat import const
# GCM at import, with the rest of the link code, while the heap is in one piece: the
# default suite needs it, and its viper GHASH is compiled as it loads.
from firmware_py.gcm import Gcm

AUTH_OK = const(0)
AUTH_UNKNOWN_SPI = const(1)
AUTH_BAD_MAC = const(2)
AUTH_REPLAYED = const(3)
AUTH_OUT_OF_WINDOW = const(4)
AUTH_NO_SECURITY_HEADER = const(5)

SUITE_HMAC = const(1)
SUITE_GMAC = const(2)
SUITE_GCM = const(3)
SUITES = {"hmac-sha256": SUITE_HMAC, "gmac": SUITE_GMAC, "aes-gcm": SUITE_GCM}

HEADER_LEN = const(5)
SEC_HEADER_LEN = const(6)  # legacy: SPI + seq
GCM_HEADER_LEN = const(14)  # SPI + IV
IV_LEN = const(12)
MAC_LEN = const(16)
FECF_LEN = const(2)
# Shortest secured frame: header, security header, no data, MAC, FECF.
MIN_SECURED = const(29)
MIN_GCM = const(37)
RESERVE = const(256)  # sequence numbers reserved per flash write of the mark

# failure codes (dictionary failure_codes)
F_OUT_OF_RANGE = const(3)
F_EXECUTION_FAILED = const(7)
F_OTAR_BAD_MAC = const(20)
F_KEY_UNAVAILABLE = const(21)

_BLOCK = const(64)
TM_OVERHEAD = const(30)  # SPI + IV + MAC
_TC = const(5)  # TC primary header octets (where the SPI starts)
_TM = const(6)  # TM primary header octets


def _pads(key):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(_BLOCK):
        k = key[i] if i < len(key) else 0
        ipad[i] = k ^ 0x36
        opad[i] = k ^ 0x5C
    return bytes(ipad), bytes(opad)


def _hmac(pads, msg):
    h = hashlib.sha256(pads[0])
    h.update(msg)
    o = hashlib.sha256(pads[1])
    o.update(h.digest())
    return o.digest()


def hmac_sha256(key, msg):
    return _hmac(_pads(key), msg)


def _sa_entries(d):
    # {spi: (suite, key, key_id)} from the key file's object (either form)
    from binascii import unhexlify

    out = {}
    if "sas" in d:
        for spi in d["sas"]:
            e = d["sas"][spi]
            suite = SUITES.get(e.get("suite", "aes-gcm"))
            if suite is None:
                raise ValueError("SA %s: unknown suite %s" % (spi, e.get("suite")))
            out[int(spi)] = (suite, unhexlify(e["key"]), int(e.get("key_id", 0)))
    else:
        for spi in d["keys"]:
            out[int(spi)] = unhexlify(d["keys"][spi])
    return out


def load_key_file(path):
    import json
    from binascii import unhexlify

    with open(path) as f:
        d = json.load(f)
    m = d.get("master")
    return _sa_entries(d), (unhexlify(m) if m else None), int(d.get("tm_spi", 0) or 0)


def load_keys(path):
    return load_key_file(path)[0]


class _Sa:
    def __init__(self, spi, suite, key, key_id):
        self.spi = spi
        self.suite = suite
        self.key_id = key_id
        self.set_key(key)
        self.h = 0
        self.mark = 0
        self.bits = bytearray(8)

    def set_key(self, key):
        self.key = bytes(key)
        self.pads = None
        self.gcm = None
        if self.suite == SUITE_HMAC:
            self.pads = _pads(key)
        else:
            self.gcm = Gcm(key)

    # at boot (and rekey): H := M, the whole window counted as seen when M > 0 (M = 0:
    # nothing was ever accepted, and the first frame accepted raises M first)
    def restart(self, mark):
        self.h = mark
        self.mark = mark
        for i in range(8):
            self.bits[i] = 0xFF if mark else 0


class Security:
    def __init__(self, sas, window=64, store=None, master=None, tm_spi=0):
        if window < 1 or window > 64:
            raise ValueError("window must be 1..64")
        self.window = window
        self.store = store
        self.master = None
        if master:
            self.master = Gcm(master)
        self._keys = {}  # key id -> key, from the key file (key id 0: none)
        self._sas = {}
        for spi in sas:
            e = sas[spi]
            if isinstance(e, (bytes, bytearray)):
                e = (SUITE_HMAC, e, 0)
            if e[2]:
                self._keys[e[2]] = bytes(e[1])
            self._sas[spi] = _Sa(spi, e[0], e[1], e[2])
        if store is not None:
            store.load()
            for spi in self._sas:
                sa = self._sas[spi]
                kid = store.key_id(spi, sa.key_id)
                if kid != sa.key_id:
                    key = self.key(kid)
                    if key is not None:
                        sa.key_id = kid
                        sa.set_key(key)
                sa.restart(store.mark(spi))
        self.tm_sa = self._sas.get(tm_spi) if tm_spi else None
        if self.tm_sa is not None and self.tm_sa.suite == SUITE_HMAC:
            self.tm_sa = None  # TM authentication is gmac or aes-gcm only
        self.tm_seq = store.tm_mark if store is not None else 0
        self.tm_mark = self.tm_seq
        self.pending = None  # (spi, key id): a rekey to apply once its report is sent
        # AAD per frame kind: masked header, SPI, then the IV's 12 octets, masked to zero
        # once here (each kind writes only its header and SPI, so they stay zero)
        self._aad_tc = bytearray(_TC + 14)
        self._aad_tm = bytearray(_TM + 14)
        self.spi = 0
        self.seq = 0
        self.data_start = 0
        self.data_end = 0

    def spis(self):
        return tuple(sorted(self._sas))

    def highest(self, spi):
        return self._sas[spi].h

    def mark(self, spi):
        return self._sas[spi].mark

    def key_id(self, spi):
        return self._sas[spi].key_id

    def key(self, key_id):
        if self.store is not None:
            k = self.store.keys.get(key_id)
            if k is not None:
                return k
        return self._keys.get(key_id)

    # -- TC verification --
    def verify(self, f, n):
        self.spi = 0
        self.seq = 0
        self.data_start = 0
        self.data_end = 0
        if n < MIN_SECURED:
            return AUTH_NO_SECURITY_HEADER
        spi = (f[5] << 8) | f[6]
        self.spi = spi
        sa = self._sas.get(spi)
        if sa is None:
            return AUTH_UNKNOWN_SPI
        end = n - MAC_LEN - FECF_LEN
        hi = 0
        if sa.suite == SUITE_HMAC:
            seq = (f[7] << 24) | (f[8] << 16) | (f[9] << 8) | f[10]
            self.seq = seq
            self.data_start = HEADER_LEN + SEC_HEADER_LEN
            self.data_end = end
            mac = _hmac(sa.pads, f[0:end])
            d = 0
            for i in range(MAC_LEN):
                d |= mac[i] ^ f[end + i]
            if d:
                return AUTH_BAD_MAC
        else:
            if n < MIN_GCM:
                return AUTH_NO_SECURITY_HEADER
            seq = (f[15] << 24) | (f[16] << 16) | (f[17] << 8) | f[18]
            self.seq = seq
            ds = HEADER_LEN + GCM_HEADER_LEN
            self.data_start = ds
            self.data_end = end
            for i in range(7, 15):
                hi |= f[i]
            if not self._tag_ok(sa, f, ds, end, 0x00, 0x00, 0xFC, 0x00, 0x00, _TC):
                return AUTH_BAD_MAC
        if hi:
            return AUTH_OUT_OF_WINDOW
        h = sa.h
        if seq > h:
            if sa.suite == SUITE_GCM:
                sa.gcm.ctr(f, self.data_start, end)
            return AUTH_OK
        if h - seq >= self.window:
            return AUTH_OUT_OF_WINDOW
        if sa.bits[(seq >> 3) & 7] & (1 << (seq & 7)):
            return AUTH_REPLAYED
        if f[0] & 0x20:  # Type-B: bypasses FARM-1, needs a fresh number
            return AUTH_REPLAYED
        if sa.suite == SUITE_GCM:
            sa.gcm.ctr(f, self.data_start, end)
        return AUTH_OK

    # The GCM tag over frame f (IV at 7, data f[ds:end], tag at end): AAD = the header
    # ANDed with the mask m0..m4 (TC: 5 octets; TM: the 6th mask octet is 0), the SPI,
    # the IV masked to 12 zero octets, and for gmac the data.
    def _tag_ok(self, sa, f, ds, end, m0, m1, m2, m3, m4, hlen):
        g = sa.gcm
        a = self._aad_tm if hlen == _TM else self._aad_tc
        a[0] = f[0] & m0
        a[1] = f[1] & m1
        a[2] = f[2] & m2
        a[3] = f[3] & m3
        a[4] = f[4] & m4  # (TM's 6th header octet is masked out: zero from the start)
        a[hlen] = f[hlen]
        a[hlen + 1] = f[hlen + 1]
        g.begin(f, hlen + 2)
        g.aad(a, 0, hlen + 14)
        if sa.suite == SUITE_GCM:
            g.text(f, ds, end)
        else:
            g.aad(f, ds, end)
        return g.check(f, end)

    def reserve(self, spi, seq):
        sa = self._sas[spi]
        if seq <= sa.mark:
            return True
        m = seq + RESERVE - 1
        if self.store is not None:
            try:
                self.store.set_sa(spi, m, sa.key_id)
            except OSError:
                return False
        sa.mark = m
        return True

    def commit(self, spi, seq):
        sa = self._sas[spi]
        bits = sa.bits
        h = sa.h
        if seq > h:
            if seq - h >= 64:
                for i in range(8):
                    bits[i] = 0
            else:
                s = h + 1
                while s < seq:
                    bits[(s >> 3) & 7] &= ~(1 << (s & 7)) & 0xFF
                    s += 1
            sa.h = seq
        elif h - seq >= self.window:
            return
        bits[(seq >> 3) & 7] |= 1 << (seq & 7)

    # -- frames built on board (firmware_py.sdls_frame, imported on first use) --
    def build_frame(self, buf, bypass, control, scid, vcid, ns, spi, seq, data):
        from firmware_py import sdls_frame

        return sdls_frame.build_frame(self, buf, bypass, control, scid, vcid, ns, spi, seq, data)
