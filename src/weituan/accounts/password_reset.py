"""Password reset e-mails: written and sent by a background task, in the account's own language."""

from typing import cast
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from weituan.accounts.models import User

SUBJECT_TEMPLATE = "accounts/password_reset_subject.txt"
BODY_TEMPLATE = "accounts/password_reset_email.txt"


def mail_language_of(user: User, fallback: str) -> str:
    """The language a mail to `user` is written in: the one chosen in their profile (`locale`, the
    interface language; `default_language` is only what their new posts are tagged with), else
    `fallback` (the language of the request that asked for the mail)."""
    return user.locale or fallback or settings.LANGUAGE_CODE


def password_reset_mail_send(*, email: str, language: str) -> int:
    """Send a reset link to each active account with a usable password at `email` (matched as Django's
    reset form matches it, ignoring case); returns how many were sent. An unknown address sends none.

    The link's token is made here, when the mail is written: it stays valid for PASSWORD_RESET_TIMEOUT
    from then, until the password or the last login changes. A mail server that refuses raises, so the
    run is recorded as failed.
    """
    site = urlsplit(settings.SITE_URL)
    sent = 0
    for found in PasswordResetForm().get_users(email):
        user = cast(User, found)
        context = {
            "email": user.email,
            "user": user,
            "uid": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
            # The mail links to the site's public address (WEITUAN_SITE_URL), never to whatever host
            # the request that asked for it came in by.
            "site_name": settings.SITE_NAME,
            "protocol": site.scheme,
            "domain": site.netloc,
        }
        with translation.override(mail_language_of(user, language)):
            subject = "".join(render_to_string(SUBJECT_TEMPLATE, context).splitlines())
            body = render_to_string(BODY_TEMPLATE, context)
        EmailMessage(subject, body, None, [user.email]).send()
        sent += 1
    return sent
