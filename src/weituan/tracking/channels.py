"""Channel classification: ordered rules held as data, the first match wins (GA4 style).

`channel_of_visit` turns a landing (its URL with UTM parameters, its referrer, and the short link it
came through, if any) into a `Channel`. A landing whose referrer is a payment gateway or the site
itself never starts a new source: it gets `Channel.name == ""` so the visitor keeps the source it had.
Only a tag that names a source (utm_source, utm_medium, or a Google Ads click id) overrides that, as in
GA4: a bare utm_campaign or a share token that names no link is not a source.
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
# Web mail: a link clicked in a message. Listed before the search and social sites they live under
# (mail.google.com is not Google search, mail.sina.com.cn is not Weibo).
EMAIL_DOMAINS = frozenset(
    {
        "mail.google.com", "inbox.google.com", "mail.qq.com", "exmail.qq.com", "mail.163.com", "mail.126.com",
        "mail.yeah.net", "mail.sina.com.cn", "mail.sohu.com", "mail.aliyun.com", "qiye.aliyun.com",
        "outlook.live.com", "outlook.office.com", "outlook.office365.com", "mail.yahoo.com", "mail.yandex.ru",
        "mail.proton.me", "mail.zoho.com",
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
# An Android app that opens a link sends `android-app://<package>` as the referrer. The apps whose web
# site is a known source are read as that site, so the Weibo app counts as weibo.com and Gmail as mail.
APP_HOSTS: dict[str, str] = {
    "com.sina.weibo": "weibo.com", "com.sina.weibolite": "weibo.com", "com.tencent.mm": "weixin.qq.com",
    "com.xingin.xhs": "xiaohongshu.com", "com.zhihu.android": "zhihu.com", "com.douban.frodo": "douban.com",
    "com.ss.android.ugc.aweme": "douyin.com", "com.smile.gifmaker": "kuaishou.com",
    "tv.danmaku.bili": "bilibili.com", "com.twitter.android": "twitter.com", "com.facebook.katana": "facebook.com",
    "com.instagram.android": "instagram.com", "com.linkedin.android": "linkedin.com",
    "com.reddit.frontpage": "reddit.com", "com.pinterest": "pinterest.com",
    "com.zhiliaoapp.musically": "tiktok.com", "com.google.android.youtube": "youtube.com",
    "com.google.android.googlequicksearchbox": "google.com", "com.baidu.searchbox": "baidu.com",
    "com.google.android.gm": "mail.google.com", "com.microsoft.office.outlook": "outlook.live.com",
    "com.tencent.androidqqmail": "mail.qq.com", "com.netease.mail": "mail.163.com",
}  # fmt: skip
# Second-level labels under a country code that are part of the public suffix (google.com.hk, yahoo.co.jp),
# so a bare name in a list matches the registrable domain it names and no other host.
_PUBLIC_SECOND_LEVELS = frozenset({"com", "co", "net", "org", "edu", "gov", "ac", "ne", "or", "go", "gob"})
# Google Ads auto-tagging: a click id on the landing URL means a paid Google click (GA4: google / cpc).
GOOGLE_CLICK_IDS = ("gclid", "wbraid", "gbraid")
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
    ChannelRule("email", "source_domain", EMAIL_DOMAINS),
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
# The rows whose referrers, like the site's own hosts, are never a source.
_EXCLUSIONS = tuple(rule for rule in CHANNEL_RULES if rule.test == "excluded_referrer")


def host_of(url: str) -> str:
    """The lower-case host of a URL without `www.`, or "" when there is none."""
    if not url:
        return ""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname or ""
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def referrer_host_of(referrer: str) -> str:
    """The host a referrer stands for: its own, or for a known Android app the app's web site."""
    host = host_of(referrer)
    if host and referrer[:14].lower() == "android-app://":
        return APP_HOSTS.get(host, host)
    return host


def host_within(host: str, domains: frozenset[str]) -> bool:
    """`host` is one of `domains` or a subdomain of one."""
    if not host:
        return False
    if host in domains:
        return True
    dot = host.find(".")
    while dot != -1:
        if host[dot + 1 :] in domains:
            return True
        dot = host.find(".", dot + 1)
    return False


def domain_matches(host: str, values: frozenset[str]) -> bool:
    """`host` is one of `values` or a subdomain of one, or a bare name in `values` is its registrable
    domain's name (google.co.jp, images.google.de): bing.example.org is not Bing."""
    if host_within(host, values):
        return True
    labels = host.split(".")
    for index, label in enumerate(labels[:-1]):
        if label in values and _is_public_suffix(labels[index + 1 :]):
            return True
    return False


def _is_public_suffix(labels: list[str]) -> bool:
    if len(labels) == 1:
        return labels[0].isalpha()
    return len(labels) == 2 and labels[0] in _PUBLIC_SECOND_LEVELS and len(labels[1]) == 2


def utm_of(url: str) -> dict[str, str]:
    """utm_* parameters, Google Ads click ids and our share token `wt_s`, lower-cased like GA4 compares
    them (the token and click ids are kept as sent)."""
    if "?" not in url:
        return {}
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    found = {}
    for key, value in parse_qsl(query):
        if key.startswith("utm_"):
            found[key] = value.strip().lower()
        elif key == "wt_s" or key in GOOGLE_CLICK_IDS:
            found[key] = value
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
    if any(utm.get(key) for key in GOOGLE_CLICK_IDS):
        # GA4 reads an auto-tagged click as google / cpc, ahead of any utm_source or utm_medium.
        utm.update(utm_source="google", utm_medium="cpc")
    ref_host = referrer_host_of(referrer)
    medium = utm.get("utm_medium", "")
    unwanted = bool(ref_host) and (
        ref_host == host_of(url)
        or host_within(ref_host, site_hosts)
        or any(domain_matches(ref_host, rule.values) for rule in _EXCLUSIONS)
    )
    landing = _Landing(
        utm_source=utm.get("utm_source", ""),
        # Our own host or a gateway is never the source, even of a landing whose tag starts one.
        source=utm.get("utm_source") or ("" if unwanted else ref_host),
        medium=medium,
        ref_host=ref_host,
        unwanted=unwanted,
        names_source=bool(utm.get("utm_source") or medium),
    )
    for rule in CHANNEL_RULES:
        if _rule_matches(rule, link, landing):
            return _channel_for(rule.channel, link, utm, landing.source, medium, ref_host)
    return NO_NEW_SOURCE  # unreachable: the last rule always matches


@dataclass(frozen=True)
class _Landing:
    """What the rules test of a landing: its tags, its referrer's host, and whether that may be a source."""

    utm_source: str
    source: str  # utm_source, else the referrer's host
    medium: str
    ref_host: str
    unwanted: bool  # the referrer is our own site or an excluded one (a payment gateway)
    names_source: bool  # utm_source or utm_medium (a click id sets both): a deliberate new source


def _rule_matches(rule: ChannelRule, link: LinkFacts | None, landing: _Landing) -> bool:
    match rule.test:
        case "link_channel":
            return link is not None and link.channel in rule.values
        case "utm_medium":
            if rule.pattern is not None:
                return bool(landing.medium) and bool(rule.pattern.match(landing.medium))
            return landing.medium in rule.values
        case "utm_source":
            return landing.utm_source in rule.values
        case "excluded_referrer":
            # Our own pages and payment gateways never start a source; only a tag naming one does.
            return landing.unwanted and not landing.names_source
        case "source_domain":
            medium = landing.medium
            if rule.unless_medium is not None and medium and rule.unless_medium.match(medium):
                return False
            return domain_matches(landing.source, rule.values)
        case "any_referrer":
            return bool(landing.ref_host)
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
