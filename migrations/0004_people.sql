-- 0004_people.sql - who each event belongs to and which visit it was part
-- of: people (the set of ids linked by identify calls), sessions
-- (touchpoints) and the first time each person reached each planned
-- event. Never edit this file once landed.
--
-- The writer stages each batch in its temporary events_incoming table and
-- calls milepost_ingest_batch(), which fills in person_id and session_id
-- and keeps identities, sessions and person_milestones current in the
-- same transaction. docs/architecture.md explains the model.

CREATE SEQUENCE person_ids;

-- The person an event belonged to when it was stored. Linking two people
-- later does not rewrite events: person_merges says what it became.
ALTER TABLE events ADD COLUMN person_id bigint;

-- Every id a person is known by. A person has at most one user id.
CREATE TABLE identities (
	site_id    text NOT NULL,
	kind       text NOT NULL CHECK (kind IN ('anonymous', 'user')),
	id         text NOT NULL,
	person_id  bigint NOT NULL,
	first_seen timestamptz NOT NULL,
	PRIMARY KEY (site_id, kind, id)
);
CREATE INDEX identities_person ON identities (site_id, person_id);

-- People that were linked into another one. into_person is always a
-- person that was not merged itself, so one join resolves any event.
CREATE TABLE person_merges (
	site_id     text NOT NULL,
	from_person bigint NOT NULL,
	into_person bigint NOT NULL,
	merged_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (site_id, from_person)
);
CREATE INDEX person_merges_into ON person_merges (site_id, into_person);

-- Visits, the touchpoints attribution reads. person_id is kept current
-- across links. anonymous_id is the device the visit came from (NULL for
-- a visit of server-side events that carried only a user id).
-- source_key is what the visit's landing said about where it came from
-- (NULL: nothing, a direct visit); a later event announcing a different
-- source starts a new session.
CREATE TABLE sessions (
	site_id       text NOT NULL,
	session_id    text NOT NULL,
	person_id     bigint NOT NULL,
	anonymous_id  text,
	client_given  boolean NOT NULL DEFAULT false,
	started_at    timestamptz NOT NULL,
	last_at       timestamptz NOT NULL,
	events        integer NOT NULL,
	landing_url   text,
	landing_path  text,
	referrer_host text,
	utm_source    text,
	utm_medium    text,
	utm_campaign  text,
	utm_term      text,
	utm_content   text,
	click_id_kind text,
	channel       text,
	device        text,
	browser       text,
	os            text,
	bot           boolean NOT NULL DEFAULT false,
	source_key    text,
	PRIMARY KEY (site_id, session_id)
);
-- How ingest finds the session an event continues, and attribution the
-- visits of a person.
CREATE INDEX sessions_device ON sessions (site_id, anonymous_id, last_at);
CREATE INDEX sessions_person ON sessions (site_id, person_id, last_at);

-- The first time each person reached each planned event. Bot traffic is
-- not counted here.
CREATE TABLE person_milestones (
	site_id          text NOT NULL,
	person_id        bigint NOT NULL,
	name             text NOT NULL,
	first_at         timestamptz NOT NULL,
	first_event_id   uuid NOT NULL,
	first_session_id text,
	PRIMARY KEY (site_id, person_id, name)
);
CREATE INDEX person_milestones_name ON person_milestones (site_id, name, first_at);

-- Events with the person they belong to now.
CREATE VIEW events_people AS
	SELECT e.*, COALESCE(m.into_person, e.person_id) AS person
	FROM events e
	LEFT JOIN person_merges m
		ON m.site_id = e.site_id AND m.from_person = e.person_id;

-- What an event announces about where the visit came from; NULL when it
-- says nothing (internal navigation, a direct visit).
CREATE FUNCTION milepost_source_key(utm_source text, utm_medium text,
	utm_campaign text, click_id_kind text, referrer_host text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN COALESCE(utm_source, utm_medium, utm_campaign,
	                          click_id_kind, referrer_host) IS NULL
	            THEN NULL
	            ELSE concat_ws(chr(31), COALESCE(utm_source, ''),
	                           COALESCE(utm_medium, ''),
	                           COALESCE(utm_campaign, ''),
	                           COALESCE(click_id_kind, ''),
	                           COALESCE(referrer_host, ''))
	       END
$$;

-- Adds milestone rows, merging with what is stored: the earliest first
-- time wins. The one place this rule lives: ingest and person merges both
-- use it. A row that changes nothing is filtered out before the insert,
-- so that it takes no row lock: a busy person's batches do not queue
-- behind each other's commits.
CREATE FUNCTION milepost_add_milestones(rows person_milestones[])
RETURNS void
LANGUAGE sql AS $$
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
	WHERE excluded.first_at < pm.first_at
$$;

-- Moves person from_p into into_p: its ids, visits and milestones. Events
-- stay as stored and resolve through person_merges.
CREATE FUNCTION milepost_merge_person(site text, from_p bigint, into_p bigint)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE identities SET person_id = into_p
	WHERE site_id = site AND person_id = from_p;
	UPDATE person_merges SET into_person = into_p
	WHERE site_id = site AND into_person = from_p;
	INSERT INTO person_merges (site_id, from_person, into_person)
	VALUES (site, from_p, into_p);
	UPDATE sessions SET person_id = into_p
	WHERE site_id = site AND person_id = from_p;
	PERFORM milepost_add_milestones(array_agg(
		ROW(pm.site_id, into_p, pm.name, pm.first_at, pm.first_event_id,
		    pm.first_session_id)::person_milestones))
	FROM person_milestones pm
	WHERE pm.site_id = site AND pm.person_id = from_p
	HAVING count(*) > 0;
	DELETE FROM person_milestones WHERE site_id = site AND person_id = from_p;
END;
$$;

-- Links the anonymous id anon to the user id usr of site, unless that
-- would give a person two user ids or more than cap anonymous ids.
-- Returns 'linked', 'merged' or 'refused'. The caller holds the site's
-- identity lock.
CREATE FUNCTION milepost_link(site text, anon text, usr text,
	seen timestamptz, cap integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	up bigint;
	ap bigint;
	n  integer;
BEGIN
	SELECT person_id INTO up FROM identities
	WHERE site_id = site AND kind = 'user' AND id = usr;
	SELECT person_id INTO ap FROM identities
	WHERE site_id = site AND kind = 'anonymous' AND id = anon;
	IF up IS NULL THEN
		IF ap IS NULL THEN
			ap := nextval('person_ids');
			INSERT INTO identities VALUES (site, 'anonymous', anon, ap, seen);
		ELSIF EXISTS (SELECT 1 FROM identities WHERE site_id = site
		              AND person_id = ap AND kind = 'user') THEN
			RETURN 'refused';	-- the device belongs to another user
		END IF;
		INSERT INTO identities VALUES (site, 'user', usr, ap, seen);
		RETURN 'linked';
	END IF;
	IF ap = up THEN
		RETURN 'linked';
	END IF;
	SELECT count(*) INTO n FROM identities
	WHERE site_id = site AND person_id = up AND kind = 'anonymous';
	IF ap IS NULL THEN
		IF n >= cap THEN
			RETURN 'refused';
		END IF;
		INSERT INTO identities VALUES (site, 'anonymous', anon, up, seen);
		RETURN 'linked';
	END IF;
	IF EXISTS (SELECT 1 FROM identities WHERE site_id = site
	           AND person_id = ap AND kind = 'user') OR
	   n + (SELECT count(*) FROM identities WHERE site_id = site
	        AND person_id = ap AND kind = 'anonymous') > cap THEN
		RETURN 'refused';
	END IF;
	PERFORM milepost_merge_person(site, ap, up);
	RETURN 'merged';
END;
$$;

-- The people step of one batch, on the writer's events_incoming (new
-- events only). Settings: milepost.session_timeout_s and
-- milepost.max_anonymous_ids, set by the writer per connection.
CREATE FUNCTION milepost_ingest_batch(OUT linked integer,
	OUT merged integer, OUT refused integer)
LANGUAGE plpgsql AS $$
DECLARE
	timeout interval := make_interval(secs => COALESCE(NULLIF(
		current_setting('milepost.session_timeout_s', true), ''),
		'1800')::integer);
	cap integer := COALESCE(NULLIF(
		current_setting('milepost.max_anonymous_ids', true), ''),
		'100')::integer;
	pair record;
	locked text := NULL;
	outcome text;
	added integer;
BEGIN
	linked := 0;
	merged := 0;
	refused := 0;

	-- Links new in this batch: an anonymous id seen with a user id it
	-- does not already belong to. Rare (logins), so one at a time,
	-- under a per-site lock that keeps two writers from linking the
	-- same person differently.
	FOR pair IN
		SELECT e.site_id, e.anonymous_id, e.user_id, min(e.ts) AS seen
		FROM events_incoming e
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

	-- Every other new id is a new person: users before devices, each in
	-- key order, so that concurrent writers take row locks in one order.
	INSERT INTO identities (site_id, kind, id, person_id, first_seen)
	SELECT n.site_id, n.kind, n.id, nextval('person_ids'), n.seen
	FROM (SELECT e.site_id, k.kind, k.id, min(e.ts) AS seen
	      FROM events_incoming e,
	           LATERAL (VALUES ('user', e.user_id),
	                           ('anonymous', e.anonymous_id)) AS k(kind, id)
	      WHERE k.id IS NOT NULL AND NOT EXISTS (
		SELECT 1 FROM identities i WHERE i.site_id = e.site_id
		  AND i.kind = k.kind AND i.id = k.id)
	      GROUP BY 1, 2, 3
	      ORDER BY 1, 2 DESC, 3) n
	ON CONFLICT DO NOTHING;

	-- Then, in one statement over the batch (window functions rather
	-- than joins, as the staging table has no statistics):
	--
	-- The person: the user id's, else the device's.
	--
	-- The session: a client-given session_id is kept. Otherwise the
	-- events of one device (or, without one, of one person) in time
	-- order are cut where they are more than the timeout apart, or where
	-- an event announces a source other than the last one announced.
	-- Each piece continues the stored session its first event falls
	-- within the timeout of, unless it announces a different source (a
	-- late event joins regardless); else it starts a new session named
	-- after its first event.
	--
	-- The events are stored, and the rows they add to sessions and
	-- person_milestones come from what was really stored (RETURNING):
	-- an id resent after the dedup window forgot it counts once.
	WITH ev AS (
		-- Narrow rows: the windows below sort them several times.
		SELECT e.ctid AS rid, e.site_id, e.event_id, e.ts, e.anonymous_id,
		       e.session_id, p.pid,
		       CASE WHEN p.pid IS NULL THEN NULL
		            WHEN e.session_id IS NOT NULL THEN 'c' || e.session_id
		            WHEN e.anonymous_id IS NOT NULL THEN 'a' || e.anonymous_id
		            ELSE 'p' || p.pid END AS stream,
		       milepost_source_key(e.utm_source, e.utm_medium,
		           e.utm_campaign, e.click_id_kind, e.referrer_host) AS src
		FROM events_incoming e
		CROSS JOIN LATERAL (
			SELECT COALESCE(
				(SELECT i.person_id FROM identities i
				 WHERE i.site_id = e.site_id AND i.kind = 'user'
				   AND i.id = e.user_id),
				(SELECT i.person_id FROM identities i
				 WHERE e.user_id IS NULL AND i.site_id = e.site_id
				   AND i.kind = 'anonymous' AND i.id = e.anonymous_id))
			AS pid) p
	), gaps AS (
		SELECT ev.*,
		       COALESCE(ts - lag(ts) OVER w > timeout, true) AS gap_start
		FROM ev
		WINDOW w AS (PARTITION BY site_id, stream ORDER BY ts, event_id)
	), runs AS (
		-- Each event with the number of the last event that announced a
		-- source before it: the first of a run without gaps announces
		-- its own, even when that is none.
		SELECT gaps.*,
		       count(*) FILTER (WHERE gap_start OR src IS NOT NULL)
		           OVER w AS ann_no
		FROM gaps
		WINDOW w AS (PARTITION BY site_id, stream ORDER BY ts, event_id)
	), announced AS (
		SELECT runs.*,
		       first_value(src) OVER (PARTITION BY site_id, stream, ann_no
		           ORDER BY ts, event_id) AS run_src
		FROM runs
	), cut AS (
		SELECT c.*, count(*) FILTER (WHERE starts) OVER w AS piece
		FROM (SELECT announced.*,
		             gap_start OR (src IS NOT NULL AND src IS DISTINCT FROM
		                 lag(run_src) OVER w) AS starts
		      FROM announced
		      WINDOW w AS (PARTITION BY site_id, stream ORDER BY ts, event_id)) c
		WINDOW w AS (PARTITION BY site_id, stream ORDER BY ts, event_id)
	), headed AS (
		-- Only a piece's first event looks for a stored session.
		SELECT cut.*,
		       CASE WHEN starts AND session_id IS NULL AND pid IS NOT NULL
		       THEN COALESCE((
			SELECT x.session_id FROM (
				SELECT x.session_id, x.source_key, x.last_at
				FROM sessions x
				WHERE x.site_id = cut.site_id
				  AND x.anonymous_id = cut.anonymous_id
				  AND x.last_at >= cut.ts - timeout
				  AND x.started_at <= cut.ts + timeout
				UNION ALL
				SELECT x.session_id, x.source_key, x.last_at
				FROM sessions x
				WHERE cut.anonymous_id IS NULL
				  AND x.site_id = cut.site_id AND x.person_id = cut.pid
				  AND x.last_at >= cut.ts - timeout
				  AND x.started_at <= cut.ts + timeout
				ORDER BY last_at DESC
				LIMIT 1) x
			WHERE cut.src IS NULL OR cut.src = x.source_key
			   OR cut.ts < x.last_at), event_id::text)
		       END AS head_session
		FROM cut
	), assigned AS (
		SELECT rid, pid,
		       CASE WHEN pid IS NULL THEN session_id
		            ELSE COALESCE(session_id, first_value(head_session)
		                 OVER (PARTITION BY site_id, stream, piece
		                       ORDER BY ts, event_id)) END AS session
		FROM headed
	), ins AS (
		INSERT INTO events (site_id, event_id, name, ts, received_at,
			sent_at, anonymous_id, user_id, session_id, url, referrer,
			props, consent, plan_version, event_version, kind, phase,
			consented, referrer_host, utm_source, utm_medium,
			utm_campaign, utm_term, utm_content, click_id_kind, channel,
			device, browser, os, bot, ts_adjusted, person_id)
		SELECT e.site_id, e.event_id, e.name, e.ts, e.received_at,
		       e.sent_at, e.anonymous_id, e.user_id, a.session, e.url,
		       e.referrer, e.props, e.consent, e.plan_version,
		       e.event_version, e.kind, e.phase, e.consented,
		       e.referrer_host, e.utm_source, e.utm_medium, e.utm_campaign,
		       e.utm_term, e.utm_content, e.click_id_kind, e.channel,
		       e.device, e.browser, e.os, e.bot, e.ts_adjusted, a.pid
		FROM events_incoming e JOIN assigned a ON a.rid = e.ctid
		ON CONFLICT DO NOTHING
		RETURNING site_id, event_id, name, ts, anonymous_id, session_id,
		          url, kind, referrer_host, utm_source, utm_medium,
		          utm_campaign, utm_term, utm_content, click_id_kind,
		          channel, device, browser, os, bot, person_id
	), touched AS (
		-- The sessions this batch touched, with their first event and
		-- how far and how much the batch extends them.
		SELECT DISTINCT ON (site_id, session_id) ins.*,
		       max(ts) OVER s AS last_ts, (count(*) OVER s)::integer AS n
		FROM ins
		WHERE person_id IS NOT NULL
		WINDOW s AS (PARTITION BY site_id, session_id)
		ORDER BY site_id, session_id, ts, event_id
	), upserted AS (
		-- New sessions with their landing; stored ones extended, and
		-- given the landing of an earlier event that came late.
		INSERT INTO sessions AS s (site_id, session_id, person_id,
			anonymous_id, client_given, started_at, last_at, events,
			landing_url, landing_path, referrer_host, utm_source,
			utm_medium, utm_campaign, utm_term, utm_content,
			click_id_kind, channel, device, browser, os, bot, source_key)
		SELECT t.site_id, t.session_id, t.person_id, t.anonymous_id,
		       t.session_id <> t.event_id::text, t.ts, t.last_ts, t.n,
		       t.url,
		       substring(t.url FROM '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*([^?#]*)'),
		       t.referrer_host, t.utm_source, t.utm_medium, t.utm_campaign,
		       t.utm_term, t.utm_content, t.click_id_kind, t.channel,
		       t.device, t.browser, t.os, t.bot,
		       milepost_source_key(t.utm_source, t.utm_medium,
		           t.utm_campaign, t.click_id_kind, t.referrer_host)
		FROM touched t
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
			events = s.events + excluded.events
	), firsts AS (
		-- First times of planned events, for people (bots not counted).
		SELECT DISTINCT ON (site_id, person_id, name) site_id, person_id,
		       name, ts, event_id, session_id
		FROM ins
		WHERE person_id IS NOT NULL AND kind IS NOT NULL
		  AND kind <> 'identify' AND NOT bot
		ORDER BY site_id, person_id, name, ts, event_id
	)
	SELECT count(*) INTO added FROM (
		SELECT milepost_add_milestones(array_agg(
			ROW(f.site_id, f.person_id, f.name, f.ts, f.event_id,
			    f.session_id)::person_milestones))
		FROM firsts f
		HAVING count(*) > 0) z;
END;
$$;
