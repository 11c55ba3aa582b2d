"""`farside keys`: per-board SDLS keys in the user's config dir, and rekeying over the link.

    farside keys new --board pico1          # fresh random SA key and OTAR master key (0600)
    farside keys list                       # boards, SAs, key ids, fingerprints (never keys)
    farside keys rotate --link URL --keys pico1
                                            # KEY_OTAR + SA_REKEY through the ground, then
                                            # the key file holds the new key
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import click

from hil.errors import FarsideError


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


@click.group("keys")
def cli() -> None:
    """Per-board SDLS keys (stored outside the repository, owner-only) and rekeying."""


@cli.command("new")
@click.option("--board", required=True, help="board name: the key file is BOARD.json in the user's config dir")
@click.option("--suite", type=click.Choice(["aes-gcm", "gmac"]), default="aes-gcm", show_default=True,
              help="the link SA's suite (SPI 1)")
@click.option("--force", is_flag=True, help="replace an existing key file (the board must then be reflashed)")
def new(board: str, suite: str, force: bool) -> None:
    """Make a board's key file: a random SA key on SPI 1 (key_id 1) and a random OTAR master
    key. Flash it with `farside flash --board ... --keys BOARD`."""
    from hil.gs.keys import new_board_keys
    from protocols.sdls import Suite

    path = new_board_keys(board, force=force, suite=Suite(suite))
    click.echo(f"{board}: new keys in {path} (flash them: farside flash --keys {board})")


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def list_keys(as_json: bool) -> None:
    """The boards with key files: SAs (suite, key_id, fingerprint), master key, TM SPI."""
    from hil.gs.keys import keys_dir, list_board_keys

    rows: list[dict[str, Any]] = []
    for board, path, store, problem in list_board_keys():
        row: dict[str, Any] = {"board": board, "path": str(path)}
        if store is None:
            row["problem"] = problem
        else:
            row["sas"] = [
                {"spi": sa.spi, "suite": sa.suite.value, "key_id": sa.key_id, "fingerprint": _fingerprint(sa.key)}
                for sa in store.sas.values()
            ]
            row["master"] = store.master is not None
            row["tm_spi"] = store.tm_spi
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo(f"no key files in {keys_dir()} (farside keys new --board NAME)")
        return
    for row in rows:
        if "problem" in row:
            click.echo(f"{row['board']}: {row['problem']}")
            continue
        sas = ", ".join(f"SPI {s['spi']} {s['suite']} key {s['key_id']} ({s['fingerprint']})" for s in row["sas"])
        click.echo(f"{row['board']}: {sas}; master {'yes' if row['master'] else 'no'}; {row['path']}")


@cli.command("rotate")
@click.option("--link", "link", envvar="FARSIDE_LINK", required=True, help="the rover's link (URL or port)")
@click.option("--keys", metavar="PATH|BOARD", default=None, help="the key file to rotate (default: $FARSIDE_KEYS)")
@click.option("--spi", type=int, default=1, show_default=True, help="the SA to rekey")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="seconds per command")
@click.option("--archive-root", default="archive", show_default=True, help="folder for the session archive")
def rotate(link: str, keys: str | None, spi: int, timeout: float, archive_root: str) -> None:
    """Rekey an SA over the link: a new random key sent by KEY_OTAR (encrypted under the
    master key), SA_REKEY to switch to it (its sequence numbers restart), a PING under the
    new key; then the key file holds the new key."""
    from hil.gs.keys import load_store, resolve_keys, write_key_file
    from hil.gs.session import Session
    from protocols.sdls import KEY_LENGTH, SaConfig, wrap_key

    setting = resolve_keys(keys)
    if setting.is_dev:
        raise FarsideError("keys rotate: give the board's key file (--keys PATH|BOARD or $FARSIDE_KEYS), not the dev keys")
    store = load_store(setting.path)
    sa = store.sa(spi)
    if sa is None:
        raise FarsideError(f"keys rotate: {setting.path} has no SA for SPI {spi}")
    if store.master is None:
        raise FarsideError(f"keys rotate: {setting.path} has no master key (OTAR needs one)")
    key_id = sa.key_id + 1
    if key_id > 0xFFFF:
        raise FarsideError(f"keys rotate: SPI {spi} has used every key_id")
    new_key = secrets.token_bytes(KEY_LENGTH)
    iv = secrets.token_bytes(12)
    wrapped, mac = wrap_key(store.master, key_id, new_key, iv)
    pending = setting.path.with_name(setting.path.name + ".pending")
    new_sa = SaConfig(spi, sa.suite, new_key, key_id)
    with Session.open(link, keys=setting.path, spi=spi, archive_root=archive_root) as s:
        s.check_dictionary(timeout)
        track = s.send_command("KEY_OTAR", {"key_id": key_id, "iv": iv, "wrapped": wrapped, "mac": mac})
        s.wait_verification(track, timeout)
        click.echo(f"KEY_OTAR: key {key_id} loaded on the rover")
        # the rover holds the key now: keep it beside the key file until the switch is confirmed
        store.sas[spi] = new_sa
        write_key_file(pending, store)
        track = s.send_command("SA_REKEY", {"spi": spi, "key_id": key_id})
        s.wait_verification(track, timeout)
        write_key_file(setting.path, store)
        pending.unlink(missing_ok=True)
        if s.security.sa.key_id != key_id:
            s.rekey(new_sa)
        track = s.send_command("PING")
        s.wait_verification(track, timeout)
    click.echo(f"SPI {spi}: key {key_id} in use ({_fingerprint(new_key)}); {setting.path} updated")
