-- 0015_query_index.sql - what the daemon's in-memory query index needs to
-- follow the store exactly (docs/architecture.md, "Query index").
--
-- Events and person merges carry the id of the transaction that wrote them
-- (xid, as pg_current_xact_id(), a 64-bit id that never wraps). A catch-up
-- reads the rows whose writer is visible in its snapshot and was not in the
-- previous catch-up's: every committed write exactly once, whatever order
-- transactions commit in. Rows written before this migration have no xid:
-- the index's first load reads them all. Visits change with every event
-- (their last event, a landing that an earlier event arriving late
-- replaces): a catch-up reads again the visits of the events it reads, so
-- that ingest pays for no index on them.
--
-- Deletes leave no row to read, so every statement that deletes events or
-- visits (erasure, retention) also writes an index_changes row naming the
-- region it deleted from, in the same transaction: the index forgets that
-- region and reads it again. Never edit this file once landed.

-- bigint rather than xid8: the comparison an index range scan needs is the
-- same, and bigint columns are what every client reads.
ALTER TABLE events ADD COLUMN xid bigint;
ALTER TABLE events ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
-- Events are only inserted: the newest transactions are the right edge of
-- the index, so a catch-up reads what is new and nothing else.
CREATE INDEX events_xid ON events (xid);

-- A merge moves a person's ids, visits and milestones; the index needs the
-- merge itself. Re-pointing older merges (milepost_merge_person) stamps the
-- row again.
ALTER TABLE person_merges ADD COLUMN xid bigint;
ALTER TABLE person_merges ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
CREATE INDEX person_merges_xid ON person_merges (xid);
CREATE FUNCTION milepost_stamp_xid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.xid := pg_current_xact_id()::text::bigint;
	RETURN NEW;
END;
$$;
CREATE TRIGGER person_merges_xid BEFORE UPDATE ON person_merges
	FOR EACH ROW EXECUTE FUNCTION milepost_stamp_xid();

-- A region rows were deleted from. site_id NULL: every site. people: the
-- events of these person ids (events.person_id, as stored); sessions: the
-- visits of these ids; events_before, sessions_before: the events whose
-- ts, and the visits whose last_at, lie before it.
CREATE TABLE index_changes (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	xid             bigint NOT NULL
	                DEFAULT pg_current_xact_id()::text::bigint,
	at              timestamptz NOT NULL DEFAULT now(),
	site_id         text,
	people          bigint[],
	sessions        text[],
	events_before   timestamptz,
	sessions_before timestamptz
);
CREATE INDEX index_changes_xid ON index_changes (xid);
