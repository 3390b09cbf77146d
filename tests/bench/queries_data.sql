-- tests/bench/queries_data.sql - the synthetic shop of tests/bench/queries.sh,
-- written straight into the tables ingest fills (the issue allows COPY into the
-- same tables; going through the daemon would take the whole run).
--
-- psql variables: people (500000), days (30), t0 (the first day, UTC).
-- Deterministic (setseed): two runs make the same data set.
--
-- Per person 1 to 3 visits spread over the days, each from one channel and
-- device; per visit, page views and a decreasing funnel of the example plan:
--   product_viewed 70% of visits (1 to 3 times), search_performed 40%,
--   cart_added 40% of those who viewed, checkout_started 50% of those,
--   purchase_completed 55% of those; newsletter_signed 3%, wishlist_added 6%.
-- 4% of the people log in (a user id, identify), and 1% of the people were
-- first seen on a second device that was then merged into them.

SELECT setseed(0.42);

CREATE TEMP TABLE gen_visits AS
SELECT p AS person, v,
       'bench-' || p || '-' || v AS session_id,
       :'t0'::timestamptz + (random() * (:days - 1) * 86400) * interval '1 second'
           + interval '1 hour' AS started,
       (ARRAY['Direct', 'Organic Search', 'Paid Search', 'Email',
              'Organic Social', 'Referral'])[1 + floor(random() ^ 1.4 * 6)::int]
           AS channel,
       (ARRAY['desktop', 'mobile', 'tablet'])[1 + floor(random() ^ 1.5 * 3)::int]
           AS device,
       random() AS r1, random() AS r2, random() AS r3, random() AS r4,
       random() AS r5, random() AS r6, random() AS r7,
       1 + floor(random() * 5)::int AS pages,
       1 + floor(random() * 3)::int AS views
FROM generate_series(1, :people) AS p,
     LATERAL generate_series(1, 1 + floor(random() * 2.6)::int) AS v;

INSERT INTO sessions (site_id, session_id, person_id, anonymous_id, started_at,
    last_at, events, landing_url, landing_path, channel, device, browser, bot,
    utm_source, utm_medium)
SELECT 'bench', session_id, person, 'a' || person, started,
       started + interval '20 minutes', 1, 'https://shop.example/',
       (ARRAY['/', '/p/1', '/c/shoes', '/blog/1'])[1 + (person % 4)], channel,
       device, 'Chrome', false,
       CASE channel WHEN 'Email' THEN 'newsletter' WHEN 'Paid Search' THEN 'google' END,
       CASE channel WHEN 'Email' THEN 'email' WHEN 'Paid Search' THEN 'cpc' END
FROM gen_visits;

-- Each visit's events: (name, kind, phase, minutes after the start).
CREATE TEMP TABLE gen_events AS
SELECT v.person, v.session_id, v.channel, v.device, e.name, e.kind, e.phase,
       v.started + e.minute * interval '1 minute' AS ts
FROM gen_visits v,
LATERAL (
    SELECT 'page_viewed' AS name, 'page' AS kind, NULL AS phase, g * 2.0 AS minute
    FROM generate_series(0, v.pages - 1) g
    UNION ALL
    SELECT 'search_performed', 'milestone', 'discover', 1 WHERE v.r1 < 0.4
    UNION ALL
    SELECT 'product_viewed', 'milestone', 'discover', 2 + g
    FROM generate_series(1, v.views) g WHERE v.r2 < 0.7
    UNION ALL
    SELECT 'cart_added', 'milestone', 'consider', 6 WHERE v.r2 < 0.7 AND v.r3 < 0.4
    UNION ALL
    SELECT 'checkout_started', 'milestone', 'decide', 9
    WHERE v.r2 < 0.7 AND v.r3 < 0.4 AND v.r4 < 0.5
    UNION ALL
    SELECT 'purchase_completed', 'macro', 'decide', 12
    WHERE v.r2 < 0.7 AND v.r3 < 0.4 AND v.r4 < 0.5 AND v.r5 < 0.55
    UNION ALL
    SELECT 'newsletter_signed', 'secondary', NULL, 3 WHERE v.r6 < 0.03
    UNION ALL
    SELECT 'wishlist_added', 'secondary', NULL, 4 WHERE v.r7 < 0.06
) e;

INSERT INTO events (site_id, event_id, name, ts, received_at, anonymous_id,
    session_id, person_id, props, consent, plan_version, kind, phase,
    consented, channel, device, browser, os, bot)
SELECT 'bench', gen_random_uuid(), name, ts, ts, 'a' || person, session_id,
       person,
       CASE name
           WHEN 'product_viewed' THEN jsonb_build_object('product_id',
               'P-' || (person % 500), 'category',
               (ARRAY['shoes', 'bags', 'coats', 'hats'])[1 + person % 4])
           WHEN 'cart_added' THEN jsonb_build_object('product_id',
               'P-' || (person % 500), 'quantity', 1, 'currency', 'EUR')
           WHEN 'purchase_completed' THEN jsonb_build_object('order_id',
               'O-' || session_id, 'revenue', 20 + person % 180,
               'currency', 'EUR', 'item_count', 1)
           ELSE '{}'::jsonb END,
       '{"analytics": true}', 1, kind, phase, true, channel, device, 'Chrome',
       'Linux', false
FROM gen_events;

-- Identities: every device; a user id for 4% of the people; for 1%, a second
-- device (person id beyond the range) merged into them.
INSERT INTO identities (site_id, kind, id, person_id, first_seen)
SELECT 'bench', 'anonymous', 'a' || p, p, :'t0'::timestamptz
FROM generate_series(1, :people) p;
INSERT INTO identities (site_id, kind, id, person_id, first_seen)
SELECT 'bench', 'user', 'u' || p, p, :'t0'::timestamptz
FROM generate_series(1, :people) p WHERE p % 25 = 0;
INSERT INTO person_merges (site_id, from_person, into_person)
SELECT 'bench', :people + p, p FROM generate_series(1, :people) p
WHERE p % 100 = 7;
INSERT INTO events (site_id, event_id, name, ts, received_at, anonymous_id,
    person_id, props, consent, kind, phase, consented, channel, device, bot)
SELECT 'bench', gen_random_uuid(), 'product_viewed',
       :'t0'::timestamptz + interval '30 minutes', :'t0'::timestamptz,
       'b' || p, :people + p, '{"product_id": "P-1"}', '{"analytics": true}',
       'milestone', 'discover', true, 'Direct', 'mobile', false
FROM generate_series(1, :people) p WHERE p % 100 = 7;

VACUUM ANALYZE;
