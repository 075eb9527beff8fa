from django.db import migrations, models

# Every account's newest home-timeline post (an original or a repost) as the posts stand; comments are
# not shown in home timelines. Deleted posts count too: the column is an upper bound.
FILL = """
UPDATE microblog_accountstats SET newest_post_id = (
    SELECT MAX(p.id) FROM microblog_post p
    WHERE p.author_id = microblog_accountstats.user_id AND p.kind <> 'comment'
)
"""


class Migration(migrations.Migration):
    dependencies = [("microblog", "0011_follow_reblogs_hidden_by_followee")]

    operations = [
        migrations.AddField(
            model_name="accountstats",
            name="newest_post_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
    ]
