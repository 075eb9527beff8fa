"""Rows of the timelines app: home-timeline entries (database backend), per-user timeline state, fan-out jobs.

Ids of users, posts and authors are plain integers rather than foreign keys: fan-out writes these rows in
bulk, and a key check per row would cost more than the rare stale entry (reads drop deleted posts anyway).
"""

from django.db import models
from django.db.models.functions import Now

from weituan.core.states import StateGraph

FANOUT_GRAPH = StateGraph.declare(
    "fanout",
    initial="pending",
    edges={
        "pending": ["delivering", "skipped", "withdrawn"],
        "delivering": ["delivered", "withdrawn"],
        "delivered": ["withdrawn"],
        "skipped": ["withdrawn"],
    },
)


class TimelineEntry(models.Model):
    """One post in one user's home timeline. `origin_author_id` is the root's author for a repost.

    The primary key (user_id, post_id) is the table's only index: it makes a repeated delivery a no-op
    and serves the newest-first read (walked backwards), and one index keeps fan-out inserts cheap. On
    SQLite the table has no rowid, its rows stored in that key's tree (`sqlite_table`).
    """

    pk = models.CompositePrimaryKey("user_id", "post_id")
    user_id = models.BigIntegerField()
    post_id = models.BigIntegerField()
    author_id = models.BigIntegerField()
    origin_author_id = models.BigIntegerField()


class TimelineState(models.Model):
    """When a user last read their home timeline, and when it was last built from their follows.

    Fan-out delivers only to users who read within FANOUT_ACTIVE_DAYS; anyone else's timeline is
    rebuilt from their follows the next time they read it.
    """

    user_id = models.BigIntegerField(primary_key=True)
    last_read_at = models.DateTimeField()
    built_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["last_read_at"], name="timeline_state_read")]


class FanoutJob(models.Model):
    """The delivery of one post to its author's followers, resumable from `cursor` (last follower id done).

    `progress_at` is when the delivery last started, recorded a batch, or was taken over: a job still
    delivering whose `progress_at` is older than the lease (`FANOUT_LEASE`) was left by a run that
    stopped, and the sweep takes it over. A batch is recorded only by the run that delivered from the
    cursor it finds (the cursor is compared as it is moved), so of two runs of one job only one goes on.
    """

    post_id = models.BigIntegerField(primary_key=True)
    author_id = models.BigIntegerField()
    state = models.CharField(max_length=12, choices=FANOUT_GRAPH.choices(), default=FANOUT_GRAPH.initial)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    cursor = models.BigIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by the database on insert, so the statements making jobs in bulk need not name it.
    progress_at = models.DateTimeField(db_default=Now())
