-- 0011_erasure_indexes.sql - erasure and retention find a person's rows by
-- index. Erasure resolves the id through identities and person_merges to
-- the people it belongs to, then deletes their events by person_id; before
-- this, each step of its walk read every event of the site, and a site of a
-- few million events outlasted the query pool's 30 s statement timeout.
-- Retention asks the same index whether a person has any event left.
-- Building these over a large events table takes time
-- (docs/operations.md, "Upgrades"). Never edit this file once landed.

-- Secondary indexes lead with the id, not the site (see 0005).
CREATE INDEX events_person ON events (person_id, site_id);

-- An event with both ids whose link was refused (a shared computer) is
-- stored under the user's person but carries the device's anonymous id;
-- erasing the device's person must find it. Only events with a user id
-- are indexed: the others belong to their anonymous id's person.
CREATE INDEX events_device_of_user ON events (anonymous_id, site_id)
	WHERE user_id IS NOT NULL;

-- The ids a rejected event carries, as erasure looks them up (one index
-- instead of three; the expression must match api_people.c's exactly).
CREATE INDEX rejected_events_ids ON rejected_events USING gin
	((ARRAY[payload->>'anonymous_id', payload->>'user_id',
	        derived_anonymous_id]));

-- Retention now forgets a person none of whose events is left, through the
-- sessions it deletes (server/store.c). The people whose events went
-- before that are forgotten here, once: ids are only ever stored with an
-- event, so a person with no event (under its own id or one merged into
-- it) and no visit is left over from retention or erasure.
WITH emptied AS (
	SELECT DISTINCT i.site_id, i.person_id FROM identities i
	WHERE NOT EXISTS (SELECT 1 FROM events e
	                  WHERE e.person_id = i.person_id AND e.site_id = i.site_id)
	  AND NOT EXISTS (SELECT 1 FROM sessions s
	                  WHERE s.person_id = i.person_id AND s.site_id = i.site_id)
	  AND NOT EXISTS (SELECT 1 FROM person_merges m JOIN events e
	                  ON e.person_id = m.from_person AND e.site_id = m.site_id
	                  WHERE m.site_id = i.site_id AND m.into_person = i.person_id)
), merges AS (
	DELETE FROM person_merges m USING emptied p
	WHERE m.site_id = p.site_id AND m.into_person = p.person_id
)
DELETE FROM identities i USING emptied p
WHERE i.person_id = p.person_id AND i.site_id = p.site_id;
