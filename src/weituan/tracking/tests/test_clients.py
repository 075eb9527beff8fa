"""Person or robot, by user agent: real browsers and in-app browsers are people, real crawlers are not."""

import pytest

from weituan.tracking.clients import bot_reason, device_class

# Browsers people click share links in, as these apps send them. None of them is a bot.
PEOPLE = {
    "sogou mobile browser": "Mozilla/5.0 (Linux; Android 10; V1938CT Build/QP1A.190711.020; wv) AppleWebKit/537.36"
    " (KHTML, like Gecko) Version/4.0 Chrome/68.0.3440.106 Mobile Safari/537.36 SogouMobileBrowser/5.38.6",
    "sogou search app": "Mozilla/5.0 (Linux; Android 11; M2012K11AC Build/RKQ1.200826.002; wv) AppleWebKit/537.36"
    " (KHTML, like Gecko) Version/4.0 Chrome/87.0.4280.141 Mobile Safari/537.36 SogouSearch Android1.0"
    " version3.0 AppVersion/11202",
    "telegram in-app browser": "Mozilla/5.0 (Linux; Android 13; SM-S911B Build/TP1A.220624.014; wv)"
    " AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36"
    " Telegram-Android/10.5.0 (Samsung SM-S911B; Android 13; SDK 33; HIGH)",
    "cubot phone chrome": "Mozilla/5.0 (Linux; Android 11; CUBOT KINGKONG 5 Pro) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/120.0.6099.230 Mobile Safari/537.36",
    "cubot x30 chrome": "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/119.0.6045.163 Mobile Safari/537.36",
    "wechat": "Mozilla/5.0 (Linux; Android 12; PEHM00 Build/SKQ1.210216.001; wv) AppleWebKit/537.36"
    " (KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 XWEB/5023 MMWEBSDK/20230405"
    " MMWEBID/2585 MicroMessenger/8.0.35.2360(0x2800235B) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN",
    "weibo": "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Mobile/15E148 Weibo (iPhone14,2__weibo__13.6.1__iphone__os16.5)",
    "iphone safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
}

# Crawlers and link-preview fetchers, as they announce themselves.
ROBOTS = {
    "sogou web spider": "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
    "sogou inst spider": "Sogou inst spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
    "telegram link preview": "TelegramBot (like TwitterBot)",
    "googlebot smartphone": "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/120.0.6099.216 Mobile Safari/537.36 (compatible; Googlebot/2.1;"
    " +http://www.google.com/bot.html)",
    "baiduspider": "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "bytespider": "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile"
    " Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
    "360spider": "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/50.0.2661.102 Safari/537.36; 360Spider",
    "yisou": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/69.0.3497.81 YisouSpider/5.0 Safari/537.36",
    "twitterbot": "Twitterbot/1.0",
    "facebook preview": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "whatsapp preview": "WhatsApp/2.23.20.0 A",
    "slack preview": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "discordbot": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "linkedinbot": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "applebot": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "petalbot": "Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
}


@pytest.mark.parametrize("user_agent", PEOPLE.values(), ids=PEOPLE.keys())
def test_real_browsers_and_in_app_browsers_are_people_on_phones(user_agent):
    assert bot_reason(method="GET", user_agent=user_agent, headers={}) == ""
    assert device_class(user_agent) == "mobile"


@pytest.mark.parametrize("user_agent", ROBOTS.values(), ids=ROBOTS.keys())
def test_real_crawlers_and_preview_fetchers_are_bots(user_agent):
    assert bot_reason(method="GET", user_agent=user_agent, headers={}) == "bot_user_agent"
    assert device_class(user_agent) == "bot"
