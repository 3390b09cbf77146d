-- 0013_rejected_once.sql - a rejected event is kept once: a request the
-- spool replays after it was already committed (a crash between the commit
-- and the spool file's removal, or a lost answer to the COMMIT) must not
-- add its rejected rows a second time. The writer inserts them with
-- ON CONFLICT DO NOTHING on this key. received_at is part of it because
-- request ids are unique per daemon, not across a fleet. Never edit this
-- file once landed.

-- Rows that earlier replays added twice: the first one stays.
DELETE FROM rejected_events a
	USING rejected_events b
	WHERE a.site_id = b.site_id AND a.request_id = b.request_id
	AND a.event_index = b.event_index AND a.received_at = b.received_at
	AND a.id > b.id;

CREATE UNIQUE INDEX rejected_events_once ON rejected_events
	(site_id, request_id, event_index, received_at);
