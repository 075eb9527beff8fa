"""Topic use counters in shares (`TopicCount`), and fewer indexes for every post to write.

The single-column indexes Django makes for the posts' and topic links' keys are dropped where a
composite index begins with the same column; `reply_to` and `deal_id`, empty on most posts, are indexed
only where set. The indexes are dropped by name (the names Django gave them, the same on every
database) rather than by altering the fields, which on SQLite would copy the whole posts table.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# (table, column, index) for each key whose own index goes.
DROPPED = [
    ("microblog_post", "author_id", "microblog_post_author_id_64479518"),
    ("microblog_post", "parent_id", "microblog_post_parent_id_c9bc117d"),
    ("microblog_post", "root_id", "microblog_post_root_id_ff30a4e8"),
    ("microblog_post", "reply_to_id", "microblog_post_reply_to_id_29938bdf"),
    ("microblog_post", "deal_id", "microblog_post_deal_id_a196dde9"),
    ("microblog_posttopic", "post_id", "microblog_posttopic_post_id_98e5af52"),
    ("microblog_posttopic", "topic_id", "microblog_posttopic_topic_id_a1b7f9e9"),
]


def fold_counts_into_topics(apps, schema_editor):
    """Going back: each topic's shares added to its own row, before the shares' table goes."""
    Topic = apps.get_model("microblog", "Topic")
    TopicCount = apps.get_model("microblog", "TopicCount")
    totals = {}
    for topic_id, posts, used in TopicCount.objects.values_list("topic_id", "posts_count", "last_used_at"):
        count, last = totals.get(topic_id, (0, None))
        totals[topic_id] = (count + posts, used if last is None or (used and used > last) else last)
    for topic in Topic.objects.filter(id__in=list(totals)):
        count, last = totals[topic.id]
        topic.posts_count = max(topic.posts_count + count, 0)
        if last is not None and (topic.last_used_at is None or last > topic.last_used_at):
            topic.last_used_at = last
        topic.save(update_fields=["posts_count", "last_used_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("microblog", "0003_quotes_and_follow_requests"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TopicCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("shard", models.PositiveSmallIntegerField()),
                ("posts_count", models.IntegerField(default=0)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "topic",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="counts",
                        to="microblog.topic",
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("topic", "shard"), name="topic_count_shard")],
            },
        ),
        migrations.RunPython(migrations.RunPython.noop, fold_counts_into_topics),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("{column}")',
                )
                for table, column, index in DROPPED
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="post",
                    name="author",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="posts",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="deal_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="parent",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="children",
                        to="microblog.post",
                    ),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="reply_to",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="replies",
                        to="microblog.post",
                    ),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="root",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="tree",
                        to="microblog.post",
                    ),
                ),
                migrations.AlterField(
                    model_name="posttopic",
                    name="post",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="post_topics",
                        to="microblog.post",
                    ),
                ),
                migrations.AlterField(
                    model_name="posttopic",
                    name="topic",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="post_topics",
                        to="microblog.topic",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="post",
            index=models.Index(
                condition=models.Q(("reply_to__isnull", False)), fields=["reply_to"], name="post_reply_to"
            ),
        ),
        migrations.AddIndex(
            model_name="post",
            index=models.Index(
                condition=models.Q(("deal_id__isnull", False)), fields=["deal_id"], name="post_deal_id"
            ),
        ),
    ]
