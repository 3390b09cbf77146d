-- 0003_enrichment.sql - what ingest learns about each event besides what
-- it says: where the visit came from, on what device, and whether the
-- sender's clock had to be corrected. Never edit this file once landed.

ALTER TABLE events
	ADD COLUMN referrer_host  text,
	ADD COLUMN utm_source     text,
	ADD COLUMN utm_medium     text,
	ADD COLUMN utm_campaign   text,
	ADD COLUMN utm_term       text,
	ADD COLUMN utm_content    text,
	ADD COLUMN click_id_kind  text,
	ADD COLUMN channel        text,
	ADD COLUMN device         text,
	ADD COLUMN browser        text,
	ADD COLUMN os             text,
	-- Bots are stored, flagged, and left out of every query by default.
	ADD COLUMN bot            boolean NOT NULL DEFAULT false,
	-- ts was clamped: the sender's clock was ahead beyond the tolerance.
	ADD COLUMN ts_adjusted    boolean NOT NULL DEFAULT false;
