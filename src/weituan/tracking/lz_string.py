"""Reading lz-string's Base64 form (its `compressToBase64`), which posthog-js sends as `compression=lz64`.

lz-string is LZW over the UTF-16 code units of a JavaScript string. Codes are written with the fewest
bits that can name every dictionary entry so far, low bit first, and packed into 6-bit Base64 digits
high bit first. Codes 0 and 1 bring in a new 8- or 16-bit character, 2 ends the text, and 3 onwards
name dictionary entries.
"""

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DIGIT_BITS = {char: format(value, "06b") for value, char in enumerate(_ALPHABET)} | {"=": "000000"}
_DIGITS_PER_READ = 4096
_NEW_CHAR, _NEW_WIDE_CHAR, _END = 0, 1, 2


class LzStringInvalid(ValueError):
    """The text is not lz-string Base64, or it stops before its end mark."""


class LzStringTooLong(ValueError):
    """The decoded text would be longer than the limit asked for."""


class _Bits:
    """The bits of the Base64 digits in order, turned into a string of 0s and 1s a block at a time."""

    def __init__(self, text: str):
        self.text = text
        self.next_digit = 0
        self.bits = ""
        self.at = 0

    def read(self, count: int) -> int:
        """The next `count` bits as a number, the first one read being its lowest bit."""
        end = self.at + count
        if end > len(self.bits):
            self._more(end - self.at)
            end = self.at + count
        value = int(self.bits[self.at : end][::-1], 2)
        self.at = end
        return value

    def _more(self, needed: int) -> None:
        rest = self.bits[self.at :]
        digits = self.text[self.next_digit : self.next_digit + _DIGITS_PER_READ]
        self.next_digit += len(digits)
        try:
            self.bits = rest + "".join(map(_DIGIT_BITS.__getitem__, digits))
        except KeyError:
            raise LzStringInvalid("a character is not a Base64 digit") from None
        self.at = 0
        if len(self.bits) < needed:
            raise LzStringInvalid("the text ends before its end mark")


def lz_string_decode_base64(text: str, *, limit: int) -> str:
    """The string `compressToBase64` was given; at most `limit` UTF-16 code units long."""
    bits = _Bits(text)
    first = bits.read(2)
    if first == _END:
        return ""
    if first not in (_NEW_CHAR, _NEW_WIDE_CHAR):
        raise LzStringInvalid("the text does not start with a character")
    previous = chr(bits.read(8 if first == _NEW_CHAR else 16))
    entries = ["", "", "", previous]  # codes 0-2 are commands, not entries
    parts = [previous]
    length = 1
    width = 3  # bits per code
    until_wider = 4  # entries that can still be added before codes need one more bit
    while True:
        code = bits.read(width)
        if code == _END:
            break
        if code in (_NEW_CHAR, _NEW_WIDE_CHAR):
            entries.append(chr(bits.read(8 if code == _NEW_CHAR else 16)))
            code = len(entries) - 1
            until_wider -= 1
            if until_wider == 0:
                until_wider = 1 << width
                width += 1
        if code < len(entries):
            entry = entries[code]
        elif code == len(entries):  # the entry being made by this very step
            entry = previous + previous[0]
        else:
            raise LzStringInvalid("a code names no entry")
        length += len(entry)
        if length > limit:
            raise LzStringTooLong(f"the text is longer than {limit} characters")
        parts.append(entry)
        entries.append(previous + entry[0])
        previous = entry
        until_wider -= 1
        if until_wider == 0:
            until_wider = 1 << width
            width += 1
    # The code units may pair up as surrogates: read them as the UTF-16 they are.
    return "".join(parts).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
