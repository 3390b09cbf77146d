-- 0009_alert_deliveries.sql - the webhook calls of alert transitions, one
-- row per transition and URL, with their attempts (server/deliverer.c;
-- docs/alerts.md). Never edit this file once landed.

CREATE TABLE alert_deliveries (
	site_id      text NOT NULL,
	id           bigint GENERATED ALWAYS AS IDENTITY,
	event_id     bigint NOT NULL,	-- alert_events.id
	url          text NOT NULL,
	payload      jsonb NOT NULL,
	status       text NOT NULL DEFAULT 'pending'
	             CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts     integer NOT NULL DEFAULT 0,
	next_at      timestamptz NOT NULL DEFAULT now(),
	last_status  integer,		-- the last answer's HTTP status
	last_error   text,
	delivered_at timestamptz,
	created_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (site_id, id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_at)
	WHERE status = 'pending';
CREATE INDEX alert_deliveries_event ON alert_deliveries (site_id, event_id);
