"""Facts about the client of a request: bot or person, device class, and an IP address made anonymous."""

import hashlib
import ipaddress
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings

# Lower-case fragments of crawler, preview-fetcher and script user agents. Substring tests on a
# lower-cased string are far cheaper than one big regex, and user agents repeat, so answers are cached.
# Each names a robot, never an app a person browses with: the Sogou browser ("SogouMobileBrowser") and
# Telegram's in-app browser ("Telegram-Android") are people, while Sogou's crawlers ("Sogou web spider")
# are caught by "spider" and Telegram's link previews by "telegrambot". There is no "bot " either: a phone
# model such as "CUBOT X30" would match it.
BOT_TOKENS: tuple[str, ...] = (
    "bot/", "bot;", "bot)", "-bot", "_bot", "spider", "crawl", "slurp", "scrape", "facebookexternalhit",
    "facebot", "embedly", "preview", "whatsapp", "telegrambot", "slack", "discord", "skype", "yisou",
    "bytespider", "petalbot", "mediapartners", "adsbot", "lighthouse", "pagespeed", "headlesschrome",
    "phantomjs", "python-requests", "python-urllib", "aiohttp", "httpx", "curl/", "wget/", "go-http-client",
    "java/", "libwww", "scrapy", "feedfetcher", "uptime", "pingdom", "check_http", "googlebot", "bingbot",
    "baiduspider", "360spider", "yandex", "duckduckbot", "applebot", "semrush", "ahrefs", "mj12bot",
)  # fmt: skip
_TABLET_TOKENS = ("ipad", "tablet", "kindle", "silk/", "playbook")
_MOBILE_TOKENS = (
    "mobile",
    "iphone",
    "ipod",
    "windows phone",
    "micromessenger",
    "weibo",
    "harmonyos",
    "opera mini",
)
_DESKTOP_TOKENS = ("windows", "macintosh", "x11", "linux", "cros")


@lru_cache(maxsize=8192)
def _ua_facts(user_agent: str) -> tuple[bool, str]:
    """(is a bot, device class) of a user agent."""
    ua = user_agent.lower()
    if not ua.strip():
        return False, "other"
    if any(token in ua for token in BOT_TOKENS):
        return True, "bot"
    if any(token in ua for token in _TABLET_TOKENS) or ("android" in ua and "mobile" not in ua):
        return False, "tablet"
    if any(token in ua for token in _MOBILE_TOKENS):
        return False, "mobile"
    if any(token in ua for token in _DESKTOP_TOKENS):
        return False, "desktop"
    return False, "other"


def bot_reason(*, method: str, user_agent: str, headers: dict[str, str]) -> str:
    """Why a click is not a person's click ("" when it is): HEAD, prefetch, or a known bot."""
    if method == "HEAD":
        return "head"
    if headers:
        purpose = (
            headers.get("purpose") or headers.get("sec-purpose") or headers.get("x-purpose") or ""
        ).lower()
        if "prefetch" in purpose or "preview" in purpose or "prerender" in purpose:
            return "prefetch"
        if (headers.get("x-moz") or "").lower() == "prefetch":
            return "prefetch"
    if not user_agent.strip():
        return "no_user_agent"
    if _ua_facts(user_agent)[0]:
        return "bot_user_agent"
    return ""


def device_class(user_agent: str) -> str:
    """desktop, mobile, tablet, bot or other."""
    return _ua_facts(user_agent)[1]


@lru_cache(maxsize=8192)
def ip_anonymous(raw: str) -> str:
    """The network of an address, never the address: IPv4 to /24, IPv6 to /48."""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def ip_daily_hash(raw: str, *, day: datetime | None = None) -> str:
    """A hash of the address that changes every day (salted by date and the secret key), for counting."""
    moment = day or datetime.now(UTC)
    salt = f"{settings.SECRET_KEY}:{moment:%Y-%m-%d}".encode()
    return hashlib.blake2b(raw.encode(), key=salt[-64:], digest_size=8).hexdigest()
