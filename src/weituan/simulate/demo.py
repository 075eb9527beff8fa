"""The demo world: a small town of shoppers and merchants with follows, posts, reposts, comments and likes.

Everything goes through the same services the web UI and API use, so the demo exercises the real
write paths (fan-out, notifications, counters, search indexing). The world is deterministic for a seed.
"""

import random
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from weituan.core.errors import ServiceError

DEMO_PASSWORD = "weituan-demo"

MERCHANTS = [
    ("xiaolongbao", "南翔小笼包", "上海老字号，每天现包。"),
    ("hotpot_chen", "陈记火锅", "成都牛油火锅，团购立减。"),
    ("milk_tea_lab", "奶茶研究所", "Fresh milk tea, Hangzhou."),
    ("fitclub", "FitClub 健身", "24小时健身房，拼团更优惠。"),
]
SHOPPERS = [
    ("alice", "Alice 爱丽丝"),
    ("bob", "Bob 鲍勃"),
    ("carol", "卡罗尔"),
    ("dave", "Dave"),
    ("lihua", "李华"),
    ("wangfang", "王芳"),
    ("zhangwei", "张伟"),
    ("liuyang", "刘洋"),
    ("chenjing", "陈静"),
    ("yangmi", "杨幂不是我"),
    ("zhaolei", "赵雷"),
    ("sunli", "孙丽"),
    ("zhoujie", "周杰"),
    ("wuhao", "吴昊"),
    ("xuqing", "徐晴"),
    ("hema", "何马"),
    ("gaofei", "高飞"),
    ("linlin", "林林"),
    ("tangyan", "唐嫣然"),
    ("fengxiao", "冯笑"),
    ("erin", "Erin"),
    ("frank", "Frank"),
    ("grace", "Grace 格蕾丝"),
    ("henry", "Henry"),
]
TOPICS = [
    "#双十一#",
    "#团购#",
    "#拼团#",
    "#美食探店#",
    "#上海美食#",
    "#健身打卡#",
    "#奶茶#",
    "#deal",
    "#foodie",
]
MERCHANT_LINES = [
    "今日团购：{what}，原价{list}元，团购价{price}元，满{tip}人成团！{topic}",
    "限时秒杀 {what}，只有{stock}份，手慢无 {topic}",
    "New deal: {what} for ¥{price} (was ¥{list}). Team up with friends! {topic}",
    "感谢大家支持，{what}已经卖出{sold}份 {topic}",
]
WHATS = [
    "蟹粉小笼包双人套餐",
    "牛油火锅四人餐",
    "芝士奶盖买一送一",
    "月卡健身",
    "招牌酸菜鱼",
    "Family hotpot set",
]
SHOPPER_LINES = [
    "周末去吃了{merchant}，味道真不错 {topic}",
    "有人一起拼团吗？还差两个人 {topic}",
    "今天的团购很划算，已经下单了 {topic}",
    "Anyone tried @{merchant_user}? Looks like a good deal {topic}",
    "下班路上，想喝奶茶 {topic}",
    "健身第{n}天，坚持！{topic}",
]
REPOST_COMMENTS = [
    "转发微博",
    "好划算！",
    "一起拼吗 @{friend}",
    "mark",
    "已下单",
    "求带",
    "Nice deal",
    "冲！",
]
# Today's talk of the town: a topic many people who do not know one another post about at once, which is
# what trending ranks (a topic pushed by friends of one another, or always busy, is not).
TODAY_TOPIC = "#初雪#"
TODAY_LINES = [
    "下雪了！今年的第一场雪 {topic}",
    "窗外全白了 {topic}",
    "First snow of the year, the whole street is white {topic}",
    "雪天就该吃火锅 {topic}",
    "地铁站门口有人在堆雪人 {topic}",
    "下班路上踩雪，咯吱咯吱 {topic}",
    "Snow day! Hot milk tea weather {topic}",
    "拍了好多雪景照片 {topic}",
]
COMMENTS = [
    "好吃吗？",
    "在哪里？",
    "已拼",
    "求链接",
    "看起来不错",
    "上次去排了一小时队",
    "Thanks for sharing!",
]


@dataclass
class DemoSummary:
    users: int
    follows: int
    posts: int
    reposts: int
    comments: int
    likes: int
    deals: int = 0
    orders: int = 0

    def __str__(self) -> str:
        return (
            f"Demo world: {self.users} users, {self.follows} follows, {self.posts} posts, "
            f"{self.reposts} reposts, {self.comments} comments, {self.likes} likes, "
            f"{self.deals} deals with {self.orders} orders. "
            f"Log in as alice (or any demo user) with password {DEMO_PASSWORD!r}."
        )


def _progress(enabled: bool, step: str) -> None:
    if enabled:
        print(f"  · {step}", file=sys.stderr, flush=True)


def demo_world_build(*, seed: int = 2012, progress: bool = False) -> DemoSummary:
    """Create the demo world on an empty database; refused (`demo_not_empty`) once anyone has signed up.

    Its people have fixed names: on a database that has users, it would collide with them or with the
    demo world already there.
    """
    from weituan.accounts.models import User
    from weituan.core.testing import make_user
    from weituan.microblog.services.interactions import bookmark_add, comment_create, like_add
    from weituan.microblog.services.posts import post_create, repost_create
    from weituan.microblog.services.relations import follow_create

    if User.objects.exists():
        raise ServiceError(
            "the database already has users: the demo world is built only on an empty one",
            code="demo_not_empty",
        )

    rng = random.Random(seed)
    _progress(progress, "people")
    # The town has existed for a while: accounts joined weeks ago, as they would have on a live site.
    now = timezone.now()

    password_hash = make_password(DEMO_PASSWORD)

    def joined() -> Any:
        return now - timedelta(days=rng.randint(20, 400))

    with transaction.atomic():
        merchants = [
            make_user(
                username,
                display_name=name,
                bio=bio,
                merchant=True,
                password_hash=password_hash,
                date_joined=joined(),
            )
            for username, name, bio in MERCHANTS
        ]
        shoppers = [
            make_user(username, display_name=name, password_hash=password_hash, date_joined=joined())
            for username, name in SHOPPERS
        ]
        make_user(
            "olivia",
            display_name="Olivia 运营",
            operator=True,
            password_hash=password_hash,
            date_joined=joined(),
        )
    people = merchants + shoppers

    _progress(progress, "follows")
    follows = 0
    linked: dict[int, set[int]] = {person.id: set() for person in people}
    for shopper in shoppers:
        # Everybody follows a few merchants; friendships follow a power law (early users are popular).
        targets: set[Any] = set(rng.sample(merchants, rng.randint(1, len(merchants))))
        for _ in range(rng.randint(2, 9)):
            weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(shoppers))]
            targets.add(rng.choices(shoppers, weights=weights)[0])
        targets.discard(shopper)
        for target in targets:
            follow_create(follower=shopper, followee_id=target.id)
            follows += 1
            linked[shopper.id].add(target.id)
            linked[target.id].add(shopper.id)

    _progress(progress, "posts")
    posts: list[Any] = []
    for round_no in range(6):
        for merchant in merchants:
            line = rng.choice(MERCHANT_LINES)
            price = rng.choice([19, 39, 59, 88, 99, 128])
            text = line.format(
                what=rng.choice(WHATS),
                list=price * 2,
                price=price,
                tip=rng.choice([10, 20, 50]),
                stock=rng.choice([9, 50, 100]),
                sold=rng.randint(10, 500),
                topic=rng.choice(TOPICS),
            )
            posts.append(post_create(author=merchant, text=text))
        for shopper in rng.sample(shoppers, 10):
            merchant = rng.choice(merchants)
            text = rng.choice(SHOPPER_LINES).format(
                merchant=merchant.display_name,
                merchant_user=merchant.username,
                topic=rng.choice(TOPICS),
                n=round_no + 1,
            )
            posts.append(post_create(author=shopper, text=text))

    _progress(progress, "today's talk")
    for author in _strangers(rng.sample(people, len(people)), linked, len(TODAY_LINES)):
        posts.append(post_create(author=author, text=rng.choice(TODAY_LINES).format(topic=TODAY_TOPIC)))

    _progress(progress, "reposts, comments and likes")
    reposts = comments = likes = 0
    frontier = [p for p in posts if p.author in merchants]
    for _ in range(60):
        parent = rng.choice(frontier)
        reposter = rng.choice(shoppers)
        if reposter.id == parent.author_id:
            continue
        comment = rng.choice(REPOST_COMMENTS).format(friend=rng.choice(shoppers).username)
        hop = repost_create(reposter=reposter, post_id=parent.id, comment=comment)
        frontier.append(hop)
        reposts += 1
    for post in rng.sample(posts, min(40, len(posts))):
        for author in rng.sample(people, rng.randint(1, 3)):
            if author.id != post.author_id:
                comment_create(author=author, post_id=post.id, text=rng.choice(COMMENTS))
                comments += 1
    for post in posts + frontier:
        for user in rng.sample(people, rng.randint(0, 6)):
            if user.id != post.author_id:
                like_add(user=user, post_id=post.id)
                likes += 1
    # Each shopper keeps a few posts (收藏), drawn apart so the rest of the world is as before.
    keeping = random.Random(seed + 1)
    for user in shoppers:
        for post in keeping.sample(posts, min(keeping.randint(0, 3), len(posts))):
            if user.id != post.author_id:
                bookmark_add(user=user, post_id=post.id)
    _progress(progress, "deals and orders")
    deals, cards, orders, deal_reposts = _demo_deals(rng, merchants=merchants, shoppers=shoppers)
    return DemoSummary(
        users=len(people) + 1,
        follows=follows,
        posts=len(posts) + cards,
        reposts=reposts + deal_reposts,
        comments=comments,
        likes=likes,
        deals=deals,
        orders=orders,
    )


def _strangers(candidates: list[Any], linked: dict[int, set[int]], count: int) -> list[Any]:
    """Up to `count` of `candidates`, in their order, none of whom follows or is followed by another."""
    chosen: list[Any] = []
    for person in candidates:
        if len(chosen) < count and not any(other.id in linked[person.id] for other in chosen):
            chosen.append(person)
    return chosen


# (merchant, title, list price, deal price, units, tipping point, buyers now, team price, team size,
#  starts in hours): one deal that has tipped, one a team deal with a team waiting for its last member,
# one still short of its tipping point, one on the calendar.
DEMO_DEALS = [
    ("xiaolongbao", "南翔小笼包 双人套餐 (2 baskets + soup)", 8800, 3900, 200, 8, 11, None, None, 0),
    ("hotpot_chen", "陈记火锅 四人餐 Hotpot for four", 39800, 19900, 100, 5, 3, 16800, 3, 0),
    ("milk_tea_lab", "奶茶研究所 任选两杯 Any two teas", 5600, 2500, 300, 30, 6, None, None, 0),
    ("fitclub", "FitClub 月卡 One-month pass", 39900, 19900, 50, 10, 0, None, None, 20),
]


def _demo_deals(
    rng: random.Random, *, merchants: list[Any], shoppers: list[Any]
) -> tuple[int, int, int, int]:
    """Each merchant's deal, published as a deal card on the micro-blog, shared by reposts and bought
    through the same services as checkout: returns (deals, deal card posts, orders, reposts)."""
    from weituan.deals.services.deals import DealInput, deal_create, deal_publish, deal_tip_check
    from weituan.deals.services.orders import order_place
    from weituan.deals.services.wallet import TOP_UP_PROFILES, wallet_top_up
    from weituan.microblog.services.posts import repost_create

    # Play money exists only in dev and demo mode; elsewhere the deals are published and nobody buys.
    shopping = settings.PROFILE in TOP_UP_PROFILES
    for shopper in shoppers if shopping else []:
        wallet_top_up(user=shopper, amount=100_000, key=f"demo-top-up-{shopper.username}")
    by_name = {merchant.username: merchant for merchant in merchants}
    now = timezone.now()
    cards = orders = reposts = 0
    for name, title, list_price, price, units, tip, buyers, team_price, team_size, in_hours in DEMO_DEALS:
        merchant = by_name[name]
        starts = now + timedelta(hours=in_hours) if in_hours else now - timedelta(hours=rng.randint(2, 30))
        deal = deal_create(
            merchant=merchant,
            data=DealInput(
                title=title,
                description=f"{merchant.display_name}: {title}",
                list_price=list_price,
                deal_price=price,
                max_quantity=units,
                tipping_point=tip,
                per_user_limit=2,
                team_price=team_price,
                team_size=team_size,
                starts_at=starts,
                ends_at=starts + timedelta(days=rng.randint(3, 7)),
            ),
        )
        deal = deal_publish(deal_id=deal.id, by=merchant)
        if deal.post_id is not None:
            cards += 1
            for sharer in rng.sample(shoppers, 2):
                repost_create(reposter=sharer, post_id=deal.post_id, comment="一起拼！")
                reposts += 1
        if in_hours or not shopping:
            continue
        crowd = rng.sample(shoppers, buyers)
        if team_size:
            leader = order_place(deal_id=deal.id, buyer=crowd[0], quantity=1, team="start")
            for member in crowd[1 : team_size - 1]:
                order_place(deal_id=deal.id, buyer=member, quantity=1, team=leader.team_id)
            crowd = crowd[team_size - 1 :]
            orders += team_size - 1
        for buyer in crowd:
            order_place(deal_id=deal.id, buyer=buyer, quantity=1)
            orders += 1
        deal_tip_check(deal_id=deal.id)
    return len(DEMO_DEALS), cards, orders, reposts


def demo_world_build_if_empty(*, progress: bool = False) -> DemoSummary | None:
    from weituan.accounts.models import User

    if User.objects.exists():
        return None
    summary = demo_world_build(progress=progress)
    print(summary, file=sys.stderr, flush=True)
    return summary
