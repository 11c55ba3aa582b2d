"""A Yamcs configuration for farside: one instance whose frame links face `farside relay`.

`write_config(folder, YamcsSetup(...), mdb_xml)` writes

    etc/yamcs.yaml              the HTTP server (web UI and API), the instance, dataDir
    etc/yamcs.<instance>.yaml   archive services, the realtime processor, the frame links,
                                the MDB and the streams
    etc/processor.yaml          the realtime processor's services (alarms, parameter cache)
    etc/sdls-key-<spi>.bin      the SDLS key, raw, when the link is secured
    etc/event-templates.yaml    the events' messages for Yamcs's PUS event decoder (5/x
                                reports become Yamcs events), when given
    mdb/farside.xml             the XTCE mission database
    data/                       Yamcs's archive

The links (CCSDS 132.0-B TM frames in, 232.0-B TC frames out, one frame per datagram):

    relay ground endpoint udp:TM_PORT:TC_PORT
        TM frames  -> UdpTmFrameLink on tm_port (fixed length, FECF, the CLCW from the OCF
                      onto the `clcw` stream; packets through the PUS preprocessor, CUC time
                      from the mission epoch)
        TC frames <-  UdpTcFrameLink to tc_port (one PUS packet a frame, Type-AD under
                      Yamcs's own COP-1 fed by the `clcw` stream; PUS CRC added by the PUS
                      postprocessor); farside.yamcs.Cop1UdpTcFrameLink when secured

Security: with `sdls_key` set, the TC virtual channel uses Yamcs's built-in SDLS security
association (AES-256-GCM, 128-bit MAC) under `sdls_spi`, its IV the ARSN counting up from
`sdls_initial_seq`, and Yamcs's standard authentication mask (the VCID, the SPI, the IV as 12
zero octets), as farside's SA applies it; without a key the link is in clear mode: no
security header at all (`YamcsSetup.security` says which). A secured link is farside's
`Cop1UdpTcFrameLink` (hil.yamcs.extension): Yamcs's UdpTcFrameLink whose COP-1 retransmits a
frame as first secured, where Yamcs 5.12.8's own secures it again under a new ARSN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.yamcs.extension import LINK_CLASS, VERIFIER_CLASS

DEFAULT_INSTANCE = "farside"
DEFAULT_HTTP_PORT = 8090
DEFAULT_TM_PORT = 10017  # Yamcs listens here for TM frames
DEFAULT_TC_PORT = 10018  # Yamcs sends TC frames here (the relay listens)
SDLS_FACTORY = "org.yamcs.security.sdls.SecurityAssociationAes256Gcm128Factory"


@dataclass
class YamcsSetup:
    """What the configuration depends on; mission numbers come from the dictionary."""

    scid: int
    tm_vcid: int
    tc_vcid: int
    tm_frame_length: int
    tc_frame_max: int
    epoch_utc: str
    instance: str = DEFAULT_INSTANCE
    http_port: int = DEFAULT_HTTP_PORT
    tm_port: int = DEFAULT_TM_PORT
    tc_port: int = DEFAULT_TC_PORT
    relay_host: str = "127.0.0.1"
    cop1_t1_s: int = 10
    cop1_tx_limit: int = 5
    cop1_window: int = 4
    sdls_key: bytes | None = None
    sdls_spi: int = 1
    sdls_initial_seq: int = 1  # the first ARSN (IV) Yamcs sends; must be above the rover's mark
    # A custom AAD mask (hex) from the frame's first octet, for a rover that masks otherwise;
    # None: Yamcs's standard one (CCSDS 355.0-B-2: the VCID, the SPI, the IV zeroed), farside's
    sdls_auth_mask: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def security(self) -> str:
        """One phrase for the operator: how the TC link is protected."""
        if self.sdls_key is None:
            return "clear mode (no SDLS security association)"
        return f"SDLS AES-256-GCM, SPI {self.sdls_spi}"

    @classmethod
    def from_dictionary(cls, dictionary_path: Path | str | None = None, **kw: Any) -> YamcsSetup:
        """Mission numbers (SCID, VCIDs, frame lengths, time epoch) from dictionary.json."""
        path = Path(dictionary_path) if dictionary_path else Path(__file__).resolve().parents[2] / "protocols" / "dictionary.json"
        try:
            mission = json.loads(path.read_text())["mission"]
        except (OSError, ValueError, KeyError) as exc:
            raise FarsideError(f"{path}: cannot read the mission section: {exc}") from None
        epoch = str(mission["epoch"])
        return cls(
            scid=int(mission["scid"]), tm_vcid=int(mission["tm_vcid"]), tc_vcid=int(mission["tc_vcid"]),
            tm_frame_length=int(mission["tm_frame_length"]), tc_frame_max=int(mission["tc_frame_max"]),
            epoch_utc=epoch, **kw,
        )


def sdls_key_from_setting(keys: str | Path | None = None, spi: int = 1) -> tuple[bytes | None, str]:
    """The AES-256-GCM key of `spi` from farside's key setting (--keys PATH|BOARD, else
    $FARSIDE_KEYS, else the development keys), and where it came from. (None, why) when that
    SA is not AES-GCM: Yamcs has no other suite, so the link then runs in clear mode."""
    from hil.gs.keys import resolve_keys

    setting = resolve_keys(keys)
    p = setting.path
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise FarsideError(f"{p}: cannot read the key file: {exc}") from None
    entry: Any = (doc.get("sas") or {}).get(str(spi))
    if not isinstance(entry, dict):
        if str(spi) in (doc.get("keys") or {}):
            return None, f"SA {spi} in {setting.source} is HMAC-SHA256, which Yamcs cannot speak"
        raise FarsideError(f"{p}: no security association {spi} in the key file")
    suite = str(entry.get("suite", "aes-gcm"))
    if suite != "aes-gcm":
        return None, f"SA {spi} in {setting.source} is {suite}, which Yamcs cannot speak"
    text = entry.get("key")
    try:
        key = bytes.fromhex(str(text))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise FarsideError(f"{p}: expected a 64-hex-digit key for SA {spi}")
    return key, f"SA {spi} from {setting.source}"


def _yaml(obj: Any, indent: int = 0) -> str:
    """A small YAML writer for the plain maps, lists and scalars a Yamcs config needs
    (JSON scalars are valid YAML; keys are simple names)."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.append(_yaml(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {json.dumps(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                inner = _yaml(v, indent + 1).splitlines()
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {json.dumps(v)}")
    else:
        lines.append(f"{pad}{json.dumps(obj)}")
    return "\n".join(lines)


def server_yaml(setup: YamcsSetup, data_dir: Path) -> dict[str, Any]:
    return {
        "services": [{"class": "org.yamcs.http.HttpServer", "args": {"port": setup.http_port}}],
        "instances": [setup.instance],
        "dataDir": str(data_dir),
        "secretKey": "farside-local",
        "yamcs-web": {"tag": "farside"},
    }


@dataclass
class EventDecoding:
    """How 5/x reports become Yamcs events: the enumerated event-id parameter (qualified
    name) and one message template per event ({"eventId": NAME, "template": "..."})."""

    id_parameter: str
    templates: list[dict[str, str]]


def instance_yaml(setup: YamcsSetup, mdb_path: Path, key_path: Path | None,
                  templates_path: Path | None = None, events: EventDecoding | None = None) -> dict[str, Any]:
    # CUC 4+2 octets with no P-field in the packet: the implicit P-field 0x2E (agency epoch)
    pus_time = {"type": "CUC", "epoch": "CUSTOM", "epochUTC": setup.epoch_utc, "timeIncludesLeapSeconds": False,
                "implicitPField": 0x2E}
    tm_link: dict[str, Any] = {
        "name": "tm-frames",
        "class": "org.yamcs.tctm.ccsds.UdpTmFrameLink",
        "port": setup.tm_port,
        "frameType": "TM",
        "spacecraftId": setup.scid,
        "frameLength": setup.tm_frame_length,
        "errorDetection": "CRC16",
        "clcwStream": "clcw",
        "goodFrameStream": "good_frame_stream",
        "badFrameStream": "bad_frame_stream",
        "virtualChannels": [{
            "vcId": setup.tm_vcid,
            "ocfPresent": True,
            "service": "PACKET",
            "maxPacketLength": 2048,
            "packetPreprocessorClassName": "org.yamcs.pus.PusPacketPreprocessor",
            "packetPreprocessorArgs": {"errorDetection": {"type": "CRC-16-CCIIT"}, "timeEncoding": pus_time},
            "stream": "tm_realtime",
        }],
    }
    vc: dict[str, Any] = {
        "vcId": setup.tc_vcid,
        "service": "PACKET",
        "commandPostprocessorClassName": "org.yamcs.pus.PusCommandPostprocessor",
        "commandPostprocessorArgs": {"errorDetection": {"type": "CRC-16-CCIIT"}},
        "stream": "tc_realtime",
        "multiplePacketsPerFrame": False,
        "useCop1": True,
        "clcwStream": "clcw",
        "initialClcwWait": 3600,
        "cop1T1": setup.cop1_t1_s,
        "cop1TxLimit": setup.cop1_tx_limit,
        "slidingWindowWidth": setup.cop1_window,
    }
    tc_link: dict[str, Any] = {
        "name": "tc-frames",
        "class": "org.yamcs.tctm.ccsds.UdpTcFrameLink",
        "host": setup.relay_host,
        "port": setup.tc_port,
        "spacecraftId": setup.scid,
        "maxFrameLength": setup.tc_frame_max,
        "errorDetection": "CRC16",
        "priorityScheme": "FIFO",
        "virtualChannels": [vc],
    }
    if key_path is not None:
        sa: dict[str, Any] = {
            "spi": setup.sdls_spi,
            "class": SDLS_FACTORY,
            # the IV is the ARSN as a 96-bit counter; Yamcs keeps it in its data folder after this
            "args": {"keyFile": str(key_path), "initialSeqNum": f"{setup.sdls_initial_seq:024x}"},
        }
        if setup.sdls_auth_mask:
            sa["authMask"] = setup.sdls_auth_mask
        tc_link["encryption"] = [sa]
        vc["encryptionSpi"] = setup.sdls_spi
        # Yamcs's own UdpTcFrameLink secures a frame COP-1 retransmits a second time (hil.yamcs.extension)
        tc_link["class"] = LINK_CLASS
    event_services: list[dict[str, Any]] = []
    if events is not None and templates_path is not None:
        event_services.append({"class": "org.yamcs.pus.PusEventDecoder", "args": {
            "eventIdParameter": events.id_parameter, "eventTemplateFile": str(templates_path),
            "realtimeStreams": ["tm_realtime"]}})
    return {
        "services": [
            {"class": "org.yamcs.archive.XtceTmRecorder"},
            {"class": "org.yamcs.archive.ParameterRecorder"},
            {"class": "org.yamcs.archive.AlarmRecorder"},
            {"class": "org.yamcs.archive.EventRecorder"},
            {"class": "org.yamcs.archive.ReplayServer"},
            {"class": "org.yamcs.archive.CcsdsTmIndex", "args": {"streams": ["tm_realtime"]}},
            {"class": "org.yamcs.ProcessorCreatorService", "args": {"name": "realtime", "type": "realtime"}},
            {"class": "org.yamcs.archive.CommandHistoryRecorder"},
            {"class": "org.yamcs.parameterarchive.ParameterArchive",
             "args": {"realtimeFiller": {"enabled": True}, "backFiller": {"enabled": False}}},
            *event_services,
        ],
        "dataLinks": [tm_link, tc_link],
        "mdb": [{"type": "xtce", "spec": str(mdb_path)}],
        "streamConfig": {
            "tm": [{"name": "tm_realtime", "processor": "realtime"}],
            "invalidTm": "invalid_tm_stream",
            "cmdHist": ["cmdhist_realtime", "cmdhist_dump"],
            "event": ["events_realtime", "events_dump"],
            "param": ["pp_realtime", "sys_param", "proc_param"],
            "parameterAlarm": ["alarms_realtime"],
            "eventAlarm": ["event_alarms_realtime"],
            "tc": [{"name": "tc_realtime", "processor": "realtime"}],
        },
    }


def processor_yaml() -> dict[str, Any]:
    return {
        "realtime": {
            "services": [
                {"class": "org.yamcs.StreamTmPacketProvider"},
                {"class": "org.yamcs.StreamTcCommandReleaser"},
                {"class": "org.yamcs.tctm.StreamParameterProvider"},
                {"class": "org.yamcs.algorithms.AlgorithmManager"},
                {"class": "org.yamcs.parameter.LocalParameterManager"},
            ],
            "config": {
                "generateEvents": True,
                "subscribeAll": True,
                "persistParameters": False,
                "alarm": {"parameterCheck": True, "parameterServer": "enabled", "eventServer": "enabled"},
                "parameterCache": {"enabled": True, "cacheAll": True, "duration": 600, "maxNumEntries": 4096},
                "tmProcessor": {"ignoreOutOfContainerEntries": False},
            },
        },
        "Archive": {
            "config": {"parameterCache": {"enabled": True, "cacheAll": True, "maxNumEntries": 8}},
            "services": [{"class": "org.yamcs.tctm.ReplayService"}, {"class": "org.yamcs.algorithms.AlgorithmManager"}],
        },
        "ParameterArchive": {
            "config": {"parameterCache": {"enabled": False}},
            "services": [{"class": "org.yamcs.tctm.ReplayService"}, {"class": "org.yamcs.algorithms.AlgorithmManager"}],
        },
        "ArchiveRetrieval": {
            "config": {"subscribeContainerArchivePartitions": False, "parameterCache": {"enabled": False}},
            "services": [{"class": "org.yamcs.tctm.ReplayService"}, {"class": "org.yamcs.algorithms.AlgorithmManager"}],
        },
    }


SETUP_FILE = "farside-yamcs.json"


def write_config(folder: Path | str, setup: YamcsSetup, mdb_xml: str, events: EventDecoding | None = None) -> Path:
    """Write a runnable Yamcs configuration under `folder` (see the module docstring);
    returns its etc folder. Existing files are replaced; the archive in data/ is kept."""
    root = Path(folder).resolve()
    etc, mdb, data = root / "etc", root / "mdb", root / "data"
    try:
        for d in (etc, mdb, data):
            d.mkdir(parents=True, exist_ok=True)
        mdb_path = mdb / "farside.xml"
        mdb_path.write_text(mdb_xml)
        key_path = None
        if setup.sdls_key is not None:
            key_path = etc / f"sdls-key-{setup.sdls_spi}.bin"
            key_path.write_bytes(setup.sdls_key)
            key_path.chmod(0o600)
        templates_path = None
        if events is not None:
            templates_path = etc / "event-templates.yaml"
            templates_path.write_text(json.dumps(events.templates, indent=1) + "\n")  # JSON is YAML
        (etc / "yamcs.yaml").write_text(_yaml(server_yaml(setup, data)) + "\n")
        instance = instance_yaml(setup, mdb_path, key_path, templates_path, events)
        (etc / f"yamcs.{setup.instance}.yaml").write_text(_yaml(instance) + "\n")
        (etc / "processor.yaml").write_text(_yaml(processor_yaml()) + "\n")
        # the farside classes Yamcs loads (hil.yamcs.extension, compiled at start): the secured
        # link's, and the MDB's verifier when it names farside's
        classes = ([LINK_CLASS] if setup.sdls_key is not None else []) + \
            ([VERIFIER_CLASS] if VERIFIER_CLASS in mdb_xml else [])
        summary = {
            "instance": setup.instance, "http_port": setup.http_port, "tm_port": setup.tm_port,
            "tc_port": setup.tc_port, "security": setup.security,
            "relay_ground": f"udp:{setup.tm_port}:{setup.tc_port}",
            "extension": classes or None,
        }
        (root / SETUP_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    except OSError as exc:
        raise FarsideError(f"{root}: cannot write the Yamcs configuration: {exc.strerror or exc}") from None
    return etc


def read_summary(folder: Path | str) -> dict[str, Any]:
    """What `write_config` recorded about a folder (ports, instance, security)."""
    path = Path(folder).resolve() / SETUP_FILE
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        raise FarsideError(f"{Path(folder)}: not a farside Yamcs folder (no {SETUP_FILE}; run farside yamcs init DIR)") from None
