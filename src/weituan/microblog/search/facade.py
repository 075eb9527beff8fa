"""What the rest of the micro-blog calls to keep the search index current."""


def post_index(*, post_id: int) -> None:
    """Index (or re-index) a post's text, after the current transaction commits."""
    raise NotImplementedError


def post_unindex(*, post_id: int) -> None:
    """Drop a deleted post from the index, after the current transaction commits."""
    raise NotImplementedError
