"""The first-party visitor cookie and where a short link sends the browser."""

from weituan.tracking.links_cache import ResolvedLink

VISITOR_COOKIE = "wt_vid"
VISITOR_MAX_AGE = 2 * 365 * 24 * 3600


def visitor_id_valid(value: str) -> bool:
    if not 8 <= len(value) <= 64:
        return False
    return value.isalnum() or value.replace("-", "").replace("_", "").isalnum()


def redirect_target(link: ResolvedLink, code: str) -> str:
    """The target, carrying our share token `wt_s` so the landing page view is credited to the share.

    Outbound links go to the exact URL: a third-party page gets no parameter of ours.
    """
    if link.facts.channel == "outbound":
        return link.target_url
    base, hash_mark, fragment = link.target_url.partition("#")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}wt_s={code}{hash_mark}{fragment}"
