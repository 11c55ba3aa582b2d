"""Ground SDLS benchmark (prints figures; not a test).

    python -m tests.bench.bench_sdls_ground

- Verify + decrypt rate of 64-octet AES-256-GCM TC frames (frames/s, µs per frame) through
  `protocols.sdls.FrameAuthenticator.verify` (FECF, security header split, tag check and
  decryption, anti-replay check) with each frame committed, as the rover's reference model
  does; the same for the gmac and legacy hmac-sha256 suites, and the raw AESGCM call alone.
- Build rate of the same frames on the ground (`SecuritySender`, no ledger).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols.sdls import IV_MASKED, FrameAuthenticator, KeyStore, SaConfig, SecuritySender, Suite
from protocols.tc_frame import build_tc_frame

FRAME_OCTETS = 64
N = 20_000


def _best(fn: Callable[[], int], repeat: int = 5) -> tuple[float, int]:
    best, items = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        items = fn()
        best = min(best, time.perf_counter() - t0)
    return best, items


def frames(suite: Suite, n: int = N) -> tuple[SaConfig, list[bytes]]:
    sa = SaConfig(1, suite, bytes(range(32)))
    data = bytes(range(FRAME_OCTETS - 5 - suite.overhead - 2))
    sender = SecuritySender(sa, seq=1)
    out = [build_tc_frame(171, 1, i & 0xFF, data, security=sender) for i in range(n)]
    assert all(len(f) == FRAME_OCTETS for f in out)
    return sa, out


def verify_rate(suite: Suite) -> tuple[float, float]:
    sa, fs = frames(suite)

    def run() -> int:
        auth = FrameAuthenticator(KeyStore(sas={1: sa}))
        for f in fs:
            v = auth.verify(f)
            auth.commit(v.spi, v.seq)
        return len(fs)

    t, n = _best(run)
    return n / t, t / n * 1e6


def build_rate(suite: Suite) -> float:
    sa = SaConfig(1, suite, bytes(range(32)))
    data = bytes(range(FRAME_OCTETS - 5 - suite.overhead - 2))

    def run() -> int:
        sender = SecuritySender(sa, seq=1)
        for i in range(N):
            build_tc_frame(171, 1, i & 0xFF, data, security=sender)
        return N

    t, n = _best(run, 3)
    return n / t


def raw_gcm_rate() -> float:
    aead = AESGCM(bytes(range(32)))
    sa, fs = frames(Suite.AES_GCM, 2000)
    # AAD: the masked TC header, the SPI, the IV masked to zeros (protocols.sdls)
    parts = [(f[7:19], f[19:-2], bytes([0, 0, f[2] & 0xFC, 0, 0]) + f[5:7] + IV_MASKED) for f in fs]

    def run() -> int:
        for _ in range(10):
            for iv, body, aad in parts:
                aead.decrypt(iv, body, aad)
        return 10 * len(parts)

    t, n = _best(run)
    return n / t


def main() -> None:
    import argparse

    from tests.bench.report import add_json_option, write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_json_option(ap)
    args = ap.parse_args()
    figures: dict[str, float] = {}
    print(f"ground SDLS, {FRAME_OCTETS}-octet TC frames, best of 5 runs of {N} frames")
    for suite in (Suite.AES_GCM, Suite.GMAC, Suite.HMAC_SHA256):
        rate, us = verify_rate(suite)
        figures[f"verify_{suite.value}_frames_per_s"] = rate
        print(f"  verify+{'decrypt' if suite is Suite.AES_GCM else 'check'} {suite.value:12} "
              f"{rate:10,.0f} frames/s  {us:6.1f} us/frame (with commit)")
    for suite in (Suite.AES_GCM, Suite.HMAC_SHA256):
        rate = build_rate(suite)
        figures[f"build_{suite.value}_frames_per_s"] = rate
        print(f"  build {suite.value:21} {rate:10,.0f} frames/s")
    figures["aesgcm_decrypt_frames_per_s"] = raw_gcm_rate()
    print(f"  AESGCM.decrypt alone (37-octet body)  {figures['aesgcm_decrypt_frames_per_s']:10,.0f} frames/s")
    write_json(args.json, figures, "sdls_ground")


if __name__ == "__main__":
    main()
