-- 0002_plan_privacy.sql - the tracking plan's verdicts on stored events,
-- what replaying rejected events needs, cookieless salts and the erasure
-- audit. Never edit this file once landed.

-- What the plan said about each stored event when it arrived: the plan's
-- version, the version of the event's own schema (as sent, or the plan's
-- current one), its kind and phase. consented is false for events stored
-- anonymised because their consent was missing.
ALTER TABLE events
	ADD COLUMN plan_version integer,
	ADD COLUMN event_version integer,
	ADD COLUMN kind         text,
	ADD COLUMN phase        text,
	ADD COLUMN consented    boolean NOT NULL DEFAULT true;

-- Filters of GET /api/v1/rejected, and what a replay must know that the
-- payload does not say: the cookieless id derived at ingest (the IP it came
-- from is never stored), consent the request's headers withdrew (Sec-GPC,
-- DNT) and the properties already hashed or dropped. A replayed row keeps
-- the id of the event it became, so that it is replayed once.
ALTER TABLE rejected_events
	ADD COLUMN event_name           text,
	ADD COLUMN error_codes          text[] NOT NULL DEFAULT '{}',
	ADD COLUMN quarantined          boolean NOT NULL DEFAULT false,
	ADD COLUMN derived_anonymous_id text,
	ADD COLUMN consent_overrides    jsonb NOT NULL DEFAULT '{}',
	ADD COLUMN redacted             text[] NOT NULL DEFAULT '{}',
	ADD COLUMN replayed_at          timestamptz,
	ADD COLUMN replayed_event_id    uuid;
CREATE INDEX rejected_events_pending ON rejected_events (site_id, id)
	WHERE replayed_at IS NULL;

-- One salt per UTC day for cookieless visitor ids, shared by every
-- collector of the cluster. Yesterday's salt is deleted when today's is
-- made, so ids cannot be recomputed or linked across days.
CREATE TABLE visitor_salts (
	day        date PRIMARY KEY,
	salt       bytea NOT NULL CHECK (length(salt) = 32),
	created_at timestamptz NOT NULL DEFAULT now()
);

-- Who erased a person and what it removed, without the person's ids.
CREATE TABLE erasure_audit (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	requested_at timestamptz NOT NULL DEFAULT now(),
	requested_by text NOT NULL,
	request_id   text NOT NULL,
	site_id      text,
	counts       jsonb NOT NULL
);

-- Retention: drops the monthly partitions of events that end before
-- cutoff, then deletes the older rows of the partition cutoff falls in.
-- Partition names come from milepost_ensure_event_partition (0001).
CREATE FUNCTION milepost_apply_retention(cutoff timestamptz,
	OUT dropped_partitions integer, OUT deleted_events bigint)
LANGUAGE plpgsql AS $$
DECLARE
	part record;
BEGIN
	dropped_partitions := 0;
	FOR part IN
		SELECT c.relname
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass
		  AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
	LOOP
		IF (to_date(substr(part.relname, 8), 'YYYY_MM') + interval '1 month')
		   AT TIME ZONE 'UTC' <= cutoff THEN
			EXECUTE format('DROP TABLE %I', part.relname);
			dropped_partitions := dropped_partitions + 1;
		END IF;
	END LOOP;
	DELETE FROM events WHERE ts < cutoff;
	GET DIAGNOSTICS deleted_events = ROW_COUNT;
END;
$$;
