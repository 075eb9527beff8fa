"""Micro-blog rows. Posts, reposts and comments share one table so ids, paging and the API stay uniform."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from weituan.accounts.models import QuotePolicy
from weituan.core.fields import SnowflakeKey
from weituan.core.ids import next_id


class PostKind(models.TextChoices):
    ORIGINAL = "original", "original"
    REPOST = "repost", "repost"
    COMMENT = "comment", "comment"


class Visibility(models.TextChoices):
    PUBLIC = "public", "public"
    UNLISTED = "unlisted", "unlisted"
    PRIVATE = "private", "followers only"


class Post(models.Model):
    """An original post, a repost (a hop in a repost tree) or a comment.

    A repost points at its `parent` (the post it forwarded) and at the `root` of the tree; `depth` is
    the hop count from the root (1 for a direct repost). Its `text` carries the whole Weibo chain
    (`comment//@parent: their comment...`) while `comment` holds only what this reposter wrote.
    A comment points at the post it comments on through `parent` (and `root` for that post's tree),
    and at most one level deeper through `reply_to` (Weibo shows replies under the first comment).

    Counters: `reposts_count` of an original counts every live repost anywhere in its tree (what Weibo
    shows as 转发); of a repost, only the live reposts made directly of it. `comments_count` of a post
    counts its live comments and replies; of a top comment, its live replies. `likes_count` counts likes.
    `quotes_count` counts, the same way as `reposts_count`, only the reposts that carry a comment of their
    own (Mastodon's quotes).
    """

    id = SnowflakeKey(primary_key=True, default=next_id, editable=False)  # SQLite's rowid (microblog 0023)
    # Each index is one more entry every post writes. The keys' lookups (an author's posts, a post's
    # children, its tree) are served by the composite indexes in Meta; `reply_to` and `deal_id`, empty on
    # most posts, are indexed only where set.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts", db_index=False
    )
    kind = models.CharField(max_length=10, choices=PostKind.choices, default=PostKind.ORIGINAL)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    text = models.TextField()
    comment = models.TextField(blank=True)
    # The hops above a repost, nearest first, as the chain in `text` shows them: each
    # {"post_id", "user_id", "username", "comment"}. Hops that no longer fit the length limit are dropped
    # from the far end (the repost tree keeps every hop). Empty for originals, comments and direct reposts.
    chain = models.JSONField(default=list, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", db_index=False
    )
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="tree", db_index=False
    )
    depth = models.PositiveSmallIntegerField(default=0)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replies", db_index=False
    )
    # A deal card is shown when set; deals sit above the micro-blog, so this is a plain id, not a key.
    deal_id = models.BigIntegerField(null=True, blank=True)
    language = models.CharField(max_length=10, blank=True)
    reposts_count = models.PositiveIntegerField(default=0)
    comments_count = models.PositiveIntegerField(default=0)
    likes_count = models.PositiveIntegerField(default=0)
    # A database default too, so bulk loaders that name their columns need not know this one.
    quotes_count = models.PositiveIntegerField(default=0, db_default=0)
    # Who may quote this post (see QuotePolicy); a followers-only post is always "nobody".
    quote_policy = models.CharField(
        max_length=10, choices=QuotePolicy.choices, default=QuotePolicy.PUBLIC, db_default=QuotePolicy.PUBLIC
    )
    # A quote (a repost with a comment) whose quoted author took back their consent: it no longer shows
    # the post it quoted, and is not counted among its quotes.
    quote_revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["author", "-id"], name="post_author_id"),
            models.Index(fields=["root", "id"], name="post_root_id"),
            models.Index(fields=["parent", "kind", "id"], name="post_parent_kind_id"),
            # Whether a reader reposted a post (the `reblogged` flag of every status they are shown, and
            # a repeated reblog): one probe of (reader, post), however many reposts a viral post has.
            models.Index(fields=["author", "parent"], name="post_author_parent"),
            models.Index(fields=["kind", "-id"], name="post_kind_id"),
            models.Index(fields=["reply_to"], condition=Q(reply_to__isnull=False), name="post_reply_to"),
            models.Index(fields=["deal_id"], condition=Q(deal_id__isnull=False), name="post_deal_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="original", parent__isnull=True) | ~Q(kind="original"),
                name="post_original_has_no_parent",
            ),
            models.CheckConstraint(
                condition=Q(kind="original") | Q(parent__isnull=False, root__isnull=False),
                name="post_repost_or_comment_has_parent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} by {self.author_id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class MediaAttachment(models.Model):
    """An uploaded image, validated and resized; attached to a post when the post is written or edited.

    An image an edit takes off a post is detached from it (`post` empty) and remembers the post in
    `dropped_from`: the post's earlier versions still show it, so it cannot go on another post, but a
    later edit of the same post may put it back. `focus_x` and `focus_y` are Mastodon's focal point
    (-1 to 1 across and up), where a crop of the picture should centre."""

    id = models.BigIntegerField(primary_key=True, default=next_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="media")
    post = models.ForeignKey(Post, null=True, blank=True, on_delete=models.CASCADE, related_name="media")
    dropped_from = models.ForeignKey(Post, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    focus_x = models.FloatField(null=True, blank=True)
    focus_y = models.FloatField(null=True, blank=True)
    file = models.ImageField(upload_to="media/%Y/%m/")
    thumbnail = models.ImageField(upload_to="media/%Y/%m/", blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=1500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class Like(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="likes")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="likes")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "post"], name="like_once")]
        indexes = [models.Index(fields=["post", "-id"], name="like_post_id")]


class Bookmark(models.Model):
    """A post `user` keeps to read again (Weibo's 收藏, Mastodon's bookmark). Private: nobody is told,
    and no counter shows it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "post"], name="bookmark_once")]
        indexes = [models.Index(fields=["user", "-id"], name="bookmark_user_id")]


class Pin(models.Model):
    """A post its author shows first on their profile (Weibo's 置顶, Mastodon's pinned status); at most
    PINS_MAX each (`microblog.services.pins`)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "post"], name="pin_once")]
        indexes = [models.Index(fields=["user", "-id"], name="pin_user_id")]


class PostEdit(models.Model):
    """One version of an edited post, as Mastodon's status edits keep them: the first is what was
    published (written when the post is first edited), each later one an edit. `text` is the post's
    whole text (a repost's with its chain), `comment` what its author wrote of it, `media` the images
    it carried then, in order, each as `{"id": ..., "description": ...}` (its alt text then)."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    comment = models.TextField(blank=True)
    media = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["post", "id"], name="post_edit_post_id")]


class Follow(models.Model):
    """`follower` follows `followee`. With `show_reblogs` off (Mastodon's `reblogs=false`) the followee's
    plain reposts stay out of the follower's home timeline; their quotes (reposts that say something)
    are posts like any other and still come in. With `notify` on (Mastodon's `notify=true`) the follower
    gets a `status` notification for each new post of the followee (not their plain reposts nor
    comments)."""

    follower = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="following_set"
    )
    followee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follower_set"
    )
    # A database default too, so bulk loaders that name their columns need not know this one.
    show_reblogs = models.BooleanField(default=True, db_default=True)
    notify = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_once"),
            models.CheckConstraint(condition=~Q(follower=models.F("followee")), name="follow_not_self"),
        ]
        indexes = [
            # An author's followers in id order, with whether each shows their reposts: a delivery reads
            # them all from the index alone (a 100k-follower post's list 4x faster than through the rows).
            models.Index(fields=["followee", "follower", "show_reblogs"], name="follow_followee_cover"),
            # The few follows with reposts hidden, which every home rebuild of their follower reads.
            models.Index(
                fields=["follower", "followee"], condition=Q(show_reblogs=False), name="follow_reblogs_hidden"
            ),
            # The same follows by followee, which a plain repost's delivery reads again once delivered.
            models.Index(
                fields=["followee", "follower"],
                condition=Q(show_reblogs=False),
                name="follow_reblogs_hidden_by",
            ),
            # The few follows that ask to hear of each new post, which every post's distribution reads.
            models.Index(fields=["followee"], condition=Q(notify=True), name="follow_notify"),
        ]


class RepliesPolicy(models.TextChoices):
    """Mastodon's `replies_policy` of a list: which replies its timeline would show."""

    FOLLOWED = "followed", "followed"
    LIST = "list", "list"
    NONE = "none", "none"


class FollowList(models.Model):
    """A named group of the accounts `owner` follows (Weibo's 分组, Mastodon's list), read as a
    timeline of its members' posts. Private to its owner: nobody else sees it, and members are not told.

    Members are always accounts the owner follows: adding one takes the pair's relation lock and checks
    the follow, and unfollowing or blocking removes the account from the owner's lists under the same
    lock (`microblog.services.lists`, `microblog.services.relations`)."""

    id = models.BigIntegerField(primary_key=True, default=next_id, editable=False)
    # Its lookups are served by the (owner, id) index in Meta.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    title = models.CharField(max_length=100)
    # Stored and answered as Mastodon does; comments never enter a timeline here, so none are filtered.
    replies_policy = models.CharField(
        max_length=10, choices=RepliesPolicy.choices, default=RepliesPolicy.LIST
    )
    # Mastodon's `exclusive` (members' posts leave the home timeline): always false here, see the service.
    exclusive = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "id"], name="follow_list_owner_id")]


class FollowListMember(models.Model):
    """`account` is in `follow_list`; paged by this row's id (when it was added), as Mastodon pages a list's
    accounts."""

    follow_list = models.ForeignKey(
        FollowList, on_delete=models.CASCADE, related_name="members", db_index=False
    )
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follow_list", "account"], name="follow_list_member_once")
        ]
        indexes = [models.Index(fields=["follow_list", "id"], name="follow_list_member_list_id")]


class FollowRequest(models.Model):
    """A request to follow a locked account, waiting for its owner to authorize or reject it.

    While it waits there is no `Follow` row, so nothing of the owner's reaches the requester's timeline.
    """

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follow_requests_sent"
    )
    target = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follow_requests_received"
    )
    # What the follow will have once authorized (see `Follow.show_reblogs` and `Follow.notify`).
    show_reblogs = models.BooleanField(default=True, db_default=True)
    notify = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["requester", "target"], name="follow_request_once"),
            models.CheckConstraint(
                condition=~Q(requester=models.F("target")), name="follow_request_not_self"
            ),
        ]
        indexes = [models.Index(fields=["target", "-id"], name="follow_request_target_id")]


class Block(models.Model):
    """Hides both ways and removes follows in both directions."""

    blocker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocking_set"
    )
    blocked = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocked_by_set"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blocker", "blocked"], name="block_once")]
        indexes = [models.Index(fields=["blocked", "blocker"], name="block_blocked")]


class MuteQuerySet(models.QuerySet["Mute"]):
    def in_force(self, at: datetime | None = None) -> "MuteQuerySet":
        """The mutes not yet over at `at` (now when None): those without an end, and those ending later.
        Every read of a mute goes through this, so a mute past its end hides nothing even before the
        sweep (`mutes_expired_delete`) deletes its row."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at or timezone.now()))


class Mute(models.Model):
    """Hides the muted account's posts from the muter only; the muted account is not told.

    As in Mastodon, a mute may also hide the account's notifications (`hide_notifications`, the
    default) and may end by itself at `expires_at` (NULL: it lasts until lifted).
    """

    muter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="muting_set")
    muted = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="muted_by_set")
    created_at = models.DateTimeField(auto_now_add=True)
    hide_notifications = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = MuteQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["muter", "muted"], name="mute_once")]
        # The sweep's way to the mutes that ended (only those with an end are indexed).
        indexes = [
            models.Index(fields=["expires_at"], name="mute_expires", condition=Q(expires_at__isnull=False))
        ]


class AccountStats(models.Model):
    """Per-account counters, changed only with F() increments inside the write that causes them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="microblog_stats"
    )
    followers_count = models.PositiveIntegerField(default=0)
    following_count = models.PositiveIntegerField(default=0)
    posts_count = models.PositiveIntegerField(default=0)
    last_post_at = models.DateTimeField(null=True, blank=True)
    # The id of the account's newest post a home timeline shows (an original or a repost), written with
    # it and never lowered (a deleted post leaves it): no post of theirs in a home timeline is newer. A
    # home read skips walking a high-follower author whose newest post is older than its page can reach.
    # NULL: not known (walk them).
    newest_post_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        # Finds the authors above the fan-out threshold, whose posts home reads merge in.
        indexes = [models.Index(fields=["followers_count"], name="stats_followers_count")]


class Mention(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentioned_in")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post", "user"], name="mention_once")]


class Topic(models.Model):
    """A #话题# or #tag. `name` is the normalised key (case-folded); `display` keeps the first spelling.

    How many live posts use it, and when it was last used, is this row's `posts_count` and
    `last_used_at` together with its `TopicCount` shares (read them with `stats.topic_counts`). Under
    SQLite's single writer the uses are counted on this row; on PostgreSQL in the shares, because every
    post with a popular topic would otherwise wait for the one before it to commit to count on this row.
    """

    name = models.CharField(max_length=100, unique=True)
    display = models.CharField(max_length=100)
    posts_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)


class TopicCount(models.Model):
    """A share of a topic's use counter: the uses counted by the database connections whose share
    `shard` is (`stats.TOPIC_SHARDS` of them), so concurrent posts of one topic rarely count on the same
    row. A share may go below zero (a post counted in one share and taken back in another); a take-back
    is refused when the sum of a topic's shares and its own row's count is zero, and `stats.topic_counts`
    never shows that sum below zero (two take-backs racing on the last use can both pass the check)."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="counts", db_index=False)
    shard = models.PositiveSmallIntegerField()
    posts_count = models.IntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["topic", "shard"], name="topic_count_shard")]


class PostTopic(models.Model):
    """A post's use of a topic; `author` and `created_at` are copied so trending reads one table."""

    # Both keys' lookups are served by the composite indexes in Meta.
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="post_topics", db_index=False)
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="post_topics", db_index=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post", "topic"], name="post_topic_once")]
        indexes = [
            models.Index(fields=["topic", "-post"], name="post_topic_topic_post"),
            models.Index(fields=["created_at", "topic"], name="post_topic_created"),
        ]


class NotificationKind(models.TextChoices):
    MENTION = "mention", "mention"
    COMMENT = "comment", "comment"
    REPOST = "repost", "repost"
    LIKE = "like", "like"
    FOLLOW = "follow", "follow"
    FOLLOW_REQUEST = "follow_request", "follow request"
    STATUS = "status", "new post"
    UPDATE = "update", "edited a post you reposted"


class Notification(models.Model):
    """One thing a user is told of. A `status` notification (a new post of an account followed with
    `notify`) exists at most once per recipient and post, so a retried distribution cannot tell twice."""

    id = models.BigIntegerField(primary_key=True, default=next_id, editable=False)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    post = models.ForeignKey(Post, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notification_recipient_id"),
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "post"], condition=Q(kind="status"), name="notification_status_once"
            ),
        ]


class HomeReadMarker(models.Model):
    """Where a user stopped reading their home timeline (Mastodon's `home` marker), so a client on another
    device opens at the same post. The notifications marker needs no row: it is what is marked read.
    `version` counts the moves, as Mastodon's does."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_id = models.BigIntegerField()
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField()


class FilterContext(models.TextChoices):
    HOME = "home", "home"
    NOTIFICATIONS = "notifications", "notifications"
    PUBLIC = "public", "public"
    THREAD = "thread", "thread"
    ACCOUNT = "account", "account"


class FilterAction(models.TextChoices):
    WARN = "warn", "warn"
    HIDE = "hide", "hide"


class KeywordFilter(models.Model):
    """A reader's keyword filter (Weibo's 屏蔽关键词, Mastodon's filter): posts with one of its keywords,
    or among its posts, are folded behind a warning or left out, in the places its `context` names
    (comma-joined FilterContext values). An expired filter applies to nothing."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=100)
    context = models.CharField(max_length=60)
    filter_action = models.CharField(max_length=10, choices=FilterAction.choices, default=FilterAction.WARN)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def contexts(self) -> list[str]:
        return [name for name in self.context.split(",") if name]


class FilterKeyword(models.Model):
    """One word or phrase of a filter. `whole_word` matches only where a Latin word begins and ends; a
    Chinese keyword matches anywhere in the text, as Chinese has no spaces between words."""

    filter = models.ForeignKey(KeywordFilter, on_delete=models.CASCADE, related_name="keywords")
    keyword = models.CharField(max_length=100)
    whole_word = models.BooleanField(default=True)


class FilterStatus(models.Model):
    """One post a filter matches whatever its words (and plain reposts of it)."""

    filter = models.ForeignKey(KeywordFilter, on_delete=models.CASCADE, related_name="statuses")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["filter", "post"], name="filter_status_once")]
