from django.core.mail import EmailMessage


def test_mail_is_delivered_over_smtp_to_the_loopback_server(smtp_inbox):
    EmailMessage(subject="你好", body="团购开始了", to=["alice@example.test"]).send()
    [message] = smtp_inbox.wait(1)
    assert message["To"] == "alice@example.test"
    assert "团购开始了" in message.get_payload(decode=True).decode()
