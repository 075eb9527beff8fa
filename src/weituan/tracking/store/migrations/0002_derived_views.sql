-- First touch and identity links are derived from events inside the store, so every ingestion path
-- (write buffer, API, PostHog capture, outbox) feeds them with its one insert.

CREATE MATERIALIZED VIEW IF NOT EXISTS first_touch_mv TO first_touch AS
SELECT visitor_id, ts, channel, source, medium, campaign, referrer_domain, link_id, sharer_id, hop_depth,
       post_id, toUInt64(32503680000000 - toUnixTimestamp64Milli(ts)) AS ver
FROM events
WHERE channel != '' AND is_bot = 0;

-- A signed-in event links its visitor to the account ('u:<id>'; a shop's users live under its key);
-- PostHog's $identify links the anonymous id to the named one, $create_alias the alias to its target.
CREATE MATERIALIZED VIEW IF NOT EXISTS identities_mv TO identities AS
SELECT alias_id, person_id, user_id, ts
FROM (
    SELECT
        multiIf(event = '$identify', JSONExtractString(props, '$anon_distinct_id'), visitor_id) AS alias_id,
        multiIf(
            event = '$identify', visitor_id,
            event = '$create_alias', JSONExtractString(props, 'alias'),
            api_key_id = 0, concat('u:', toString(user_id)),
            concat('k', toString(api_key_id), ':u:', toString(user_id))
        ) AS person_id,
        user_id, ts
    FROM events
    WHERE is_bot = 0 AND visitor_id != ''
      AND (user_id != 0 OR event IN ('$identify', '$create_alias'))
)
WHERE alias_id != '' AND person_id != '' AND person_id != 'u:0' AND alias_id != person_id;
