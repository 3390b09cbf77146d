-- 0001_init.sql - the collector core: sites, events, rejected events and
-- the dedup index. Never edit this file once landed; add 0002_*.sql instead.
--
-- Every table leads with site_id so that it can be distributed by site
-- (e.g. with Citus) when one server is no longer enough.

CREATE TABLE sites (
	id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
	name            text NOT NULL,
	write_key       text NOT NULL UNIQUE,
	allowed_origins text[] NOT NULL DEFAULT '{}',
	active          boolean NOT NULL DEFAULT true,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per accepted event, partitioned by month of event time so that
-- retention drops whole partitions and time-bounded queries prune them.
-- No raw IP address is ever stored.
CREATE TABLE events (
	site_id      text NOT NULL,
	event_id     uuid NOT NULL,
	name         text NOT NULL,
	ts           timestamptz NOT NULL,
	received_at  timestamptz NOT NULL,
	sent_at      timestamptz,
	anonymous_id text,
	user_id      text,
	session_id   text,
	url          text,
	referrer     text,
	props        jsonb NOT NULL DEFAULT '{}',
	consent      jsonb NOT NULL DEFAULT '{}',
	PRIMARY KEY (site_id, ts, event_id)
) PARTITION BY RANGE (ts);

-- A unique index on the partitioned events table would have to include ts,
-- and a retried event without a client timestamp gets a new ts. So the
-- "stored once" guarantee lives here, keyed by id alone; rows older than the
-- dedup window are pruned by the daemon.
CREATE TABLE event_ids (
	site_id     text NOT NULL,
	event_id    uuid NOT NULL,
	received_at timestamptz NOT NULL,
	PRIMARY KEY (site_id, event_id)
);
-- BRIN, not btree: ids arrive in received_at order, so a block-range
-- index serves the hourly prune at almost no cost per insert.
CREATE INDEX event_ids_received_at ON event_ids USING brin (received_at);

-- Events that failed validation, kept with their reasons: nothing is dropped.
CREATE TABLE rejected_events (
	site_id     text NOT NULL,
	id          bigint GENERATED ALWAYS AS IDENTITY,
	received_at timestamptz NOT NULL,
	request_id  text NOT NULL,
	event_index integer NOT NULL,
	payload     jsonb NOT NULL,
	errors      jsonb NOT NULL,
	PRIMARY KEY (site_id, id)
);
CREATE INDEX rejected_events_received ON rejected_events (site_id, received_at);

-- Creates the monthly partition of events that holds ts, if it is missing.
-- Concurrent callers (several writer threads or collectors) serialise on an
-- advisory lock so that only one of them issues the CREATE.
CREATE FUNCTION milepost_ensure_event_partition(at timestamptz)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	lo   timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
	hi   timestamptz := lo + interval '1 month';
	part text := 'events_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('milepost_event_partitions'));
	IF to_regclass(part) IS NULL THEN
		EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
		               part, lo, hi);
	END IF;
	RETURN part;
END;
$$;

SELECT milepost_ensure_event_partition(now() + make_interval(months => m))
FROM generate_series(-1, 2) AS m;
