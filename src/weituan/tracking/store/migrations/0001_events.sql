-- Every event: link clicks, page views, API and PostHog captures, server-side business events.
-- Ordered by visitor then time, so per-visitor scans (sessions, touch paths) read one range.
-- ReplacingMergeTree collapses an event stored twice by a race between two movers (same key).
CREATE TABLE IF NOT EXISTS events (
    event_id String,
    event LowCardinality(String),
    ts DateTime64(3, 'UTC'),
    visitor_id String,
    user_id UInt64 DEFAULT 0,
    url String DEFAULT '',
    referrer String DEFAULT '',
    referrer_domain LowCardinality(String) DEFAULT '',
    channel LowCardinality(String) DEFAULT '',
    source String DEFAULT '',
    medium LowCardinality(String) DEFAULT '',
    campaign String DEFAULT '',
    hop_depth UInt16 DEFAULT 0,
    sharer_id UInt64 DEFAULT 0,
    link_id UInt64 DEFAULT 0,
    post_id UInt64 DEFAULT 0,
    deal_id UInt64 DEFAULT 0,
    order_id String DEFAULT '',
    revenue Int64 DEFAULT 0,
    currency LowCardinality(String) DEFAULT '',
    props String DEFAULT '{}',
    origin LowCardinality(String) DEFAULT '',
    api_key_id UInt64 DEFAULT 0,
    device LowCardinality(String) DEFAULT '',
    user_agent String DEFAULT '',
    ip String DEFAULT '',
    is_bot UInt8 DEFAULT 0,
    bot_reason LowCardinality(String) DEFAULT '',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 4,
    INDEX idx_link link_id TYPE minmax GRANULARITY 4
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (visitor_id, ts, event_id);

-- The first source that brought each visitor, kept forever (events may expire, this does not).
-- `ver` is larger for earlier touches, so the replacing merge keeps the earliest one.
CREATE TABLE IF NOT EXISTS first_touch (
    visitor_id String,
    ts DateTime64(3, 'UTC'),
    channel LowCardinality(String),
    source String DEFAULT '',
    medium String DEFAULT '',
    campaign String DEFAULT '',
    referrer_domain String DEFAULT '',
    link_id UInt64 DEFAULT 0,
    sharer_id UInt64 DEFAULT 0,
    hop_depth UInt16 DEFAULT 0,
    post_id UInt64 DEFAULT 0,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
ORDER BY visitor_id;

-- Identity merge: an alias (cookie id, anonymous distinct_id) belongs to a person
-- ('u:<user id>' after login, or the distinct_id a PostHog $identify named). The latest link wins.
CREATE TABLE IF NOT EXISTS identities (
    alias_id String,
    person_id String,
    user_id UInt64 DEFAULT 0,
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(ts)
ORDER BY alias_id;
