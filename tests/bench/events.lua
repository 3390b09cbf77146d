-- events.lua - wrk script for tests/bench/ingest.sh: POST /v1/events with
-- EVENTS_PER_REQUEST native events (environment, default 1): one event
-- object when 1, else {"batch": [...]}.
--
--   EVENTS_PER_REQUEST=100 wrk -t2 -c16 -d15s --latency -s events.lua \
--       http://127.0.0.1:PORT/v1/events
--
-- Events are ~400 bytes, valid per docs/api.md, without event_id (the server
-- generates one, so every request stores new events) and without ts (the
-- receive time is used). Visitor, session, page and product vary from one
-- event to the next: VISITORS visitors (each with its own session), as a
-- live site has, since ingest keeps per-visitor state (people, sessions,
-- first times) and one visitor sending every event would measure a hot row,
-- not the collector. The bodies are built once, a pool of BODIES requests
-- sent in turn: fixed bodies keep wrk's own CPU cost low, since on a 2-core
-- machine it competes with the server. The count comes from the
-- environment because done() runs in a Lua state that never sees init()'s
-- arguments.

local EVENTS = tonumber(os.getenv("EVENTS_PER_REQUEST") or "1")

local names = { "page_viewed", "product_viewed", "product_added", "checkout_started", "order_completed" }
local categories = { "shoes/running", "shoes/hiking", "apparel/jackets", "apparel/socks", "gear/packs" }

local VISITORS = 4001
local BODIES = EVENTS == 1 and VISITORS or 101

local function event(i)
	local v = i % VISITORS
	return string.format('{"name":"%s",'
		.. '"anonymous_id":"7c9e6679-7425-40de-944b-%012d",'
		.. '"session_id":"s_3f2a9c1e5b7d4f60%04d",'
		.. '"url":"https://shop.example/products/trail-runner-gtx-%d?size=42&utm_source=newsletter&utm_medium=email&utm_campaign=spring",'
		.. '"referrer":"https://www.google.com/search?q=trail+running+shoes",'
		.. '"props":{"sku":"TRG-%04d-BLU-42","price":%d.9,"currency":"EUR","category":"%s","in_stock":true},'
		.. '"consent":{"analytics":true,"marketing":%s}}',
		names[i % #names + 1], v, v, i % 1000, 4400 + i % 1000, 20 + i % 180,
		categories[i % #categories + 1], (i % 3 == 0) and "true" or "false")
end

local function body_of(k)
	if EVENTS == 1 then
		return event(k)
	end
	local events = {}
	for j = 1, EVENTS do
		events[j] = event((k - 1) * EVENTS + j)
	end
	return '{"batch":[' .. table.concat(events, ",") .. ']}'
end

local headers = { ["Content-Type"] = "application/json", ["X-Milepost-Key"] = "wk_bench_key" }
local requests = {}
local body = body_of(1)
local next_request = 0

function init(args)
	for k = 1, BODIES do
		requests[k] = wrk.format("POST", nil, headers, body_of(k))
	end
end

function request()
	next_request = next_request % BODIES + 1
	return requests[next_request]
end


-- One machine-readable line for ingest.sh. wrk counts a response with a status
-- of 400 or more as a status error, and connect/read/write errors and
-- timeouts (no answer within --timeout) separately. Latencies are in ms.
function done(summary, latency, requests)
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format(
		"RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
		.. "non2xx=%d sockerr=%d timeouts=%d events_per_request=%d body_bytes=%d\n",
		summary.requests, secs, summary.requests / secs,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
		e.status, e.connect + e.read + e.write, e.timeout, EVENTS, #body))
end
