"""lz-string's `compressToBase64`, as posthog-js runs it for `compression=lz64`: test payloads made here."""

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def lz_string_compress_base64(text: str) -> str:
    """What lz-string's JavaScript `compressToBase64(text)` returns."""
    raw = text.encode("utf-16-le", "surrogatepass")
    units = [chr(int.from_bytes(raw[at : at + 2], "little")) for at in range(0, len(raw), 2)]
    bits: list[str] = []
    codes: dict[str, int] = {}
    unsent: set[str] = set()  # characters in `codes` whose value was not written out yet
    width, until_wider = 2, 2

    def write(value: int, count: int) -> None:
        for _ in range(count):
            bits.append("1" if value & 1 else "0")
            value >>= 1

    def entry_used() -> None:
        nonlocal width, until_wider
        until_wider -= 1
        if until_wider == 0:
            until_wider = 1 << width
            width += 1

    def emit(phrase: str) -> None:
        if phrase in unsent:
            char = ord(phrase)
            if char < 256:
                write(0, width)
                write(char, 8)
            else:
                write(1, width)
                write(char, 16)
            entry_used()
            unsent.discard(phrase)
        else:
            write(codes[phrase], width)
        entry_used()

    phrase = ""
    for unit in units:
        if unit not in codes:
            codes[unit] = len(codes) + 3
            unsent.add(unit)
        if phrase + unit in codes:
            phrase += unit
            continue
        emit(phrase)
        codes[phrase + unit] = len(codes) + 3
        phrase = unit
    if phrase:
        emit(phrase)
    write(2, width)
    bits.extend("0" * (6 - len(bits) % 6))  # the last digit is always closed with at least one 0
    digits = "".join(_ALPHABET[int("".join(bits[at : at + 6]), 2)] for at in range(0, len(bits), 6))
    return digits + "=" * (-len(digits) % 4)
