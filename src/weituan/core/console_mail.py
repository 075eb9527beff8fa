"""Development mail written to the console as it reads, so a password reset's link can be followed."""

import email.policy
from typing import Any

from django.core.mail.backends import console

# Python's email package base64-encodes a body with a line longer than 78 bytes: a line of Chinese, or a
# reset link, is. Allowing lines up to the RFC's 998 keeps the body as it was written (8bit), and utf8
# leaves the subject unencoded.
_AS_WRITTEN = email.policy.default.clone(max_line_length=998, utf8=True)


class ConsoleEmailBackend(console.EmailBackend):
    """Django's console backend, printing headers and body unencoded."""

    def write_message(self, message: Any) -> None:
        text = message.message(policy=_AS_WRITTEN).as_bytes().decode("utf-8")
        self.stream.write(f"{text}\n")
        self.stream.write("-" * 79)
        self.stream.write("\n")
