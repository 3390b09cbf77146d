-- 0007_alert_rules.sql - alert rules, as the API saves them
-- (common/alert_rule.c checks them; docs/alerts.md defines them).
-- Never edit this file once landed.

CREATE TABLE alert_rules (
	site_id    text NOT NULL,
	id         bigint GENERATED ALWAYS AS IDENTITY,
	name       text NOT NULL,
	rule       jsonb NOT NULL,	-- every field written out, defaults too
	-- 'config': declared in the configuration, which alone changes it.
	source     text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'config')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (site_id, id),
	UNIQUE (site_id, name)
);
