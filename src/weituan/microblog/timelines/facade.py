"""What the rest of the micro-blog calls to get posts into (and out of) timelines."""


def post_distribute(*, post_id: int) -> None:
    """Schedule the fan-out of a new original post or repost, after the current transaction commits."""
    raise NotImplementedError


def post_withdraw(*, post_id: int, author_id: int) -> None:
    """Remove a deleted post from every timeline, after the current transaction commits."""
    raise NotImplementedError
