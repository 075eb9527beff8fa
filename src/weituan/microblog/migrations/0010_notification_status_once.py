from django.db import migrations, models


def forget_repeated_status_notifications(apps, schema_editor):
    """Keep the first `status` notification of each recipient and post, so the constraint can be made."""
    Notification = apps.get_model("microblog", "Notification")
    seen: set[tuple[int, int]] = set()
    repeated = []
    rows = Notification.objects.filter(kind="status").order_by("id").values_list("id", "recipient_id", "post_id")
    for notification_id, recipient_id, post_id in rows.iterator():
        if (recipient_id, post_id) in seen:
            repeated.append(notification_id)
        else:
            seen.add((recipient_id, post_id))
    for start in range(0, len(repeated), 1000):
        Notification.objects.filter(id__in=repeated[start : start + 1000]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('microblog', '0009_follow_notify'),
    ]

    operations = [
        migrations.RunPython(forget_repeated_status_notifications, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='notification',
            constraint=models.UniqueConstraint(condition=models.Q(('kind', 'status')), fields=('recipient', 'post'), name='notification_status_once'),
        ),
    ]
