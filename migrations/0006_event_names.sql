-- 0006_event_names.sql - the query API looks events up by name: the
-- conversions of attribution and signals, the steps of a funnel, the
-- counts of an alert. Without this index each of them reads every event
-- of its range; with it, only the events it names. It costs ingest one
-- more index entry per event (docs/performance.md, "Attribution").
-- Never edit this file once landed.

CREATE INDEX events_name ON events (site_id, name, ts);
