// app.js - Milepost's built-in dashboard. Plain JavaScript, no framework,
// no build step: it reads the public JSON API (/api/v1) with the read key
// the person pastes, and draws tables and bars from it. Nothing here can
// do what the API cannot; docs/dashboard.md describes each panel.
//
// The key lives in sessionStorage only (gone with the tab) and travels as
// `Authorization: Bearer`; the view's state lives in the URL's query, so a
// link shows a colleague the same view (with their own key).
'use strict';

(function () {
  const KEY_STORE = 'milepost.readKey';
  const TABS = ['framework', 'funnel', 'attribution', 'targets', 'signals', 'alerts'];
  // State kept in the URL, with the value that means "the API's default".
  const DEFAULTS = {
    tab: 'framework', site: '', from: '', to: '',
    steps: '', window: '30d', order: 'ordered', breakdown: '', filter: '',
    dimension: 'channel', lookback: '30d', interval: 'week', signal_window: '30d',
  };
  const MODELS = ['first_touch', 'last_touch', 'last_non_direct', 'linear',
    'time_decay', 'position_based', 'data_driven'];

  const $ = (id) => document.getElementById(id);
  let state = readState();
  let generation = 0;   // answers of a superseded view are dropped

  // ---- numbers for humans

  const fmtInt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const fmtDec = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  const fmtPct = new Intl.NumberFormat(undefined, {
    style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1,
  });
  const fmtMoney = new Intl.NumberFormat(undefined, {
    minimumFractionDigits: 2, maximumFractionDigits: 2,
  });
  const dash = '–';

  function count(n) { return n == null ? dash : fmtInt.format(n); }
  function dec(n) { return n == null ? dash : fmtDec.format(n); }
  function pct(r) { return r == null ? dash : fmtPct.format(r); }
  // A percentage the API already multiplied by 100.
  function pct100(p) { return p == null ? dash : fmtPct.format(p / 100); }
  function money(n, cur) {
    if (n == null) return dash;
    return fmtMoney.format(n) + (cur ? ' ' + cur : '');
  }

  function duration(s) {
    if (s == null) return dash;
    s = Math.round(s);
    if (s < 60) return s + ' s';
    const units = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
    const parts = [];
    for (const [name, size] of units) {
      if (s >= size && parts.length < 2) {
        parts.push(Math.floor(s / size) + ' ' + name);
        s %= size;
      } else if (parts.length) {
        break;
      }
    }
    return parts.join(' ');
  }

  function pValue(p) {
    if (p == null) return dash;
    return p < 0.001 ? '< 0.001' : fmtDec.format(p);
  }

  function when(t) {
    if (!t) return dash;
    const d = new Date(t);
    return isNaN(d) ? t : d.toLocaleString(undefined,
      { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }) + ' UTC';
  }

  function day(t) { return t ? String(t).slice(0, 10) : dash; }

  // ---- DOM helpers: text only, never HTML from the API

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c == null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // A table with a header row; with stack (the default), a phone shows
  // each row as a card, every cell labelled by its column's name.
  function table(caption, head, rows, cls, stack) {
    const labels = head.map((h) => h.label || h);
    for (const tr of rows) {
      [...tr.children].forEach((cell, i) => {
        if (cell.tagName === 'TD' && labels[i]) cell.dataset.label = labels[i];
      });
    }
    const classes = [cls, stack === false ? null : 'stack'].filter(Boolean).join(' ');
    return el('div', { class: 'scroll' },
      el('table', { class: classes || null },
        caption ? el('caption', { text: caption }) : null,
        el('thead', {}, el('tr', {}, head.map((h, i) =>
          el('th', { scope: 'col', class: h.num ? 'num' : null }, labels[i])))),
        el('tbody', {}, rows)));
  }

  function badge(text, kind) { return el('span', { class: 'badge ' + kind, text }); }

  // A bar of share (0..1) of its track, with the text beside it.
  function bar(share, label, whisker) {
    const track = el('span', { class: 'track', 'aria-hidden': 'true' });
    const fill = el('span', { class: 'fill' });
    fill.style.width = Math.max(0, Math.min(1, share || 0)) * 100 + '%';
    track.append(fill);
    if (whisker && whisker.lo != null) {
      const w = el('span', { class: 'whisker' });
      w.style.left = whisker.lo * 100 + '%';
      w.style.width = Math.max(0, whisker.hi - whisker.lo) * 100 + '%';
      track.append(w);
    }
    return el('span', { class: 'bar' }, track, label ? el('span', { class: 'bar-text', text: label }) : null);
  }

  function setBody(id, ...nodes) {
    const box = $(id);
    box.replaceChildren(...nodes.flat());
    box.removeAttribute('aria-busy');
  }

  function loading(id) {
    const box = $(id);
    box.setAttribute('aria-busy', 'true');
    box.replaceChildren(el('p', { class: 'loading', text: 'Loading…' }));
  }

  // ---- state <-> URL

  function readState() {
    const q = new URLSearchParams(location.search);
    const s = {};
    for (const k of Object.keys(DEFAULTS)) s[k] = q.get(k) ?? DEFAULTS[k];
    if (!TABS.includes(s.tab)) s.tab = DEFAULTS.tab;
    return s;
  }

  function writeState(push) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) {
      if (v !== '' && v !== DEFAULTS[k]) q.set(k, v);
    }
    const url = location.pathname + (q.toString() ? '?' + q : '');
    if (url !== location.pathname + location.search) {
      history[push ? 'pushState' : 'replaceState'](null, '', url);
    }
  }

  // Puts the state's values in the controls (a value not among a
  // select's options, from a shared link, gets its own option).
  function fillControls() {
    for (const k of Object.keys(DEFAULTS)) {
      const c = $(k);
      if (!c || k === 'tab') continue;
      if (c.tagName === 'SELECT' && ![...c.options].some((o) => o.value === state[k])) {
        c.append(el('option', { value: state[k], text: state[k] }));
      }
      c.value = state[k];
    }
  }

  function readControls(form) {
    for (const c of form.elements) {
      if (c.name && c.name in DEFAULTS) state[c.name] = c.value.trim();
    }
  }

  // ---- the API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, params) {
    const q = new URLSearchParams();
    if (state.site) q.set('site', state.site);
    for (const [k, v] of Object.entries(params || {})) {
      if (v != null && v !== '') q.set(k, v);
    }
    let resp;
    try {
      resp = await fetch('api/v1/' + path + (q.toString() ? '?' + q : ''), {
        headers: { Authorization: 'Bearer ' + sessionStorage.getItem(KEY_STORE) },
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'The collector could not be reached.');
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const err = body && body.error ? body.error : {};
      throw new ApiError(resp.status, err.code || 'http_' + resp.status,
        err.message || resp.statusText);
    }
    return body;
  }

  function range() {
    return { from: state.from, to: state.to };
  }

  function showMessage(text) {
    const m = $('message');
    m.textContent = text;
    m.hidden = !text;
  }

  // What a failed call means, in a sentence with the code to look up.
  function explain(e) {
    if (e.status === 401) {
      return 'That key was refused (' + e.status + ' ' + e.code + '). ' +
        'Paste a read key from the collector\'s api_keys.';
    }
    if (e.status === 403) return 'That key may not do this (403 ' + e.code + '): ' + e.message;
    if (e.status === 0) return e.message;
    return 'The collector answered ' + e.status + ' ' + e.code + ': ' + e.message;
  }

  function failed(id, e) {
    if (e.status === 401) {
      sessionStorage.removeItem(KEY_STORE);
      showKeyForm(explain(e));
      return;
    }
    setBody(id, el('p', { class: 'error', role: 'alert', text: explain(e) }));
    // A key that sees several sites: the answer is the Site field.
    if (e.code === 'invalid_parameter' && /^site /.test(e.message)) $('site').focus();
  }

  // ---- panels

  function targetText(t) {
    if (!t) return null;
    return 'target ' + pct(t.target) + ' per ' + t.period +
      (t.baseline != null ? ' (baseline ' + pct(t.baseline) + ')' : '');
  }

  function eventCard(ev, macro) {
    return el('li', { class: 'event' + (macro ? ' macro' : ''), 'data-event': ev.name },
      el('span', { class: 'event-name', text: ev.name }),
      macro ? badge('macro conversion', 'macro') : null,
      ev.description ? el('span', { class: 'event-desc', text: ev.description }) : null,
      el('span', { class: 'event-meta' },
        el('span', { class: 'owner', text: ev.owner ? 'Owner: ' + ev.owner : 'No owner' }),
        ev.target ? el('span', { class: 'target', text: targetText(ev.target) }) : null));
  }

  async function loadFramework(gen) {
    const plan = await api('plan');
    if (gen !== generation) return;
    $('plan-name').textContent = (plan.name || 'Tracking plan') + ' · version ' + plan.version +
      ' · site ' + plan.site;
    if (!plan.phases.length) {
      setBody('framework', el('p', { text: 'No tracking plan is configured: every well-named event is accepted.' }));
      return;
    }
    const macro = plan.macro_conversion ? plan.macro_conversion.name : null;
    const phases = el('ol', { class: 'phases' }, plan.phases.map((p, i) =>
      el('li', { class: 'phase', 'data-phase': p.name },
        el('h3', {}, el('span', { class: 'phase-no', text: String(i + 1) }), ' ', p.name),
        p.description ? el('p', { class: 'phase-desc', text: p.description }) : null,
        el('ol', { class: 'milestones' }, p.milestones.map((m) => eventCard(m, m.name === macro))))));
    const parts = [phases];
    if (plan.macro_conversion) {
      parts.unshift(el('p', { class: 'macro-line' }, 'Macro conversion: ',
        el('strong', { text: plan.macro_conversion.name }),
        plan.macro_conversion.owner ? ' · owner ' + plan.macro_conversion.owner : '',
        plan.macro_conversion.target ? ' · ' + targetText(plan.macro_conversion.target) : ''));
    }
    parts.push(el('h3', { text: 'Secondary actions' }),
      plan.secondary_actions.length
        ? el('ul', { class: 'secondary' }, plan.secondary_actions.map((s) => eventCard(s, false)))
        : el('p', { text: 'None in the plan.' }));
    setBody('framework', parts);
  }

  function funnelTable(steps, caption) {
    const first = steps.length ? steps[0].entered : 0;
    const head = ['Step', { label: 'People', num: true }, 'Of the first (95% interval)',
      { label: 'From previous', num: true }, { label: 'From first', num: true },
      { label: 'Median time from previous', num: true }, { label: 'Drop-off', num: true }];
    const rows = steps.map((s, i) => {
      const f = s.conversion_from_first;
      const p = s.conversion_from_previous;
      const share = first > 0 ? s.entered / first : 0;
      return el('tr', { 'data-step': s.name, 'data-index': String(i) },
        el('th', { scope: 'row' }, s.name, s.filter ? ' [' + s.filter.property + '=' + s.filter.value + ']' : '',
          // A phase, or a set of events: which of them reach the step.
          s.events && s.events.join('|') !== s.name ? el('small', { text: ' ' + s.events.join(' or ') }) : null),
        el('td', { class: 'num', 'data-field': 'entered', text: count(s.entered) }),
        el('td', { class: 'bar-cell' }, bar(share, i === 0 ? '100%' : pct(f && f.rate), f)),
        el('td', { class: 'num', 'data-field': 'from_previous' }, pct(p && p.rate),
          p ? el('small', { text: ' ' + pct(p.lo) + '–' + pct(p.hi) }) : null),
        el('td', { class: 'num', 'data-field': 'from_first' }, pct(f && f.rate),
          f ? el('small', { text: ' ' + pct(f.lo) + '–' + pct(f.hi) }) : null),
        el('td', { class: 'num', 'data-field': 'median', text: duration(s.seconds_from_previous.median) }),
        el('td', { class: 'num', 'data-field': 'drop_off', text: count(s.drop_off) }));
    });
    return table(caption, head, rows, 'funnel');
  }

  async function loadFunnel(gen) {
    const f = await api('funnel', Object.assign(range(), {
      steps: state.steps, window: state.window, order: state.order,
      breakdown: state.breakdown, filter: state.filter,
    }));
    if (gen !== generation) return;
    const q = f.query;
    const parts = [
      el('p', { class: 'summary' }, 'People entering from ', day(q.from), ' to ', day(q.to),
        ' (exclusive), steps ', q.order === 'any' ? 'in any order' : q.order, ', within ', q.window, ' of entry',
        q.steps_from === 'plan' ? ', the plan\'s funnel.' : '.',
        f.low_volume ? ' ' : '', f.low_volume ? badge('low volume: fewer than ' + count(q.min_volume) + ' people', 'low') : null),
      el('div', { class: 'group', 'data-group': '' }, funnelTable(f.steps, 'Everyone')),
    ];
    for (const g of f.groups || []) {
      parts.push(el('div', { class: 'group' + (g.low_volume ? ' is-low' : ''), 'data-group': g.value },
        el('h3', {}, (q.breakdown || q.cohort) + ': ' + g.value, ' ',
          g.low_volume ? badge('low volume', 'low') : null),
        funnelTable(g.steps, null)));
    }
    setBody('funnel', parts);
  }

  async function loadAttribution(gen) {
    const a = await api('attribution', Object.assign(range(), {
      dimension: state.dimension, lookback: state.lookback, models: 'all',
    }));
    if (gen !== generation) return;
    const models = a.query.models || MODELS;
    const cur = a.revenue.currency;
    const head = [a.query.dimension].concat(models.map((m) => ({ label: m.replace(/_/g, ' '), num: true })));
    const rows = a.values.map((v) => el('tr', { 'data-value': v.value },
      el('th', { scope: 'row', text: v.value }),
      models.map((m) => el('td', { class: 'num', 'data-model': m },
        el('span', { class: 'conv', text: dec(v[m] && v[m].conversions) }),
        el('small', { class: 'rev', text: money(v[m] && v[m].revenue, cur) })))));
    const top = a.paths.top.map((p) => el('tr', {},
      el('th', { scope: 'row', text: p.path }), el('td', { class: 'num', text: count(p.conversions) })));
    setBody('attribution',
      el('p', { class: 'summary' }, count(a.conversions), ' conversions (', a.query.conversion,
        ') from ', day(a.query.from), ' to ', day(a.query.to), ', revenue ',
        money(a.revenue.total, cur), '; touches per conversion: median ',
        dec(a.paths.touches.median), ', time to convert: median ',
        duration(a.paths.seconds_to_conversion.median), '.'),
      a.values.length
        ? table('Conversions credited by each model (revenue below)', head, rows, 'attribution')
        : el('p', { text: 'No conversions in this range.' }),
      el('h3', { text: 'Top paths (channels)' }),
      top.length ? table(null, ['Path', { label: 'Conversions', num: true }], top, 'paths')
        : el('p', { text: 'No paths.' }));
  }

  function paceBadge(pace) {
    if (pace === 'on_track') return badge('on track', 'ok');
    if (pace === 'behind') return badge('behind', 'bad');
    return badge('no data', 'none');
  }

  async function loadTargets(gen) {
    const m = await api('milestones', Object.assign(range(), { interval: state.interval }));
    if (gen !== generation) return;
    const targeted = m.milestones.filter((x) => x.target);
    const sumRows = targeted.map((x) => {
      const t = x.target;
      return el('tr', { 'data-milestone': x.name },
        el('th', { scope: 'row', text: x.name }),
        el('td', { text: t.owner || x.owner || dash }),
        el('td', { class: 'num', 'data-field': 'target', text: pct(t.target) + ' / ' + t.period }),
        el('td', { class: 'num', 'data-field': 'rate', text: pct(t.rate) }),
        el('td', { class: 'num', 'data-field': 'attainment', text: pct100(t.attainment_pct) }),
        el('td', { class: 'bar-cell', 'data-field': 'progress' },
          bar(t.progress_pct == null ? 0 : t.progress_pct / 100, pct100(t.progress_pct))),
        el('td', { 'data-field': 'pace' }, paceBadge(t.pace)));
    });
    const periods = m.periods;
    const perHead = ['Milestone'].concat(periods.map((p) => ({
      label: p.start + (p.complete ? '' : ' (partial)'), num: true })));
    const perRows = m.milestones.map((x) => el('tr', { 'data-milestone': x.name },
      el('th', { scope: 'row', text: x.name }),
      x.periods.map((p) => {
        const hit = x.target && x.target.period === m.query.interval && p.rate != null
          ? (p.rate >= x.target.target ? 'ok' : 'bad') : null;
        return el('td', { class: 'num' + (hit ? ' ' + hit : ''), 'data-start': p.start },
          el('span', { class: 'rate', text: pct(p.rate) }),
          el('small', { class: 'people', text: count(p.people) + ' people' }),
          hit ? el('span', { class: 'sr-only', text: hit === 'ok' ? ' (target met)' : ' (below target)' }) : null);
      })));
    const active = el('tr', {}, el('th', { scope: 'row', text: 'active people' }),
      periods.map((p) => el('td', { class: 'num', text: count(p.active_people) })));
    setBody('targets',
      targeted.length
        ? table('Last complete target period', ['Milestone', 'Owner', { label: 'Target', num: true },
          { label: 'Rate', num: true }, { label: 'Attainment', num: true }, 'Progress from baseline', 'Pace'],
        sumRows, 'targets')
        : el('p', { text: 'No milestone of the plan has a target.' }),
      el('h3', { text: 'Micro-conversion rate per ' + m.query.interval }),
      table(null, perHead, [active].concat(perRows), 'periods', false));
  }

  async function loadSignals(gen) {
    const s = await api('signals', Object.assign(range(), { window: state.signal_window }));
    if (gen !== generation) return;
    const rows = s.signals.map((x) => el('tr', { 'data-signal': x.name, class: x.low_volume ? 'is-low' : null },
      el('th', { scope: 'row' }, x.name, ' ', x.low_volume ? badge('low volume', 'low') : null),
      el('td', { text: x.kind }),
      el('td', { class: 'num', text: count(x.people) }),
      el('td', { class: 'num', text: pct(x.rate) }),
      el('td', { class: 'num', text: pct(x.rate_without) }),
      el('td', { class: 'num', 'data-field': 'lift', text: x.lift == null ? dash : '× ' + dec(x.lift) }),
      el('td', { class: 'num', text: pValue(x.p_value) }),
      el('td', {}, x.significant ? badge(x.lift != null && x.lift < 1 ? 'significant (fewer)' : 'significant', x.lift != null && x.lift < 1 ? 'bad' : 'ok')
        : badge('not significant', 'none'))));
    setBody('signals',
      el('p', { class: 'summary' }, count(s.population.people), ' people, ', count(s.population.converted),
        ' converted (', s.query.conversion, ', ', pct(s.population.rate), ') within ', s.query.window, '.'),
      rows.length ? table('Actions ranked by lift on the conversion rate',
        ['Action', 'Kind', { label: 'People', num: true }, { label: 'Converted', num: true },
          { label: 'Without it', num: true }, { label: 'Lift', num: true }, { label: 'p', num: true }, 'Significance'],
        rows, 'signals') : el('p', { text: 'No milestone or secondary action to compare.' }));
  }

  async function loadAlerts(gen) {
    const since = state.from ? state.from + 'T00:00:00Z' : '';
    let until = '';
    if (state.to) {
      const d = new Date(state.to + 'T00:00:00Z');
      if (!isNaN(d)) until = new Date(d.getTime() + 86400000).toISOString();
    }
    const [a, ev, rej] = await Promise.all([
      api('alerts'),
      api('alerts/events', Object.assign(range(), { limit: 20 })),
      api('rejected', { limit: 1, since, until }),
    ]);
    if (gen !== generation) return;
    const stateBadge = (st) => badge(st.replace(/_/g, ' '),
      st === 'firing' ? 'bad' : st === 'ok' || st === 'resolved' ? 'ok' : 'none');
    const now = a.alerts.map((r) => el('tr', { 'data-rule': String(r.id) },
      el('th', { scope: 'row', text: r.name }),
      el('td', {}, stateBadge(r.state)),
      el('td', { text: r.severity }),
      el('td', { text: r.owner || dash }),
      el('td', { class: 'num', text: dec(r.value) }),
      el('td', { class: 'num', text: dec(r.bound) }),
      el('td', { text: when(r.since) })));
    const hist = ev.events.map((e) => el('tr', {},
      el('td', { text: when(e.at) }),
      el('th', { scope: 'row', text: e.rule_name }),
      el('td', {}, stateBadge(e.from), ' → ', stateBadge(e.to)),
      el('td', { text: e.why || dash })));
    const codes = Object.entries(rej.summary.by_code).sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
    setBody('alerts',
      now.length ? table('Rules now', ['Rule', 'State', 'Severity', 'Owner', { label: 'Value', num: true },
        { label: 'Bound', num: true }, 'Since'], now, 'alert-states')
        : el('p', { text: 'No alert rules. docs/alerts.md shows how to add one.' }),
      el('h3', { text: 'Recent changes' }),
      hist.length ? table(null, ['When', 'Rule', 'Change', 'Why'], hist, 'alert-events')
        : el('p', { text: 'No state changes in this range.' }),
      el('h3', { text: 'Rejected events by code' }),
      el('p', { class: 'summary' }, count(rej.summary.total), ' rejected or quarantined ',
        state.from || state.to ? 'received in this range.' : 'in all.'),
      codes.length ? table(null, ['Code', { label: 'Events', num: true }],
        codes.map(([c, n]) => el('tr', { 'data-code': c }, el('th', { scope: 'row' }, el('code', { text: c })),
          el('td', { class: 'num', text: count(n) }))), 'rejected') : null);
  }

  const LOADERS = {
    framework: ['framework', loadFramework], funnel: ['funnel', loadFunnel],
    attribution: ['attribution', loadAttribution], targets: ['targets', loadTargets],
    signals: ['signals', loadSignals], alerts: ['alerts', loadAlerts],
  };

  // ---- the page

  function showTab() {
    for (const a of document.querySelectorAll('.tabs a')) {
      const on = a.dataset.tab === state.tab;
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
      a.href = '?' + new URLSearchParams(Object.assign({}, Object.fromEntries(
        new URLSearchParams(location.search)), { tab: a.dataset.tab }));
    }
    for (const p of document.querySelectorAll('.panel')) p.hidden = p.dataset.panel !== state.tab;
  }

  async function refresh() {
    if (!sessionStorage.getItem(KEY_STORE)) {
      showKeyForm('');
      return;
    }
    const gen = ++generation;
    const [box, load] = LOADERS[state.tab];
    showTab();
    loading(box);
    try {
      // The plan's name in the header, whatever the tab.
      if (state.tab !== 'framework' && !$('plan-name').textContent) {
        api('plan').then((p) => {
          $('plan-name').textContent = (p.name || 'Tracking plan') + ' · version ' + p.version + ' · site ' + p.site;
        }).catch(() => {});
      }
      await load(gen);
    } catch (e) {
      if (gen === generation) failed(box, e);
    }
  }

  // The sites the key sees (GET /api/v1/sites), offered as the Site
  // field's suggestions; the field stays free text.
  async function listSites() {
    const list = $('site-list');
    list.replaceChildren();
    let sites = [];
    try {
      sites = (await api('sites')).sites;
    } catch (e) {
      return;
    }
    for (const s of sites) {
      const o = document.createElement('option');
      o.value = s.id;
      o.label = s.name;
      list.append(o);
    }
    $('site').placeholder = sites.length > 1 ? 'one of ' + sites.length + ' sites' : "the key's site";
  }

  function showKeyForm(text) {
    $('app').hidden = true;
    $('sign-out').hidden = true;
    $('key-form').hidden = false;
    showMessage(text);
    $('key').focus();
  }

  async function openWithKey(key) {
    sessionStorage.setItem(KEY_STORE, key);
    try {
      await api('plan');
    } catch (e) {
      if (e.status === 401) {
        sessionStorage.removeItem(KEY_STORE);
        showKeyForm(explain(e));
        return;
      }
      // Another failure (a site to choose, a 403): the panels say it.
    }
    showMessage('');
    $('key-form').hidden = true;
    $('key').value = '';
    $('app').hidden = false;
    $('sign-out').hidden = false;
    listSites();
    refresh();
  }

  function apply(form, push) {
    readControls(form);
    writeState(push);
    refresh();
  }

  function wire() {
    $('key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const key = $('key').value.trim();
      if (key) openWithKey(key);
    });
    $('sign-out').addEventListener('click', () => {
      sessionStorage.removeItem(KEY_STORE);
      $('plan-name').textContent = '';
      showKeyForm('The key is forgotten.');
    });
    for (const form of document.querySelectorAll('form.controls')) {
      form.addEventListener('submit', (e) => { e.preventDefault(); apply(form, true); });
      // Choosing from a list or a date applies at once; typed text waits
      // for Enter or the Apply button.
      form.addEventListener('change', (e) => {
        if (e.target.tagName === 'SELECT' || e.target.type === 'date') apply(form, true);
      });
    }
    $('site').addEventListener('change', () => {
      $('plan-name').textContent = '';
      apply($('range'), true);
    });
    for (const a of document.querySelectorAll('.tabs a')) {
      a.addEventListener('click', (e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        state.tab = a.dataset.tab;
        writeState(true);
        refresh();
        $('main').focus({ preventScroll: true });
      });
    }
    window.addEventListener('popstate', () => {
      state = readState();
      fillControls();
      refresh();
    });
  }

  function start() {
    wire();
    fillControls();
    if (sessionStorage.getItem(KEY_STORE)) {
      $('app').hidden = false;
      $('sign-out').hidden = false;
      listSites();
      refresh();
    } else {
      showKeyForm('');
    }
  }

  start();
}());
