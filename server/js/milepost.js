// milepost.js - the Milepost snippet: page views, tracks, identify, consent.
// Usage and guarantees: docs/snippet.md. GET /js/milepost.js serves this
// file without its whole-line comments and indentation: it stays within its
// size budget by being plain, not by a minifier. Needs a browser of 2020 on.
((w, d, n) => {
  const s = d.currentScript, key = s?.getAttribute('data-key');
  if (!key || w.milepost?.v) return;
  const attr = (a) => s.getAttribute('data-' + a);
  const url = (attr('host') || new URL(s.src).origin) + '/v1/events?key=' + encodeURIComponent(key);
  let timer = 0, busy = 0, wait = 1e3, last, ls, st, camp = {};

  // What is kept (never in a cookie): consent, ids and the retry queue, in
  // one localStorage entry, and only while consent grants analytics.
  try { ls = w.localStorage; st = JSON.parse(ls.getItem('milepost')); } catch (e) {}
  let { consent, aid, uid, uh, q = [] } = st || {};
  const keep = () => consent?.analytics, u = undefined;
  const save = () => {
    try {
      keep() ? ls.setItem('milepost', JSON.stringify({ consent, aid, uid, uh, q }))
        : ls.removeItem('milepost');
    } catch (e) {}
  };
  const now = () => new Date().toISOString();
  const uuid = () => crypto.randomUUID?.() || ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g,
    (x) => (x ^ crypto.getRandomValues(new Uint8Array(1))[0] & 15 >> x / 4).toString(16));
  // Global Privacy Control always withdraws marketing.
  const setConsent = (c) => {
    consent = {};
    for (const k in c) consent[k] = !!c[k];
    if (n.globalPrivacyControl) consent.marketing = false;
    aid = keep() ? aid || uuid() : u;
    if (!keep()) q = [];
    save();
  };
  if (consent) setConsent(consent);

  // The landing page's campaign goes with every event of this page's life.
  new URL(location.href).searchParams.forEach((v, k) => {
    if (v && /^utm_(source|medium|campaign|term|content)$/.test(k)) camp[k == 'utm_campaign' ? 'name' : k.slice(4)] = v;
  });

  const add = (e) => {
    q.push({
      ...e, event_id: uuid(), ts: now(), url: location.href,
      referrer: last || d.referrer || u, anonymous_id: aid, user_id: uid, user_hash: uh, consent,
      campaign: Object.keys(camp)[0] && camp,
      context: { page: { title: d.title }, screen: { width: screen.width, height: screen.height } }
    });
    q = q.slice(-200);
    timer = timer || setTimeout(flush, 1e3);
  };

  // Sends the queue in batches. While the page lives, fetch (a text/plain
  // body: no preflight) tells failure, and the batch goes back to the queue
  // for a retry with backoff; a page going away gets a beacon instead.
  // Event ids make every retry safe.
  const flush = (leaving) => {
    clearTimeout(timer);
    timer = 0;
    if (!q.length || (busy && !leaving)) return;
    const batch = q.splice(0, 100), sent = now();
    batch.forEach((e) => { e.sent_at = sent; });
    const body = JSON.stringify({ batch });
    const back = () => { q = batch.concat(q); save(); };
    if (leaving) return n.sendBeacon?.(url, body) ? save() : back();
    busy = 1;
    fetch(url, { method: 'POST', body, keepalive: body.length < 6e4 })
      .then((r) => { if (r.status > 499 || r.status == 429) throw r; wait = 1e3; save(); })
      .catch(() => { back(); wait = Math.min(wait * 2, 6e4); })
      .then(() => { busy = 0; if (q.length) timer = setTimeout(flush, wait); });
  };

  const page = () => {
    if (location.href != last) add({ name: attr('page-event') || 'page_viewed' }), last = location.href;
  };
  const api = {
    track: (name, props) => add({ name, props }),
    page,
    // o.userHash: the backend's HMAC of id, for identity verification.
    identify: (id, o) => { uid = id; uh = o?.userHash; save(); add({ type: 'identify' }); },
    consent: setConsent,
    reset: () => { uid = uh = u; aid = keep() ? uuid() : u; save(); }
  };
  const call = ([f, ...a]) => api[f]?.(...a);
  const queued = w.milepost?.q || [];
  w.milepost = (...a) => call(a);
  w.milepost.v = 1;
  queued.forEach(call);

  if (attr('auto-page') != 'false') {
    for (const f of ['pushState', 'replaceState']) {
      const o = history[f];
      history[f] = function () { const r = o.apply(this, arguments); page(); return r; };
    }
    w.addEventListener('popstate', page);
    page();
  }
  w.addEventListener('online', () => flush());
  w.addEventListener('pagehide', () => flush(1));
  d.addEventListener('visibilitychange', () => d.hidden && flush(1));
  if (q.length) flush();
})(window, document, navigator);
