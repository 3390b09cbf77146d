-- 0012_identity_verification.sql - identity verification: every link
-- records whether its user id was proven (a valid user_hash, or a
-- server key's event), and an unproven claim to a user id that has a
-- proven link is refused. docs/architecture.md ("People, sessions and
-- milestones") and docs/plan.md ("Identity verification") have the
-- rules. Never edit this file once landed.
--
-- Each event's trust travels as one more array, ev_trust: true
-- (verified), false (unverified: the site verifies and no hash came) or
-- NULL (the site does not verify: linked as before 0012).

-- A user id's row: some link to it was verified. An anonymous id's row:
-- its own link to its user id was.
ALTER TABLE identities ADD COLUMN verified boolean NOT NULL DEFAULT false;

DROP FUNCTION milepost_link_people(integer[], text[], text[], text[],
	text[], timestamptz[]);
DROP FUNCTION milepost_resolve_people(integer[], text[], text[], text[],
	text[], timestamptz[]);
DROP FUNCTION milepost_link(text, text, text, timestamptz, integer);

-- milepost_link of 0004, with trust: an unverified claim (false) to a
-- user id whose link was verified is refused; a verified one marks the
-- user id's row and the device's.
CREATE FUNCTION milepost_link(site text, anon text, usr text,
	seen timestamptz, cap integer, trust boolean)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	up bigint;
	ap bigint;
	uv boolean;
	n  integer;
	outcome text;
BEGIN
	SELECT person_id, verified INTO up, uv FROM identities
	WHERE site_id = site AND kind = 'user' AND id = usr;
	SELECT person_id INTO ap FROM identities
	WHERE site_id = site AND kind = 'anonymous' AND id = anon;
	IF up IS NOT NULL AND uv AND trust = false AND ap IS DISTINCT FROM up THEN
		RETURN 'refused';	-- a verified user's, claimed unverified
	END IF;
	IF up IS NULL THEN
		IF ap IS NULL THEN
			ap := nextval('person_ids');
			INSERT INTO identities (site_id, kind, id, person_id, first_seen)
			VALUES (site, 'anonymous', anon, ap, seen);
		ELSIF EXISTS (SELECT 1 FROM identities WHERE site_id = site
		              AND person_id = ap AND kind = 'user') THEN
			RETURN 'refused';	-- the device belongs to another user
		END IF;
		INSERT INTO identities (site_id, kind, id, person_id, first_seen)
		VALUES (site, 'user', usr, ap, seen);
		outcome := 'linked';
	ELSIF ap = up THEN
		outcome := 'linked';
	ELSE
		SELECT count(*) INTO n FROM identities
		WHERE site_id = site AND person_id = up AND kind = 'anonymous';
		IF ap IS NULL THEN
			IF n >= cap THEN
				RETURN 'refused';
			END IF;
			INSERT INTO identities (site_id, kind, id, person_id, first_seen)
			VALUES (site, 'anonymous', anon, up, seen);
			outcome := 'linked';
		ELSIF EXISTS (SELECT 1 FROM identities WHERE site_id = site
		              AND person_id = ap AND kind = 'user') OR
		      n + (SELECT count(*) FROM identities WHERE site_id = site
		           AND person_id = ap AND kind = 'anonymous') > cap THEN
			RETURN 'refused';
		ELSE
			PERFORM milepost_merge_person(site, ap, up);
			outcome := 'merged';
		END IF;
	END IF;
	IF trust THEN
		UPDATE identities SET verified = true
		WHERE site_id = site AND NOT verified
		  AND ((kind = 'user' AND id = usr)
		       OR (kind = 'anonymous' AND id = anon));
	END IF;
	RETURN outcome;
END;
$$;

-- milepost_link_people of 0005, with ev_trust. A pair already linked is
-- looked at again only to verify it.
CREATE FUNCTION milepost_link_people(ev_n integer[], ev_site text[],
	ev_anon text[], ev_user text[], ev_session text[],
	ev_ts timestamptz[], ev_trust boolean[], OUT linked integer,
	OUT merged integer, OUT refused integer)
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
		SELECT e.site_id, e.anonymous_id, e.user_id, min(e.ts) AS seen,
		       bool_or(e.trust) AS trust
		FROM unnest(ev_site, ev_anon, ev_user, ev_ts, ev_trust)
		     AS e(site_id, anonymous_id, user_id, ts, trust)
		WHERE e.anonymous_id IS NOT NULL AND e.user_id IS NOT NULL
		  AND NOT EXISTS (
			SELECT 1 FROM identities a JOIN identities u
			  ON u.site_id = a.site_id AND u.person_id = a.person_id
			WHERE a.site_id = e.site_id AND a.kind = 'anonymous'
			  AND a.id = e.anonymous_id
			  AND u.kind = 'user' AND u.id = e.user_id
			  AND (e.trust IS NOT TRUE OR a.verified))
		GROUP BY 1, 2, 3
		ORDER BY 1, 2, 3
	LOOP
		IF locked IS DISTINCT FROM pair.site_id THEN
			PERFORM pg_advisory_xact_lock(hashtext('milepost_identity'),
			                              hashtext(pair.site_id));
			locked := pair.site_id;
		END IF;
		outcome := milepost_link(pair.site_id, pair.anonymous_id,
		                         pair.user_id, pair.seen, cap, pair.trust);
		IF outcome = 'refused' THEN
			refused := refused + 1;
		ELSE
			linked := linked + 1;
			IF outcome = 'merged' THEN
				merged := merged + 1;
			END IF;
		END IF;
	END LOOP;

	WITH ids AS MATERIALIZED (
		SELECT e.site_id, k.kind, k.id, min(e.ts) AS seen,
		       COALESCE(bool_or(e.trust), false) AND k.kind = 'user'
		       AS verified
		FROM unnest(ev_site, ev_anon, ev_user, ev_ts, ev_trust)
		     AS e(site_id, anonymous_id, user_id, ts, trust),
		     LATERAL (VALUES ('user', e.user_id),
		                     ('anonymous', e.anonymous_id)) AS k(kind, id)
		WHERE k.id IS NOT NULL
		GROUP BY 1, 2, 3)
	INSERT INTO identities (site_id, kind, id, person_id, first_seen,
		verified)
	SELECT n.site_id, n.kind, n.id, nextval('person_ids'), n.seen,
	       n.verified
	FROM (SELECT * FROM ids
	      WHERE NOT EXISTS (
		SELECT 1 FROM identities i WHERE i.site_id = ids.site_id
		  AND i.kind = ids.kind AND i.id = ids.id)
	      ORDER BY 1, 2 DESC, 3) n
	ON CONFLICT DO NOTHING;
END;
$$
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;

-- milepost_resolve_people of 0005, with ev_trust: an unverified claim to
-- a verified user id that the device is not linked to stays the
-- device's (none, for an event without an anonymous id).
CREATE FUNCTION milepost_resolve_people(ev_n integer[], ev_site text[],
	ev_anon text[], ev_user text[], ev_session text[],
	ev_ts timestamptz[], ev_trust boolean[])
RETURNS TABLE (n integer, person_id bigint, anon_person bigint,
	session_id text,
	started_at timestamptz, last_at timestamptz, source_key text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT e.n, p.pid, a.pid, s.session_id, s.started_at,
	       s.last_at, s.source_key
	FROM unnest(ev_n, ev_site, ev_anon, ev_user, ev_session, ev_ts,
	            ev_trust)
	     AS e(n, site_id, anonymous_id, user_id, session_id, ts, trust)
	CROSS JOIN LATERAL (
		SELECT (SELECT i.person_id FROM identities i
		        WHERE i.site_id = e.site_id AND i.kind = 'user'
		          AND i.id = e.user_id) AS pid,
		       COALESCE((SELECT i.verified FROM identities i
		        WHERE i.site_id = e.site_id AND i.kind = 'user'
		          AND i.id = e.user_id), false) AS verified) u
	CROSS JOIN LATERAL (
		SELECT (SELECT i.person_id FROM identities i
		        WHERE i.site_id = e.site_id AND i.kind = 'anonymous'
		          AND i.id = e.anonymous_id) AS pid) a
	CROSS JOIN LATERAL (
		SELECT CASE WHEN e.trust = false AND u.verified
		             AND a.pid IS DISTINCT FROM u.pid THEN a.pid
		            ELSE COALESCE(u.pid, a.pid) END AS pid) p
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
