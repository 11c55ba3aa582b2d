# Key changes over the link (CCSDS 355.1-B in spirit), for firmware_py.sdls.Security: a
# key loaded by OTAR is pre-active until an SA takes it, active while an SA uses it, then
# retired for good (key_free), so no key ever protects two runs of sequence
# numbers. Imported only when a key command arrives.
#
#   load(sec, key_id, iv, wrapped, mac, store=True) -> 0 or a failure code
#       KEY_OTAR: the new 32-octet key AES-256-GCM encrypted under the master key, nonce
#       iv, AAD = key_id u16 big-endian; stored on flash (sastore) when store is True
#   rekey_check(sec, spi, key_id) -> 0 or a failure code      (acceptance)
#   rekey(sec, spi, key_id) -> 0 or a failure code
#       SA_REKEY executed: the SA's mark 0 and the new key id persisted, the old key
#       retired; the switch itself waits for apply_pending (after the report is sent)
#   apply_pending(sec) -> spi or None    the SA takes the new key, ARSN state from 0
#   key_free(sec, key_id) -> bool        no SA uses it and none ever did
from firmware_py.sdls import F_EXECUTION_FAILED, F_KEY_UNAVAILABLE, F_OTAR_BAD_MAC, F_OUT_OF_RANGE


def key_free(sec, key_id):
    # a key id no SA uses and none ever used
    if key_id == 0:
        return False
    for spi in sec._sas:
        if sec._sas[spi].key_id == key_id:
            return False
    return sec.store is None or key_id not in sec.store.retired


def load(sec, key_id, iv, wrapped, mac, store=True):
    # KEY_OTAR: the 32-octet key AES-256-GCM wrapped under the master key (nonce iv,
    # AAD = key id u16 big-endian); store False only checks (acceptance)
    if sec.master is None or sec.store is None or not key_free(sec, key_id):
        return F_KEY_UNAVAILABLE
    g = sec.master
    kid = bytearray(2)
    kid[0] = key_id >> 8
    kid[1] = key_id & 0xFF
    g.begin(iv, 0)
    g.aad(kid, 0, 2)
    g.text(wrapped, 0, 32)
    if not g.check(mac, 0):
        return F_OTAR_BAD_MAC
    if not store:
        return 0
    key = bytearray(wrapped)
    g.ctr(key, 0, 32)
    try:
        _store_key(sec.store, key_id, key)
    except OSError:
        return F_EXECUTION_FAILED
    return 0


def _store_key(st, key_id, key):
    # the keys file rewritten atomically with the new key (sastore's layout)
    import json
    from binascii import hexlify

    from firmware_py.params import write_atomic

    keys = {}
    for kid in st.keys:
        keys[str(kid)] = hexlify(st.keys[kid]).decode()
    keys[str(key_id)] = hexlify(key).decode()
    write_atomic(st.keys_path, json.dumps({"version": 1, "keys": keys}), st.fs)
    st.keys[key_id] = bytes(key)


def rekey_check(sec, spi, key_id):
    if spi not in sec._sas:
        return F_OUT_OF_RANGE
    if not key_free(sec, key_id) or sec.key(key_id) is None:
        return F_KEY_UNAVAILABLE
    return 0


def rekey(sec, spi, key_id):
    # SA_REKEY, executed: persist (mark 0, the new key; the old key retired), and
    # switch once the command's report has gone (apply_pending)
    code = rekey_check(sec, spi, key_id)
    if code:
        return code
    if sec.store is not None:
        st = sec.store
        old = list(st.retired)
        kid = sec._sas[spi].key_id
        if kid not in st.retired:
            st.retired.append(kid)
        try:
            st.set_sa(spi, 0, key_id)
        except OSError:
            st.retired = old
            return F_EXECUTION_FAILED
    sec.pending = (spi, key_id)
    return 0


def apply_pending(sec):
    p = sec.pending
    sec.pending = None
    if p is None:
        return None
    sa = sec._sas[p[0]]
    sa.key_id = p[1]
    sa.set_key(sec.key(p[1]))
    sa.restart(0)
    return p[0]
