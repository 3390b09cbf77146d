-- 0005_people_writer.sql - the writer decides people and sessions itself
-- (server/people.c), from a cache of what it stored and, for what it does
-- not know, one lookup per batch; PostgreSQL keeps the facts. Events are
-- copied straight into events again, with their person and session.
-- docs/architecture.md explains the model. Never edit this file once
-- landed.

DROP FUNCTION milepost_ingest_batch();

-- A session row is updated by every batch that extends it. With last_at
-- in no index (the latest visit of a device is the one that started
-- last), those updates are HOT: no new index entries, and the page keeps
-- room for them.
--
-- Secondary indexes lead with the id, not the site: a lookup by primary
-- key must never look like a match for an index on (site_id, ...), which
-- the planner picks on a table not yet analysed (a new database) and
-- then reads every row of the site.
DROP INDEX sessions_device;
DROP INDEX sessions_person;
DROP INDEX identities_person;
CREATE INDEX sessions_device ON sessions (anonymous_id, site_id, started_at);
CREATE INDEX sessions_person ON sessions (person_id, site_id, started_at);
CREATE INDEX identities_person ON identities (person_id, site_id);
ALTER TABLE sessions SET (fillfactor = 80);

-- The writer's temporary tables (created per connection, emptied at each
-- commit) have these shapes:
--
--   people_incoming (n integer, site_id text, anonymous_id text,
--                    user_id text, session_id text, ts timestamptz)
--     one row per event whose person or session the writer did not know;
--     n is the event's number in the batch.
--   sessions_incoming (site_id text, session_id text, person_id bigint,
--                      anonymous_id text, client_given boolean,
--                      started_at timestamptz, last_at timestamptz,
--                      events integer, landing_ts timestamptz,
--                      landing_event_id uuid)
--     one row per session the batch touched; landing_* name the event
--     whose page and source the session takes (a new session, or an
--     event earlier than the stored start), NULL otherwise.
--   milestones_incoming (LIKE person_milestones)

-- Links the ids that people_incoming shows together for the first time,
-- then gives every other new id a person of its own. Links are rare
-- (logins), so one at a time, under a per-site lock that keeps two
-- writers from linking the same person differently; new ids go users
-- before devices, each in key order, so that concurrent writers take row
-- locks in one order. Settings: milepost.max_anonymous_ids.
CREATE FUNCTION milepost_link_people(OUT linked integer, OUT merged integer,
	OUT refused integer)
LANGUAGE plpgsql AS $$
DECLARE
	cap integer := COALESCE(NULLIF(
		current_setting('milepost.max_anonymous_ids', true), ''),
		'100')::integer;
	pair record;
	locked text := NULL;
	outcome text;
BEGIN
	linked := 0;
	merged := 0;
	refused := 0;
	FOR pair IN
		SELECT e.site_id, e.anonymous_id, e.user_id, min(e.ts) AS seen
		FROM people_incoming e
		WHERE e.anonymous_id IS NOT NULL AND e.user_id IS NOT NULL
		  AND NOT EXISTS (
			SELECT 1 FROM identities a JOIN identities u
			  ON u.site_id = a.site_id AND u.person_id = a.person_id
			WHERE a.site_id = e.site_id AND a.kind = 'anonymous'
			  AND a.id = e.anonymous_id
			  AND u.kind = 'user' AND u.id = e.user_id)
		GROUP BY 1, 2, 3
		ORDER BY 1, 2, 3
	LOOP
		IF locked IS DISTINCT FROM pair.site_id THEN
			PERFORM pg_advisory_xact_lock(hashtext('milepost_identity'),
			                              hashtext(pair.site_id));
			locked := pair.site_id;
		END IF;
		outcome := milepost_link(pair.site_id, pair.anonymous_id,
		                         pair.user_id, pair.seen, cap);
		IF outcome = 'refused' THEN
			refused := refused + 1;
		ELSE
			linked := linked + 1;
			IF outcome = 'merged' THEN
				merged := merged + 1;
			END IF;
		END IF;
	END LOOP;

	-- (The ids are gathered first, so that each is looked up by the
	-- whole primary key.)
	WITH ids AS MATERIALIZED (
		SELECT e.site_id, k.kind, k.id, min(e.ts) AS seen
		FROM people_incoming e,
		     LATERAL (VALUES ('user', e.user_id),
		                     ('anonymous', e.anonymous_id)) AS k(kind, id)
		WHERE k.id IS NOT NULL
		GROUP BY 1, 2, 3)
	INSERT INTO identities (site_id, kind, id, person_id, first_seen)
	SELECT n.site_id, n.kind, n.id, nextval('person_ids'), n.seen
	FROM (SELECT * FROM ids
	      WHERE NOT EXISTS (
		SELECT 1 FROM identities i WHERE i.site_id = ids.site_id
		  AND i.kind = ids.kind AND i.id = ids.id)
	      ORDER BY 1, 2 DESC, 3) n
	ON CONFLICT DO NOTHING;
END;
$$
-- The staging table has no statistics: index probes, never a scan of
-- identities to hash. And a plan made when the tables were small (a new
-- database) must not be kept once they are not: plan every call, a
-- fraction of a millisecond per batch.
SET enable_hashjoin = off SET enable_mergejoin = off
SET plan_cache_mode = force_custom_plan;

-- For each row of people_incoming (after milepost_link_people): the
-- event's person (its user id's, else its device's), its device's (which
-- differs when a link was refused) and the stored
-- session its stream would continue at its time: the one named by a
-- client-given session_id, else the device's (or, for an event with only
-- a user id, the person's) latest visit within the timeout of it.
-- Settings: milepost.session_timeout_s. (PL/pgSQL, like the others here,
-- because the temporary tables exist only in the writer's sessions.)
CREATE FUNCTION milepost_resolve_people()
RETURNS TABLE (n integer, person_id bigint, anon_person bigint,
	session_id text,
	started_at timestamptz, last_at timestamptz, source_key text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT e.n, COALESCE(u.pid, a.pid), a.pid, s.session_id, s.started_at,
	       s.last_at, s.source_key
	FROM people_incoming e
	CROSS JOIN LATERAL (
		SELECT (SELECT i.person_id FROM identities i
		        WHERE i.site_id = e.site_id AND i.kind = 'user'
		          AND i.id = e.user_id) AS pid) u
	CROSS JOIN LATERAL (
		SELECT (SELECT i.person_id FROM identities i
		        WHERE i.site_id = e.site_id AND i.kind = 'anonymous'
		          AND i.id = e.anonymous_id) AS pid) a
	CROSS JOIN LATERAL (SELECT COALESCE(u.pid, a.pid) AS pid) p
	CROSS JOIN LATERAL (
		SELECT make_interval(secs => COALESCE(NULLIF(
			current_setting('milepost.session_timeout_s', true), ''),
			'1800')::integer) AS timeout) t
	LEFT JOIN LATERAL (
		SELECT x.session_id, x.started_at, x.last_at, x.source_key
		FROM sessions x
		WHERE e.session_id IS NOT NULL
		  AND x.site_id = e.site_id AND x.session_id = e.session_id
		UNION ALL
		(SELECT x.session_id, x.started_at, x.last_at, x.source_key
		 FROM sessions x
		 WHERE e.session_id IS NULL AND e.anonymous_id IS NOT NULL
		   AND x.site_id = e.site_id AND x.anonymous_id = e.anonymous_id
		   AND x.last_at >= e.ts - t.timeout
		   AND x.started_at <= e.ts + t.timeout
		 ORDER BY x.last_at DESC LIMIT 1)
		UNION ALL
		(SELECT x.session_id, x.started_at, x.last_at, x.source_key
		 FROM sessions x
		 WHERE e.session_id IS NULL AND e.anonymous_id IS NULL
		   AND x.site_id = e.site_id AND x.person_id = p.pid
		   AND x.last_at >= e.ts - t.timeout
		   AND x.started_at <= e.ts + t.timeout
		 ORDER BY x.last_at DESC LIMIT 1)
	) s ON true;
END;
$$
SET enable_hashjoin = off SET enable_mergejoin = off
SET plan_cache_mode = force_custom_plan;

-- Two writers storing batches of the same visitors update the same
-- session and first-time rows, in several statements: unless they take
-- them in one order, they deadlock. So the writer calls this first, after
-- copying the rows in: it takes a transaction lock per session and per
-- first time the batch touches, in one global order.
CREATE FUNCTION milepost_lock_people()
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	-- Volatile functions in the select list run after the sort.
	PERFORM pg_advisory_xact_lock(k.h)
	FROM (SELECT hashtextextended(site_id || chr(31) || session_id, 0) AS h
	      FROM sessions_incoming
	      UNION
	      SELECT hashtextextended(site_id || chr(31) || person_id::text
	                              || chr(31) || name, 0)
	      FROM milestones_incoming) k
	ORDER BY k.h;
END;
$$;

-- Stores sessions_incoming: sessions the batch extends get their new end
-- and count; new ones, and stored ones an earlier event reached late,
-- take the landing (page, source, device) of their landing event, which
-- the same transaction stored. (A client could name its session after
-- another event's id: one row per session, so that the batch stands.)
-- The plain update is the common case, and several times cheaper than
-- an upsert; a session the writer believed stored but that is gone
-- (erased meanwhile by another collector) is not recreated.
CREATE FUNCTION milepost_store_sessions()
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE sessions s SET
		last_at = GREATEST(s.last_at, i.last_at),
		events = s.events + i.events
	FROM (SELECT * FROM sessions_incoming
	      WHERE landing_event_id IS NULL
	      ORDER BY site_id, session_id) i
	WHERE s.site_id = i.site_id AND s.session_id = i.session_id;

	INSERT INTO sessions AS s (site_id, session_id, person_id,
		anonymous_id, client_given, started_at, last_at, events,
		landing_url, landing_path, referrer_host, utm_source,
		utm_medium, utm_campaign, utm_term, utm_content,
		click_id_kind, channel, device, browser, os, bot, source_key)
	SELECT i.site_id, i.session_id, i.person_id, i.anonymous_id,
	       i.client_given, i.started_at, i.last_at, i.events, e.url,
	       substring(e.url FROM '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*([^?#]*)'),
	       e.referrer_host, e.utm_source, e.utm_medium, e.utm_campaign,
	       e.utm_term, e.utm_content, e.click_id_kind, e.channel,
	       e.device, e.browser, e.os, e.bot,
	       milepost_source_key(e.utm_source, e.utm_medium,
	           e.utm_campaign, e.click_id_kind, e.referrer_host)
	FROM (SELECT DISTINCT ON (site_id, session_id) *
	      FROM sessions_incoming
	      WHERE landing_event_id IS NOT NULL
	      ORDER BY site_id, session_id, started_at) i
	JOIN events e ON e.site_id = i.site_id AND e.ts = i.landing_ts
	             AND e.event_id = i.landing_event_id
	ORDER BY i.site_id, i.session_id
	ON CONFLICT (site_id, session_id) DO UPDATE SET
		(landing_url, landing_path, referrer_host, utm_source,
		 utm_medium, utm_campaign, utm_term, utm_content,
		 click_id_kind, channel, source_key) = (
			SELECT (l).landing_url, (l).landing_path,
			       (l).referrer_host, (l).utm_source, (l).utm_medium,
			       (l).utm_campaign, (l).utm_term, (l).utm_content,
			       (l).click_id_kind, (l).channel, (l).source_key
			FROM (SELECT CASE WHEN excluded.started_at < s.started_at
			                  THEN excluded ELSE s END AS l) AS landing),
		started_at = LEAST(s.started_at, excluded.started_at),
		last_at = GREATEST(s.last_at, excluded.last_at),
		events = s.events + excluded.events;
END;
$$
SET enable_hashjoin = off SET enable_mergejoin = off
SET plan_cache_mode = force_custom_plan;

-- The same for first times, planned once per call too.
ALTER FUNCTION milepost_add_milestones(person_milestones[])
	SET plan_cache_mode = force_custom_plan;
