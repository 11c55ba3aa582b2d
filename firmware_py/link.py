# Link: TC frames in, TM frames out, over the board's byte stream.
#
# Uplink: stream octets -> TcDeframer (EB 90 hunt, FECF) -> SCID/VCID check ->
# Security.verify (SDLS: SPI, ARSN, MAC, anti-replay; BD frames need a fresh ARSN; an
# aes-gcm data field is decrypted) -> Security.reserve (the ARSN mark on flash before
# anything acts on the frame) -> FARM-1 -> Security.commit when FARM (or the BD path)
# accepted -> each PUS TC packet in the frame's data -> on_packet. A rekey commanded in
# the frame takes effect after its packets, once their reports are sent (SA_STATUS).
# Rejected authentication: every frame counted (auth_rejected); the first of a burst
# reported at once (TC_AUTH_REJECTED), then at most one TC_AUTH_SUMMARY (count, last
# reason, last SPI) per auth_period_ms while rejections go on. FARM Lockout and its
# Unlock are reported (FARM_LOCKOUT, FARM_UNLOCKED).
# TM authentication (the key file's tm_spi): each TM frame is built 30 octets short and
# sent with SPI, IV (the TM sequence number) and MAC (sdls_frame.tm_secure).
# Downlink: PUS TM packets (TmPacketBuilder, APID 32, CUC time from the rover
# clock) -> TmFramer (fixed 256-octet frames, CLCW from FARM in the OCF, ASM
# before each frame) -> stream. Packets are flushed every 100 ms; with nothing to
# send an idle frame still carries the CLCW once a second, and right after any
# accepted TC frame so COP-1 on the ground sees V(R) move promptly.
#
#   Link(stream, security, farm, events, clock, on_packet, mission)
#     stream.read_into(buf) -> n (non-blocking), stream.write(mv)
#     on_packet(buf, start, end) for each TC packet
#   .send(service, subservice, data, n=-1)    queue one TM packet
#   .data -> memoryview to pack TM application data into, then .send_data(svc, sub, n)
#   .poll(now_ms)  read the stream and run the transmit timers (the link task calls it)
#   .poll_ms(now_ms) how long the link task may sleep before the next poll: 20 ms
#                  while the uplink is busy (octets in the last 2 s) or TM is
#                  queued, else 100 ms (a quiet uplink's first TC waits at most
#                  that long; queued TM is still flushed within 100 ms)
#   .store         a firmware_py.pktstore.PktStore (the app sets it) or None: every TM packet
#                  sent is offered to it, and it pumps a retrieval while the live channel
#                  has nothing waiting
#   .auth_period_ms  the rate limit of the rejection reports (the app sets it from the
#                  parameter auth_event_period_s)
#   Counters: frames_ok, frames_bad, auth_rejected, mark_failures, tm_packets, last_tc_ms;
#   last_spi: the SPI of the last accepted frame
from firmware_py import farm as farm_mod
from firmware_py import sdls
from firmware_py import tc_frame
from firmware_py.compat import const
from firmware_py.spacepacket import TmPacketBuilder
from firmware_py.tm_frame import TmFramer

_RX_CHUNK = const(256)
_FLUSH_MS = const(100)
_IDLE_MS = const(1000)
_BUSY_POLL_MS = const(20)
_QUIET_POLL_MS = const(100)
_BUSY_MS = const(2000)  # the uplink counts as busy this long after octets arrived
_EV_AUTH = const(16)
_EV_LOCKOUT = const(20)
_EV_UNLOCKED = const(21)
_EV_SA_STATUS = const(30)
_EV_AUTH_SUMMARY = const(32)


class Link:
    def __init__(self, stream, security, farm, events, clock, on_packet, mission=None):
        m = mission or {}
        self.scid = m.get("scid", 171)
        self.tc_vcid = m.get("tc_vcid", 1)
        self.stream = stream
        self.sec = security
        self.farm = farm
        self.events = events
        self.on_packet = on_packet
        self.tm = TmPacketBuilder(m.get("tm_apid", 32), clock)
        self.data = self.tm.data
        tm_len = m.get("tm_frame_length", 256)
        write = self._write
        if getattr(security, "tm_sa", None) is not None:
            from firmware_py import sdls_frame

            self._tm_secure = sdls_frame.tm_secure
            tm_len -= sdls.TM_OVERHEAD
            self._tm_out = bytearray(4 + tm_len + sdls.TM_OVERHEAD)
            write = self._write_secured
        self.framer = TmFramer(self.scid, m.get("tm_vcid", 0), tm_len, write, farm.clcw)
        self.deframer = tc_frame.TcDeframer(m.get("tc_frame_max", 1024), self._frame)
        self._rx = bytearray(_RX_CHUNK)
        self._rxmv = memoryview(self._rx)
        self.frames_ok = 0
        self.frames_bad_hdr = 0
        self.auth_rejected = 0
        self.auth_period_ms = 10000
        self._auth_t = None  # when the current burst of rejections was last reported
        self._auth_n = 0  # rejections since
        self._auth_reason = 0
        self._auth_spi = 0
        self.mark_failures = 0
        spis = security.spis() if hasattr(security, "spis") else ()
        d = m.get("auth", {}).get("default_spi", 1)
        self.last_spi = d if d in spis or not spis else spis[0]
        self.tm_packets = 0
        self.last_clcw = 0
        self.last_tc_ms = None
        self._now = 0
        self._last_tx = 0
        self._last_flush = 0
        self._kick = False
        self._rx_ms = None
        self.bytes_out = 0
        self.store = None

    @property
    def frames_bad(self):
        d = self.deframer
        return d.bad_crc + d.bad_length + self.frames_bad_hdr

    # -- downlink --
    def _write(self, mv):
        self.last_clcw = self.farm.clcw()
        self.stream.write(mv)
        self.bytes_out += len(mv)
        self._last_tx = self._now

    def _write_secured(self, mv):
        n = self._tm_secure(self.sec, mv, self._tm_out)
        if n:
            self._write(memoryview(self._tm_out)[0:n])

    def send(self, service, subservice, data=b"", n=-1):
        pkt = self.tm.build(service, subservice, data, n)
        self.framer.put(pkt)
        self.tm_packets += 1
        if self.store is not None:
            self.store.put(pkt, service)

    def send_data(self, service, subservice, n):
        pkt = self.tm.finish(service, subservice, n)
        self.framer.put(pkt)
        self.tm_packets += 1
        if self.store is not None:
            self.store.put(pkt, service)

    # -- uplink --
    def _frame(self, f):
        n = len(f)
        bypass, control, scid, vcid, _ln, ns = tc_frame.parse_header(f)
        if scid != self.scid or vcid != self.tc_vcid:
            self.frames_bad_hdr += 1
            return
        sec = self.sec
        reason = sec.verify(f, n)
        if reason:
            self._rejected(reason, sec.spi, sec.seq)
            return
        if not sec.reserve(sec.spi, sec.seq):
            self.mark_failures += 1  # the mark is not on flash: act on nothing
            return
        fm = self.farm
        was_locked = fm.lockout
        code = fm.on_frame(bypass, control, ns, f[sec.data_start : sec.data_end])
        if code == farm_mod.LOCKOUT_ENTERED:
            self.events.emit(_EV_LOCKOUT, ns, fm.vr)
        self._kick = True
        if not farm_mod.accepted(code):
            return
        sec.commit(sec.spi, sec.seq)
        self.last_spi = sec.spi
        self.frames_ok += 1
        self.last_tc_ms = self._now
        if code == farm_mod.CONTROL_DONE:
            if was_locked and not fm.lockout:
                self.events.emit(_EV_UNLOCKED, fm.vr)
            return
        # the data field holds one or more whole TC packets
        s = sec.data_start
        end = sec.data_end
        while end - s >= 6:
            plen = ((f[s + 4] << 8) | f[s + 5]) + 7
            if s + plen > end:
                plen = end - s
            self.on_packet(f, s, s + plen)
            s += plen
        if sec.pending is not None:
            self._rekey()

    def _rekey(self):
        # SA_REKEY executed: its reports go under the old key, then the SA takes the new one
        sec = self.sec
        self.framer.flush()
        from firmware_py import otar

        spi = otar.apply_pending(sec)
        self.events.emit(_EV_SA_STATUS, spi, sec.mark(spi), sec.key_id(spi))

    def _rejected(self, reason, spi, seq):
        self.auth_rejected += 1
        if self._auth_t is None:
            self._auth_t = self._now
            self._auth_n = 0
            self.events.emit(_EV_AUTH, reason, spi, seq)
        else:
            self._auth_n += 1
            self._auth_reason = reason
            self._auth_spi = spi

    def _auth_report(self, now_ms):
        # one summary per period while rejections continue; a quiet period ends the burst
        if self._auth_t is None or (now_ms - self._auth_t) < self.auth_period_ms:
            return
        if self._auth_n:
            self.events.emit(_EV_AUTH_SUMMARY, self._auth_n, self._auth_reason, self._auth_spi)
            self._auth_n = 0
            self._auth_t = now_ms
        else:
            self._auth_t = None

    def poll(self, now_ms):
        self._now = now_ms
        rd = self.stream.read_into
        while True:
            n = rd(self._rx)
            if not n:
                break
            self._rx_ms = now_ms
            self.deframer.feed(self._rxmv, n)
            if n < _RX_CHUNK:
                break
        if self.sec.pending is not None:  # a time-tagged SA_REKEY ran outside a frame
            self._rekey()
        self._auth_report(now_ms)
        fr = self.framer
        if fr.pending and (self._kick or (now_ms - self._last_flush) >= _FLUSH_MS):
            fr.flush()
            self._last_flush = now_ms
            self._kick = False
        elif self._kick or (now_ms - self._last_tx) >= _IDLE_MS:
            fr.idle()
            self._kick = False
        if not fr.pending:
            self._last_flush = now_ms
            st = self.store
            if st is not None and st.active:  # a retrieval: below live TM, a frame a poll
                st.pump()

    def poll_ms(self, now_ms):
        if self._kick or self.framer.pending or (self.store is not None and self.store.active):
            return _BUSY_POLL_MS
        rx = self._rx_ms
        # uptime ms (never wraps): a plain difference; ticks_diff would turn negative 2^29 ms
        # (6.2 days) after the last uplink and keep a hibernating rover polling all night
        if rx is not None and now_ms - rx < _BUSY_MS:
            return _BUSY_POLL_MS
        return _QUIET_POLL_MS
