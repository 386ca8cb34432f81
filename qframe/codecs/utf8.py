"""UTF-8 text from the wire: decode(data) -> str, or ValueError when data is not UTF-8.

QuecPython's firmware is built without unicode strings (MICROPY_PY_BUILTINS_STR_UNICODE off):
there `bytes.decode()` accepts any octets and `UnicodeError` does not exist. Input that must be
text (MQTT strings, commands, A-XDR strings) is checked here the same way on every interpreter:
strictly (no overlong forms, no surrogates, nothing above U+10FFFF), ASCII at C speed.
"""

# second-octet range of each lead octet 0xC2..0xF4 and how many octets follow it
_LEADS = {}
for _lead in range(0xC2, 0xF5):
    if _lead < 0xE0:
        _LEADS[_lead] = (0x80, 0xBF, 1)
    elif _lead < 0xF0:
        _LEADS[_lead] = (0xA0 if _lead == 0xE0 else 0x80, 0x9F if _lead == 0xED else 0xBF, 2)
    else:
        _LEADS[_lead] = (0x90 if _lead == 0xF0 else 0x80, 0x8F if _lead == 0xF4 else 0xBF, 3)


def is_utf8(data):
    """True if data (bytes) is well-formed UTF-8."""
    if not data or max(data) < 0x80:
        return True
    n = len(data)
    i = 0
    while i < n:
        lead = data[i]
        if lead < 0x80:
            i += 1
            continue
        spec = _LEADS.get(lead)
        if spec is None or i + spec[2] >= n:
            return False
        if not spec[0] <= data[i + 1] <= spec[1]:
            return False
        for j in range(i + 2, i + 1 + spec[2]):
            if not 0x80 <= data[j] <= 0xBF:
                return False
        i += 1 + spec[2]
    return True


def decode(data):
    """data (bytes-like) as str; ValueError("not UTF-8") when it is not UTF-8 text."""
    raw = bytes(data)
    if not is_utf8(raw):
        raise ValueError("not UTF-8")
    return raw.decode()
