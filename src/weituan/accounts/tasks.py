"""Background tasks of accounts: each takes plain values and calls one service."""

from django.tasks import task

from weituan.accounts.password_reset import password_reset_mail_send


@task
def password_reset_mail_task(email: str, language: str) -> int:
    return password_reset_mail_send(email=email, language=language)
