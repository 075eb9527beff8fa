"""Channel classification: ordered rules held as data, the first match wins (GA4 style).

`channel_of_visit` turns a landing (its URL with UTM parameters, its referrer, and the short link it
came through, if any) into a `Channel`. A landing whose referrer is a payment gateway or the site
itself never starts a new source: it gets `Channel.name == ""` so the visitor keeps the source it had.
"""

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

RuleTest = Literal[
    "link_channel", "utm_medium", "utm_source", "source_domain", "excluded_referrer", "any_referrer", "always"
]

SOCIAL_DOMAINS = frozenset(
    {
        "weibo.com", "weibo.cn", "t.cn", "sina.com.cn", "twitter.com", "x.com", "t.co", "facebook.com",
        "fb.com", "m.facebook.com", "instagram.com", "qzone.qq.com", "douban.com", "xiaohongshu.com",
        "xhslink.com", "zhihu.com", "tieba.baidu.com", "douyin.com", "kuaishou.com", "bilibili.com",
        "weixin.qq.com", "mp.weixin.qq.com", "linkedin.com", "lnkd.in", "reddit.com", "pinterest.com",
        "tiktok.com", "youtube.com", "vk.com", "line.me", "mastodon.social", "threads.net", "bsky.app",
        "weibo", "twitter", "facebook", "douban", "xiaohongshu", "zhihu", "wechat", "qzone", "douyin",
    }
)  # fmt: skip
SEARCH_DOMAINS = frozenset(
    {
        "baidu.com", "m.baidu.com", "google", "bing.com", "cn.bing.com", "sogou.com", "so.com",
        "sm.cn", "shenma", "yahoo.com", "search.yahoo.com", "yandex.ru", "yandex.com", "duckduckgo.com",
        "naver.com", "ecosia.org", "ask.com", "360.cn", "youdao.com", "seznam.cz",
        "baidu", "bing", "sogou", "yahoo", "yandex", "duckduckgo", "naver",
    }
)  # fmt: skip
# Returning from these must never overwrite where the visitor came from (GA4 "unwanted referrals").
PAYMENT_DOMAINS = frozenset(
    {
        "alipay.com", "alipay.hk", "alipayobjects.com", "pay.weixin.qq.com", "wx.tenpay.com", "tenpay.com",
        "paypal.com", "paypal.me", "checkout.stripe.com", "stripe.com", "unionpay.com", "95516.com",
        "jdpay.com", "pay.jd.com", "adyen.com", "klarna.com", "payu.com", "checkout.shopify.com",
        "applepay.apple.com", "pay.google.com",
    }
)  # fmt: skip
PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*|display|banner|cpm)$")


@dataclass(frozen=True)
class ChannelRule:
    """One row of the classification table: if `test` matches one of `values`, the channel is `channel`."""

    channel: str
    test: RuleTest
    values: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None
    # GA4 files a paid click from a social site or a search engine under paid, not under the site.
    unless_medium: re.Pattern[str] | None = None


CHANNEL_RULES: tuple[ChannelRule, ...] = (
    ChannelRule("microblog", "link_channel", frozenset({"microblog"})),
    ChannelRule("push", "link_channel", frozenset({"push"})),
    ChannelRule("push", "utm_medium", frozenset({"push", "web_push", "webpush", "app_push", "notification"})),
    ChannelRule("email", "link_channel", frozenset({"email"})),
    ChannelRule("email", "utm_medium", frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter"})),
    ChannelRule("email", "utm_source", frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter"})),
    ChannelRule("", "excluded_referrer", PAYMENT_DOMAINS),
    ChannelRule("social", "source_domain", SOCIAL_DOMAINS, unless_medium=PAID_MEDIUM),
    ChannelRule("social", "utm_medium", frozenset({"social", "social-network", "social-media", "sm"})),
    ChannelRule("search", "source_domain", SEARCH_DOMAINS, unless_medium=PAID_MEDIUM),
    ChannelRule("search", "utm_medium", frozenset({"organic"})),
    ChannelRule("paid", "utm_medium", pattern=PAID_MEDIUM),
    ChannelRule("referral", "any_referrer"),
    ChannelRule("referral", "utm_medium", frozenset({"referral", "affiliate", "partner"})),
    ChannelRule("direct", "always"),
)


@dataclass(frozen=True)
class LinkFacts:
    """What a short link says about a landing: the share behind it."""

    link_id: int
    channel: str
    hop_depth: int = 0
    sharer_id: int | None = None
    post_id: int | None = None
    deal_id: int | None = None
    campaign: str = ""


@dataclass(frozen=True)
class Channel:
    """Where a visit came from. `name == ""` means "not a new source" (internal, payment gateway)."""

    name: str
    source: str = ""
    medium: str = ""
    campaign: str = ""
    referrer_domain: str = ""
    hop_depth: int = 0
    sharer_id: int | None = None
    link_id: int | None = None
    post_id: int | None = None

    @property
    def starts_source(self) -> bool:
        return self.name != ""

    @property
    def is_repost(self) -> bool:
        return self.name == "microblog" and self.hop_depth > 0


NO_NEW_SOURCE = Channel(name="")


def host_of(url: str) -> str:
    """The lower-case host of a URL without `www.`, or "" when there is none."""
    if not url:
        return ""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname or ""
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def domain_matches(host: str, values: frozenset[str]) -> bool:
    """`host` is one of `values`, a subdomain of one, or carries a bare name as a label (google.co.jp)."""
    if not host:
        return False
    if host in values:
        return True
    labels = host.split(".")
    for index in range(1, len(labels) - 1):
        if ".".join(labels[index:]) in values:
            return True
    return any(label in values for label in labels[:-1] if "." not in label)


def utm_of(url: str) -> dict[str, str]:
    """utm_* parameters and our share token `wt_s`, lower-cased like GA4 compares them."""
    if "?" not in url:
        return {}
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    found = {}
    for key, value in parse_qsl(query):
        if key.startswith("utm_") or key == "wt_s":
            found[key] = value if key == "wt_s" else value.strip().lower()
    return found


def channel_of_visit(
    *,
    url: str = "",
    referrer: str = "",
    link: LinkFacts | None = None,
    site_hosts: frozenset[str] = frozenset(),
) -> Channel:
    """Classify a landing by CHANNEL_RULES. `site_hosts` are the site's own hosts (never a source)."""
    utm = utm_of(url)
    ref_host = host_of(referrer)
    url_host = host_of(url)
    source = utm.get("utm_source") or ref_host
    medium = utm.get("utm_medium", "")
    internal = bool(ref_host) and (ref_host in site_hosts or ref_host == url_host)
    for rule in CHANNEL_RULES:
        if _rule_matches(rule, link, utm, source, medium, ref_host, internal):
            return _channel_for(rule.channel, link, utm, source, medium, ref_host)
    return NO_NEW_SOURCE  # unreachable: the last rule always matches


def _rule_matches(
    rule: ChannelRule,
    link: LinkFacts | None,
    utm: dict[str, str],
    source: str,
    medium: str,
    ref_host: str,
    internal: bool,
) -> bool:
    match rule.test:
        case "link_channel":
            return link is not None and link.channel in rule.values
        case "utm_medium":
            if rule.pattern is not None:
                return bool(medium) and bool(rule.pattern.match(medium))
            return medium in rule.values
        case "utm_source":
            return utm.get("utm_source", "") in rule.values
        case "excluded_referrer":
            # A tagged URL (UTM) is a deliberate new source even when it comes back through our pages.
            return not utm and (internal or domain_matches(ref_host, rule.values))
        case "source_domain":
            if rule.unless_medium is not None and medium and rule.unless_medium.match(medium):
                return False
            return domain_matches(source, rule.values)
        case "any_referrer":
            return bool(ref_host)
        case "always":
            return True
    return False


def _channel_for(
    name: str, link: LinkFacts | None, utm: dict[str, str], source: str, medium: str, ref_host: str
) -> Channel:
    if not name:
        return NO_NEW_SOURCE
    campaign = utm.get("utm_campaign", "")
    if link is not None and name in ("microblog", "push", "email") and link.channel == name:
        return Channel(
            name=name,
            source=source or "weituan",
            medium=("repost" if link.hop_depth > 0 else "original") if name == "microblog" else name,
            campaign=campaign or link.campaign,
            referrer_domain=ref_host,
            hop_depth=link.hop_depth,
            sharer_id=link.sharer_id,
            link_id=link.link_id,
            post_id=link.post_id,
        )
    if name == "direct":
        return Channel(name="direct", source="(direct)", medium="(none)", campaign=campaign)
    default_medium = {"social": "social", "search": "organic", "referral": "referral"}.get(name, name)
    return Channel(
        name=name,
        source=source,
        medium=medium or default_medium,
        campaign=campaign,
        referrer_domain=ref_host,
        link_id=link.link_id if link else None,
    )
