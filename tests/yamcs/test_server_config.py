"""`farside yamcs init`: what it says, and the configuration it builds (Yamcs itself reads the
written YAML in the slow tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hil.commands.yamcs import _setup
from hil.gs.keys import DEV_KEYS
from hil.yamcs.config import instance_yaml, server_yaml


def _init(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil.cli", "yamcs", "init", str(folder), "--keys", str(DEV_KEYS),
                           "--http-port", "18990", "--tm-port", "18917", "--tc-port", "18918", *args],
                          capture_output=True, text=True, timeout=120)


def _instance(folder: Path, *, arsn: int = 1, clear: bool = False, spi: int = 1) -> dict[str, Any]:
    """The instance configuration init builds for these options (key file in `folder`)."""
    setup, _ = _setup(18990, 18917, 18918, "farside", str(DEV_KEYS), spi, arsn, clear)
    key_path = None
    if setup.sdls_key is not None:
        key_path = folder / "key.bin"
        key_path.write_bytes(setup.sdls_key)
    return instance_yaml(setup, folder / "farside.xml", key_path)


def _links(inst: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {link["name"]: link for link in inst["dataLinks"]}


def test_init_writes_frame_links_facing_the_relay_with_cop1_and_the_aes_gcm_sa(tmp_path: Path) -> None:
    r = _init(tmp_path / "y", "--arsn", "1000")
    assert r.returncode == 0, r.stderr
    assert "TC security: SDLS AES-256-GCM, SPI 1" in r.stdout
    assert "farside relay --ground udp:18917:18918" in r.stdout
    for name in ("yamcs.yaml", "yamcs.farside.yaml", "processor.yaml", "event-templates.yaml"):
        assert (tmp_path / "y" / "etc" / name).is_file()
    assert (tmp_path / "y" / "mdb" / "farside.xml").read_text().startswith("<?xml")
    mission = json.loads((Path(__file__).resolve().parents[2] / "protocols" / "dictionary.json").read_text())["mission"]
    setup, _ = _setup(18990, 18917, 18918, "farside", str(DEV_KEYS), 1, 1000, False)
    server = server_yaml(setup, tmp_path / "data")
    assert server["services"][0]["args"]["port"] == 18990 and server["instances"] == ["farside"]
    links = _links(_instance(tmp_path, arsn=1000))
    tm, tc = links["tm-frames"], links["tc-frames"]
    assert (tm["class"], tm["port"], tm["frameType"]) == ("org.yamcs.tctm.ccsds.UdpTmFrameLink", 18917, "TM")
    assert (tm["spacecraftId"], tm["frameLength"], tm["errorDetection"]) == (mission["scid"], mission["tm_frame_length"], "CRC16")
    assert tm["clcwStream"] == "clcw" and tm["virtualChannels"][0]["vcId"] == mission["tm_vcid"]
    time_encoding = tm["virtualChannels"][0]["packetPreprocessorArgs"]["timeEncoding"]
    assert time_encoding["epochUTC"] == mission["epoch"] and time_encoding["implicitPField"] == 0x2E
    # secured: farside's UdpTcFrameLink, whose COP-1 retransmits a frame as first secured
    assert (tc["class"], tc["host"], tc["port"]) == ("farside.yamcs.Cop1UdpTcFrameLink", "127.0.0.1", 18918)
    # and farside's PUS-1 verifier, which the MDB farside writes names
    assert json.loads((tmp_path / "y" / "farside-yamcs.json").read_text())["extension"] == [
        tc["class"], "farside.yamcs.Pus1ReportVerifier"]
    assert "farside.yamcs.Pus1ReportVerifier({stage: 1," in (tmp_path / "y" / "mdb" / "farside.xml").read_text()
    assert tc["spacecraftId"] == mission["scid"] and tc["maxFrameLength"] == mission["tc_frame_max"]
    vc = tc["virtualChannels"][0]
    assert vc["vcId"] == mission["tc_vcid"] and vc["useCop1"] is True and vc["clcwStream"] == "clcw"
    assert vc["commandPostprocessorClassName"] == "org.yamcs.pus.PusCommandPostprocessor"
    sa = tc["encryption"][0]
    assert sa["class"] == "org.yamcs.security.sdls.SecurityAssociationAes256Gcm128Factory"
    assert vc["encryptionSpi"] == sa["spi"] == 1 and "authMask" not in sa
    assert sa["args"]["initialSeqNum"] == f"{1000:024x}"
    key = json.loads(DEV_KEYS.read_text())["sas"]["1"]["key"]
    assert Path(sa["args"]["keyFile"]).read_bytes() == bytes.fromhex(key)
    written = tmp_path / "y" / "etc" / "sdls-key-1.bin"
    assert written.read_bytes() == bytes.fromhex(key) and written.stat().st_mode & 0o077 == 0
    etc = (tmp_path / "y" / "etc" / "yamcs.farside.yaml").read_text()
    assert "org.yamcs.pus.PusEventDecoder" in etc and "/farside/pus/event_id" in etc
    templates = json.loads((tmp_path / "y" / "etc" / "event-templates.yaml").read_text())
    assert {t["eventId"] for t in templates} >= {"WHEEL_FAULT", "BOOT"}


def test_init_clear_says_so_and_writes_no_security_association(tmp_path: Path) -> None:
    r = _init(tmp_path / "y", "--clear")
    assert r.returncode == 0, r.stderr
    assert "TC security: clear mode (no SDLS security association)" in r.stdout
    tc = _links(_instance(tmp_path, clear=True))["tc-frames"]
    assert "encryption" not in tc and "encryptionSpi" not in tc["virtualChannels"][0]
    assert tc["class"] == "org.yamcs.tctm.ccsds.UdpTcFrameLink"  # Yamcs's own link in clear mode
    # the extension still holds the MDB's verifier
    assert json.loads((tmp_path / "y" / "farside-yamcs.json").read_text())["extension"] == [
        "farside.yamcs.Pus1ReportVerifier"]
    assert not list((tmp_path / "y" / "etc").glob("sdls-key-*"))


def test_an_hmac_sa_gives_clear_mode_and_says_why(tmp_path: Path) -> None:
    r = _init(tmp_path / "y", "--spi", "7")  # the dev keys' SPI 7 is the legacy HMAC-SHA256 SA
    assert r.returncode == 0, r.stderr
    assert "clear mode" in r.stdout and "hmac-sha256, which Yamcs cannot speak" in r.stdout
