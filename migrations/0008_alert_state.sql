-- 0008_alert_state.sql - where each alert rule stands, and every change of
-- its state (server/alert_judge.c; docs/alerts.md). Never edit this file
-- once landed.

-- One row per rule judged at least once; a rule without one is ok.
CREATE TABLE alert_states (
	site_id      text NOT NULL,
	rule_id      bigint NOT NULL,
	state        text NOT NULL
	             CHECK (state IN ('ok', 'firing', 'resolved', 'insufficient_data')),
	since        timestamptz NOT NULL,	-- when it entered that state
	period_start timestamptz,		-- the last period judged
	value        float8,
	bound        float8,
	baseline     float8,
	judged_at    timestamptz NOT NULL,
	PRIMARY KEY (site_id, rule_id),
	FOREIGN KEY (site_id, rule_id) REFERENCES alert_rules ON DELETE CASCADE
);

-- The transitions, kept when their rule is deleted.
CREATE TABLE alert_events (
	site_id      text NOT NULL,
	id           bigint GENERATED ALWAYS AS IDENTITY,
	rule_id      bigint NOT NULL,
	rule_name    text NOT NULL,
	from_state   text NOT NULL,
	to_state     text NOT NULL,
	period_start timestamptz,
	period_end   timestamptz,
	value        float8,
	bound        float8,
	baseline     float8,
	why          text NOT NULL,
	at           timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (site_id, id)
);
CREATE INDEX alert_events_rule ON alert_events (site_id, rule_id, id);
