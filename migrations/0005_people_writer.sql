-- 0005_people_writer.sql - the writer decides people and sessions itself
-- (server/people.c), from a cache of what it stored and, for what it does
-- not know, one lookup per batch; PostgreSQL keeps the facts. Events are
-- copied straight into events again, with their person and session. The
-- functions below take the batch's rows as arrays, one per column, from
-- the writer's statement parameters.
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

-- The functions here read tables by key only, and run on every batch:
-- each is planned once per connection (PL/pgSQL keeps its plans), and
-- SET ... = off keeps the planner on the indexes, also on a new database
-- whose tables look empty to it and whose parameters come from unnest.

-- Links the ids that the looked-up events (ev_*, one element per event)
-- show together for the first time, then gives every other new id a
-- person of its own. Links are rare (logins), so
-- one at a time, under a per-site lock that keeps two writers from
-- linking the same person differently; new ids go users before devices,
-- each in key order, so that concurrent writers take row locks in one
-- order. Settings: milepost.max_anonymous_ids.
CREATE FUNCTION milepost_link_people(ev_n integer[], ev_site text[],
	ev_anon text[], ev_user text[], ev_session text[],
	ev_ts timestamptz[], OUT linked integer, OUT merged integer, OUT refused integer)
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
		FROM unnest(ev_site, ev_anon, ev_user, ev_ts)
		     AS e(site_id, anonymous_id, user_id, ts)
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
		FROM unnest(ev_site, ev_anon, ev_user, ev_ts)
		     AS e(site_id, anonymous_id, user_id, ts),
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
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;

-- For each looked-up event (after milepost_link_people, with the same
-- arguments): its person (its user id's, else its device's), its
-- device's (which differs when a link was refused) and the stored
-- session its stream would continue at its time: the one named by a
-- client-given session_id, else the device's (or, for an event with only
-- a user id, the person's) latest visit within the timeout of it.
-- Settings: milepost.session_timeout_s.
CREATE FUNCTION milepost_resolve_people(ev_n integer[], ev_site text[],
	ev_anon text[], ev_user text[], ev_session text[],
	ev_ts timestamptz[])
RETURNS TABLE (n integer, person_id bigint, anon_person bigint,
	session_id text,
	started_at timestamptz, last_at timestamptz, source_key text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT e.n, COALESCE(u.pid, a.pid), a.pid, s.session_id, s.started_at,
	       s.last_at, s.source_key
	FROM unnest(ev_n, ev_site, ev_anon, ev_user, ev_session, ev_ts)
	     AS e(n, site_id, anonymous_id, user_id, session_id, ts)
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
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;

-- Stores what a batch did to sessions and first times, one element per
-- row: the sessions it extends (x_*: a new end and count for a session
-- still there; one erased meanwhile by another collector is not
-- recreated), the sessions it lands (l_*: new ones, or stored ones an
-- earlier event reached, which take that event's landing: page, source,
-- device) and the first times it may have reached (m_*). Each statement
-- takes its rows in key order, so that two writers storing batches of
-- the same visitors take row locks in one order. (A session extended by
-- one writer and landed by another at the same time, twice over in
-- opposite orders, would need two late events crossing: PostgreSQL
-- detects that deadlock and the writer retries its batch.)
CREATE FUNCTION milepost_store_people(
	x_site text[], x_session text[], x_last timestamptz[],
	x_events integer[],
	l_site text[], l_session text[], l_person bigint[], l_anon text[],
	l_client boolean[], l_started timestamptz[], l_last timestamptz[],
	l_events integer[], l_url text[], l_referrer_host text[],
	l_utm_source text[], l_utm_medium text[], l_utm_campaign text[],
	l_utm_term text[], l_utm_content text[], l_click_id_kind text[],
	l_channel text[], l_device text[], l_browser text[], l_os text[],
	l_bot boolean[], l_source_key text[],
	m_site text[], m_person bigint[], m_name text[],
	m_first_at timestamptz[], m_event uuid[], m_session text[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF cardinality(x_site) > 0 THEN
		UPDATE sessions s SET
			last_at = GREATEST(s.last_at, u.last_at),
			events = s.events + u.events
		FROM (SELECT * FROM unnest(x_site, x_session, x_last, x_events)
		      AS u(site_id, session_id, last_at, events)
		      ORDER BY 1, 2) u
		WHERE s.site_id = u.site_id AND s.session_id = u.session_id;
	END IF;

	IF cardinality(l_site) > 0 THEN
		INSERT INTO sessions AS s (site_id, session_id, person_id,
			anonymous_id, client_given, started_at, last_at, events,
			landing_url, landing_path, referrer_host, utm_source,
			utm_medium, utm_campaign, utm_term, utm_content,
			click_id_kind, channel, device, browser, os, bot,
			source_key)
		SELECT u.site_id, u.session_id, u.person_id, u.anonymous_id,
		       u.client_given, u.started_at, u.last_at, u.events, u.url,
		       substring(u.url FROM
		           '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*([^?#]*)'),
		       u.referrer_host, u.utm_source, u.utm_medium,
		       u.utm_campaign, u.utm_term, u.utm_content,
		       u.click_id_kind, u.channel, u.device, u.browser, u.os,
		       u.bot, u.source_key
		FROM unnest(l_site, l_session, l_person, l_anon, l_client,
		            l_started, l_last, l_events, l_url, l_referrer_host,
		            l_utm_source, l_utm_medium, l_utm_campaign,
		            l_utm_term, l_utm_content, l_click_id_kind,
		            l_channel, l_device, l_browser, l_os, l_bot,
		            l_source_key)
		     AS u(site_id, session_id, person_id, anonymous_id,
		          client_given, started_at, last_at, events, url,
		          referrer_host, utm_source, utm_medium, utm_campaign,
		          utm_term, utm_content, click_id_kind, channel, device,
		          browser, os, bot, source_key)
		ORDER BY 1, 2
		ON CONFLICT (site_id, session_id) DO UPDATE SET
			landing_url = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.landing_url ELSE s.landing_url END,
			landing_path = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.landing_path ELSE s.landing_path END,
			referrer_host = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.referrer_host ELSE s.referrer_host END,
			utm_source = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.utm_source ELSE s.utm_source END,
			utm_medium = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.utm_medium ELSE s.utm_medium END,
			utm_campaign = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.utm_campaign ELSE s.utm_campaign END,
			utm_term = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.utm_term ELSE s.utm_term END,
			utm_content = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.utm_content ELSE s.utm_content END,
			click_id_kind = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.click_id_kind ELSE s.click_id_kind END,
			channel = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.channel ELSE s.channel END,
			source_key = CASE WHEN excluded.started_at < s.started_at
				THEN excluded.source_key ELSE s.source_key END,
			started_at = LEAST(s.started_at, excluded.started_at),
			last_at = GREATEST(s.last_at, excluded.last_at),
			events = s.events + excluded.events;
	END IF;

	IF cardinality(m_site) > 0 THEN
		PERFORM milepost_add_milestones(array_agg(
			ROW(m.site_id, m.person_id, m.name, m.first_at,
			    m.first_event_id, m.first_session_id)::person_milestones))
		FROM (SELECT DISTINCT ON (u.site_id, u.person_id, u.name) u.*
		      FROM unnest(m_site, m_person, m_name, m_first_at, m_event,
		                  m_session)
		           AS u(site_id, person_id, name, first_at,
		                first_event_id, first_session_id)
		      ORDER BY u.site_id, u.person_id, u.name, u.first_at,
		               u.first_event_id) m;
	END IF;
END;
$$
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;

-- The first-time rule of 0004, unchanged, in PL/pgSQL so that its plan is
-- kept per connection instead of made at every batch.
CREATE OR REPLACE FUNCTION milepost_add_milestones(rows person_milestones[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO person_milestones AS pm
	SELECT r.* FROM unnest(rows) AS r
	WHERE NOT EXISTS (
		SELECT 1 FROM person_milestones x
		WHERE x.site_id = r.site_id AND x.person_id = r.person_id
		  AND x.name = r.name AND x.first_at <= r.first_at)
	ORDER BY r.site_id, r.person_id, r.name
	ON CONFLICT (site_id, person_id, name) DO UPDATE SET
		first_at = excluded.first_at,
		first_event_id = excluded.first_event_id,
		first_session_id = excluded.first_session_id
	WHERE excluded.first_at < pm.first_at;
END;
$$
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
