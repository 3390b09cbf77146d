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
