// segment_node.mjs - Segment's Node library (@segment/analytics-node), as a
// server-side sender would use it, pointed at the collector. Reads one JSON
// spec on stdin: {"host", "writeKey", "flushAt", "calls": [{"method":
// "track"|"page"|"identify"|"alias"|..., "params": {...}}]}; makes the
// calls, flushes, and prints {"errors": [...]} (what the library reported).
import { Analytics } from '@segment/analytics-node';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const spec = JSON.parse(input);
const analytics = new Analytics({
  writeKey: spec.writeKey, host: spec.host, flushAt: spec.flushAt || 15,
  maxEventsInBatch: spec.flushAt || 15, maxRetries: 1,
});
const errors = [];
analytics.on('error', (e) => errors.push(String(e && (e.reason || e.message) || e)));
for (const call of spec.calls) analytics[call.method](call.params);
await analytics.closeAndFlush({ timeout: 20000 });
process.stdout.write(JSON.stringify({ errors }) + '\n');
