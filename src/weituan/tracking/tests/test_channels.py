"""The channel classification table: each row is a landing and the channel it must get."""

import pytest

from weituan.tracking.channels import (
    CHANNEL_RULES,
    NO_NEW_SOURCE,
    LinkFacts,
    channel_of_visit,
    domain_matches,
)

SITE = frozenset({"weituan.example"})
SHARE = LinkFacts(link_id=7, channel="microblog", hop_depth=0, sharer_id=11, post_id=99)
REPOST_HOP2 = LinkFacts(link_id=8, channel="microblog", hop_depth=2, sharer_id=12, post_id=101)
PUSH = LinkFacts(link_id=9, channel="push", campaign="double11")
EMAIL = LinkFacts(link_id=10, channel="email")

TABLE = [
    # (url, referrer, link, channel, source, medium)
    ("https://weituan.example/d/1", "https://weibo.com/u/1", SHARE, "microblog", "weibo.com", "original"),
    ("https://weituan.example/d/1", "", REPOST_HOP2, "microblog", "weituan", "repost"),
    (
        "https://weituan.example/d/1?utm_medium=email",
        "https://google.com/",
        SHARE,
        "microblog",
        "google.com",
        "original",
    ),
    ("https://weituan.example/d/1", "", PUSH, "push", "weituan", "push"),
    ("https://weituan.example/d/1?utm_source=app&utm_medium=push", "", None, "push", "app", "push"),
    ("https://weituan.example/d/1", "", EMAIL, "email", "weituan", "email"),
    (
        "https://weituan.example/?utm_source=newsletter&utm_medium=Email",
        "",
        None,
        "email",
        "newsletter",
        "email",
    ),
    ("https://weituan.example/?utm_source=newsletter", "", None, "email", "newsletter", "email"),
    ("https://weituan.example/", "https://weibo.com/1234/abc", None, "social", "weibo.com", "social"),
    ("https://weituan.example/", "https://m.weibo.cn/status/1", None, "social", "m.weibo.cn", "social"),
    ("https://weituan.example/", "http://t.cn/A6xyz", None, "social", "t.cn", "social"),
    ("https://weituan.example/", "https://t.co/abc", None, "social", "t.co", "social"),
    ("https://weituan.example/", "https://x.com/someone", None, "social", "x.com", "social"),
    ("https://weituan.example/", "https://www.facebook.com/", None, "social", "facebook.com", "social"),
    (
        "https://weituan.example/",
        "https://user.qzone.qq.com/123",
        None,
        "social",
        "user.qzone.qq.com",
        "social",
    ),
    ("https://weituan.example/", "https://www.douban.com/group/1", None, "social", "douban.com", "social"),
    (
        "https://weituan.example/",
        "https://www.xiaohongshu.com/explore",
        None,
        "social",
        "xiaohongshu.com",
        "social",
    ),
    ("https://weituan.example/?utm_source=weibo", "", None, "social", "weibo", "social"),
    ("https://weituan.example/", "https://www.baidu.com/s?wd=团购", None, "search", "baidu.com", "organic"),
    ("https://weituan.example/", "https://www.google.com.hk/", None, "search", "google.com.hk", "organic"),
    (
        "https://weituan.example/",
        "https://www.google.co.jp/search",
        None,
        "search",
        "google.co.jp",
        "organic",
    ),
    ("https://weituan.example/", "https://cn.bing.com/search?q=x", None, "search", "cn.bing.com", "organic"),
    ("https://weituan.example/", "https://www.sogou.com/web", None, "search", "sogou.com", "organic"),
    ("https://weituan.example/", "https://www.so.com/s?q=x", None, "search", "so.com", "organic"),
    (
        "https://weituan.example/?utm_source=baidu&utm_medium=cpc",
        "https://www.baidu.com/",
        None,
        "paid",
        "baidu",
        "cpc",
    ),
    ("https://weituan.example/?utm_medium=ppc&utm_source=x", "", None, "paid", "x", "ppc"),
    (
        "https://weituan.example/?utm_medium=paid_social&utm_source=fb",
        "https://facebook.com/",
        None,
        "paid",
        "fb",
        "paid_social",
    ),
    (
        "https://weituan.example/",
        "https://news.example.org/story",
        None,
        "referral",
        "news.example.org",
        "referral",
    ),
    ("https://weituan.example/", "", None, "direct", "(direct)", "(none)"),
    (
        "https://weituan.example/",
        "https://twitter.com/someone/status/1",
        None,
        "social",
        "twitter.com",
        "social",
    ),
    ("https://weituan.example/", "https://fb.com/groups/1", None, "social", "fb.com", "social"),
    # Bare names in the lists are registrable domains, not any label of a host.
    ("https://weituan.example/", "https://images.google.de/", None, "search", "images.google.de", "organic"),
    (
        "https://weituan.example/",
        "https://search.yahoo.co.jp/s",
        None,
        "search",
        "search.yahoo.co.jp",
        "organic",
    ),
    (
        "https://weituan.example/",
        "https://bing.example.org/post",
        None,
        "referral",
        "bing.example.org",
        "referral",
    ),
    (
        "https://weituan.example/",
        "https://weibo.blog.example.com/",
        None,
        "referral",
        "weibo.blog.example.com",
        "referral",
    ),
    (
        "https://weituan.example/",
        "https://google.blogspot.com/",
        None,
        "referral",
        "google.blogspot.com",
        "referral",
    ),
    # Google Ads auto-tagging is a paid Google click, whatever else the landing carries.
    ("https://weituan.example/d/1?gclid=Cj0KCQjw", "https://www.google.com/", None, "paid", "google", "cpc"),
    ("https://weituan.example/d/1?gclid=Cj0KCQjw", "", None, "paid", "google", "cpc"),
    ("https://weituan.example/d/1?wbraid=CjkKCQjw", "", None, "paid", "google", "cpc"),
    ("https://weituan.example/d/1?gbraid=0AAAAA", "https://www.google.com/", None, "paid", "google", "cpc"),
    (
        "https://weituan.example/d/1?utm_source=newsletter&utm_medium=email&gclid=Cj0",
        "",
        None,
        "paid",
        "google",
        "cpc",
    ),
    (
        "https://weituan.example/d/1?gclid=",
        "https://www.google.com/",
        None,
        "search",
        "google.com",
        "organic",
    ),
    # Android apps as referrers read as their web sites.
    ("https://weituan.example/", "android-app://com.sina.weibo", None, "social", "weibo.com", "social"),
    ("https://weituan.example/", "android-app://com.sina.weibo/", None, "social", "weibo.com", "social"),
    (
        "https://weituan.example/",
        "android-app://com.twitter.android",
        None,
        "social",
        "twitter.com",
        "social",
    ),
    ("https://weituan.example/", "android-app://com.tencent.mm", None, "social", "weixin.qq.com", "social"),
    (
        "https://weituan.example/",
        "android-app://com.google.android.gm",
        None,
        "email",
        "mail.google.com",
        "email",
    ),
    (
        "https://weituan.example/",
        "android-app://com.google.android.googlequicksearchbox/https/www.google.com",
        None,
        "search",
        "google.com",
        "organic",
    ),
    (
        "https://weituan.example/",
        "android-app://com.example.reader",
        None,
        "referral",
        "com.example.reader",
        "referral",
    ),
    # Web mail is e-mail, not the search engine or social site it lives under.
    (
        "https://weituan.example/",
        "https://mail.google.com/mail/u/0/",
        None,
        "email",
        "mail.google.com",
        "email",
    ),
    ("https://weituan.example/", "https://mail.sina.com.cn/", None, "email", "mail.sina.com.cn", "email"),
    # A tag naming a source (utm_source or utm_medium) starts one even from our own pages or a gateway,
    # and the referrer (our own host, the gateway) is never that source.
    (
        "https://weituan.example/d/2?utm_source=weibo&utm_campaign=x",
        "https://weituan.example/d/1",
        None,
        "social",
        "weibo",
        "social",
    ),
    (
        "https://weituan.example/d/2?utm_source=baidu&utm_medium=cpc",
        "https://weituan.example/",
        None,
        "paid",
        "baidu",
        "cpc",
    ),
    (
        "https://weituan.example/order/5?utm_source=newsletter&utm_medium=email",
        "https://mclient.alipay.com/cashier",
        None,
        "email",
        "newsletter",
        "email",
    ),
    (
        "https://weituan.example/d/2?utm_source=partner1",
        "https://weituan.example/",
        None,
        "referral",
        "partner1",
        "referral",
    ),
    ("https://weituan.example/d/2?utm_medium=cpc", "https://weituan.example/d/1", None, "paid", "", "cpc"),
    # Never a new source: payment gateways and the site itself.
    ("https://weituan.example/order/5", "https://mclient.alipay.com/cashier", None, "", "", ""),
    ("https://weituan.example/order/5", "https://pay.weixin.qq.com/", None, "", "", ""),
    ("https://weituan.example/order/5", "https://www.paypal.com/checkout", None, "", "", ""),
    ("https://weituan.example/order/5", "https://checkout.stripe.com/c/pay", None, "", "", ""),
    ("https://weituan.example/order/5", "https://www.unionpay.com/", None, "", "", ""),
    ("https://weituan.example/d/2", "https://weituan.example/d/1", None, "", "", ""),
    ("https://weituan.example/d/2", "https://m.weituan.example/d/1", None, "", "", ""),
    ("https://shop.example/p/2", "https://shop.example/p/1", None, "", "", ""),
    # ...whatever tag names no source: a bare campaign or content tag, a share token naming no link.
    ("https://weituan.example/d/2?utm_campaign=double11", "https://weituan.example/d/1", None, "", "", ""),
    (
        "https://weituan.example/d/2?utm_content=banner&utm_term=x",
        "https://weituan.example/",
        None,
        "",
        "",
        "",
    ),
    ("https://weituan.example/d/2?wt_s=Stale123", "https://weituan.example/d/1", None, "", "", ""),
    (
        "https://weituan.example/order/5?utm_campaign=double11",
        "https://mclient.alipay.com/",
        None,
        "",
        "",
        "",
    ),
    ("https://weituan.example/order/5?wt_s=Stale123", "https://www.paypal.com/checkout", None, "", "", ""),
    ("https://weituan.example/d/2?utm_source=&utm_medium=", "https://weituan.example/d/1", None, "", "", ""),
]


@pytest.mark.parametrize(("url", "referrer", "link", "channel", "source", "medium"), TABLE)
def test_classification_table(url, referrer, link, channel, source, medium):
    got = channel_of_visit(url=url, referrer=referrer, link=link, site_hosts=SITE)
    assert (got.name, got.source, got.medium) == (channel, source, medium)


def test_share_link_carries_hop_sharer_and_post():
    got = channel_of_visit(url="", referrer="", link=REPOST_HOP2, site_hosts=SITE)
    assert (got.hop_depth, got.sharer_id, got.post_id, got.link_id, got.is_repost) == (2, 12, 101, 8, True)
    original = channel_of_visit(url="", referrer="", link=SHARE, site_hosts=SITE)
    assert original.is_repost is False and original.hop_depth == 0


def test_campaign_comes_from_utm_or_the_link():
    tagged = channel_of_visit(url="https://a.example/?utm_medium=email&utm_campaign=Double11", referrer="")
    assert tagged.campaign == "double11"
    assert channel_of_visit(url="", referrer="", link=PUSH).campaign == "double11"


def test_rules_are_ordered_data_ending_in_direct():
    names = [rule.channel for rule in CHANNEL_RULES]
    first = {name: names.index(name) for name in dict.fromkeys(names)}
    order = ["microblog", "push", "email", "social", "search", "paid", "referral", "direct"]
    assert [first[name] for name in order] == sorted(first[name] for name in order)
    assert CHANNEL_RULES[-1].test == "always"
    # The payment-gateway exclusion sits before every referrer-based rule.
    tests = [rule.test for rule in CHANNEL_RULES]
    by_referrer = [index for index, test in enumerate(tests) if test in ("source_domain", "any_referrer")]
    assert tests.index("excluded_referrer") < min(by_referrer)


def test_domain_matching_is_by_label_not_substring():
    assert domain_matches("news.weibo.com", frozenset({"weibo.com"}))
    assert not domain_matches("notweibo.com", frozenset({"weibo.com"}))
    assert not domain_matches("t.cnn.com", frozenset({"t.cn"}))
    assert domain_matches("www.google.de", frozenset({"google"}))
    assert domain_matches("google.com.hk", frozenset({"google"}))
    assert domain_matches("bing", frozenset({"bing"}))  # a utm_source names the engine alone
    assert not domain_matches("bing.example.org", frozenset({"bing"}))
    assert not domain_matches("google.com.evil.example", frozenset({"google"}))
    assert not domain_matches("", frozenset({"google"}))


def test_the_sites_own_hosts_never_start_a_source():
    hosts = frozenset({"weituan.example", "localhost"})
    own = channel_of_visit(
        url="http://localhost:8000/d/1", referrer="http://localhost:8000/", site_hosts=hosts
    )
    assert own == NO_NEW_SOURCE
    # The own-host test is by domain, not by bare name: localhost.example.org is somebody else.
    other = channel_of_visit(
        url="https://weituan.example/", referrer="https://localhost.example.org/", site_hosts=hosts
    )
    assert (other.name, other.source) == ("referral", "localhost.example.org")
