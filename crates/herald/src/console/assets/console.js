// herald console front end: plain JavaScript, no framework, no build step, no external requests.
//
// index.html is one shell for every page; the server fills in the page name, the app id and the
// CSRF token. This file shows that page's section and drives it from the console's JSON API
// (/console/api/...) and, on the debug page, the event stream (/console/apps/{id}/stream).
// Every POST carries the X-CSRF-Token header. Text from the server is only ever put in the page
// as text (textContent), never as HTML.
'use strict';

(function () {
  const body = document.body;
  const PAGE = body.dataset.page || 'apps';
  const APP = body.dataset.appId || '';
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const PAGES = ['apps', 'debug', 'channels', 'events', 'webhooks', 'charts'];

  // ------------------------------------------------------------------ helpers

  const $ = (sel, root = document) => root.querySelector(sel);

  /** An element with attributes/properties and children (strings become text nodes). */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k in node && typeof v !== 'string') node[k] = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const fmtNum = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');

  /** HH:MM:SS.mmm of a millisecond timestamp, local time. */
  function fmtTime(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  const fmtClock = (ms) => fmtTime(ms).slice(0, 8);
  function fmtDateTime(ms) {
    if (typeof ms !== 'number') return '—';
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(ms)}`;
  }
  /** "in 4 s" / "5 s ago" for a timestamp relative to now. */
  function fmtRelative(ms) {
    if (typeof ms !== 'number') return '—';
    const s = Math.round((ms - Date.now()) / 1000);
    if (Math.abs(s) < 1) return 'now';
    const abs = Math.abs(s);
    const txt = abs < 120 ? `${abs} s` : abs < 7200 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
    return s > 0 ? `in ${txt}` : `${txt} ago`;
  }

  const appPath = (page, app = APP) => `/console/apps/${encodeURIComponent(app)}/${page}`;
  const apiPath = (rest, app = APP) => `/console/api/apps/${encodeURIComponent(app)}${rest}`;

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /** fetch JSON from the console API; POSTs send JSON with the CSRF header. */
  async function api(path, { method = 'GET', json } = {}) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') {
      headers['X-CSRF-Token'] = CSRF;
      if (json !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(json);
      }
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (res.status === 401) {
      showPageError('Your console session has ended. Reload the page to log in again.');
      throw new HttpError(401, 'not logged in');
    }
    if (!res.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : `HTTP ${res.status}`;
      throw new HttpError(res.status, msg);
    }
    return data;
  }

  function showPageError(message) {
    const p = $('#page-error');
    p.textContent = message;
    p.hidden = false;
  }

  function setStatus(node, text, bad = false) {
    node.textContent = text;
    node.classList.toggle('bad', bad);
  }

  /** Calls `fn` now and every `ms` while the page is visible (skipping overlapping calls). */
  function every(ms, fn, enabled = () => true) {
    let busy = false;
    const tick = async () => {
      if (busy || document.hidden || !enabled()) return;
      busy = true;
      try { await fn(); } finally { busy = false; }
    };
    tick();
    setInterval(tick, ms);
    return tick;
  }

  // ------------------------------------------------------------------ shell: header and navigation

  function initShell() {
    const view = PAGES.includes(PAGE) ? PAGE : 'unknown';
    const section = document.querySelector(`[data-view="${view}"]`);
    section.hidden = false;
    const title = { apps: 'Apps', debug: 'Debug log', channels: 'Channels', events: 'Event creator', webhooks: 'Webhooks', charts: 'Charts' }[view];
    document.title = title ? `${title}${APP ? ` · ${APP}` : ''} · herald console` : 'herald console';
    for (const n of document.querySelectorAll('[data-app-name]')) n.textContent = APP;

    for (const a of document.querySelectorAll('[data-nav]')) {
      const page = a.dataset.nav;
      if (a.hasAttribute('data-app-link')) {
        if (!APP) continue;
        a.href = appPath(page);
        a.hidden = false;
      }
      if (page === PAGE) a.setAttribute('aria-current', 'page');
    }

    const sw = $('#app-switch');
    sw.addEventListener('change', () => {
      const app = sw.value;
      if (!app) { location.href = '/console'; return; }
      location.href = appPath(PAGE === 'apps' ? 'debug' : PAGE, app);
    });
    api('/console/api/apps').then((apps) => {
      for (const app of apps || []) {
        const opt = el('option', { value: app.id, text: app.name ? `${app.id} (${app.name})` : app.id });
        if (app.id === APP) opt.selected = true;
        sw.append(opt);
      }
    }).catch(() => { /* the page itself reports API errors */ });

    $('#logout-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await fetch('/console/logout', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': CSRF } });
      } finally {
        location.href = '/console/login';
      }
    });
    return view;
  }

  // ------------------------------------------------------------------ apps overview

  function quotaCell(used, max) {
    const text = typeof max === 'number' ? `${fmtNum(used)} / ${fmtNum(max)}` : `${fmtNum(used)} (no quota)`;
    if (typeof max !== 'number' || max <= 0) return el('td', {}, el('span', { class: 'quota-text', text }));
    const pct = Math.min(100, (used / max) * 100);
    const fill = el('span', { class: `bar-fill${pct >= 100 ? ' full' : pct >= 80 ? ' warn' : ''}` });
    fill.style.width = `${pct.toFixed(1)}%`;
    return el('td', {}, el('div', { class: 'quota' },
      el('span', { class: 'quota-text', text: `${text} (${Math.round(pct)} %)` }),
      el('span', { class: 'bar', role: 'img', 'aria-label': `${Math.round(pct)} % of the daily message quota used` }, fill)));
  }

  function initApps() {
    const tbody = $('#apps-body');
    const status = $('#apps-status');
    const load = async () => {
      try {
        const apps = await api('/console/api/apps');
        const rows = (apps || []).map((app) => {
          const conns = typeof app.max_connections === 'number'
            ? `${fmtNum(app.connections)} / ${fmtNum(app.max_connections)}` : fmtNum(app.connections);
          return el('tr', {},
            el('td', {}, el('a', { class: 'app-id', href: appPath('debug', app.id), text: app.id }),
              app.name ? el('span', { class: 'app-label', text: app.name }) : null,
              app.enabled === false ? el('span', { class: 'tag-off', text: 'disabled' }) : null),
            el('td', { class: 'num', text: conns }),
            el('td', { class: 'num', text: fmtNum(app.channels) }),
            quotaCell(app.messages_today, app.max_messages_per_day),
            el('td', { class: 'links' }, ...['debug', 'channels', 'events', 'webhooks', 'charts'].map((p) =>
              el('a', { href: appPath(p, app.id), 'aria-label': `${p} of ${app.id}`, text: p }))));
        });
        if (!rows.length) rows.push(el('tr', {}, el('td', { class: 'empty', colspan: '5', text: 'No apps configured.' })));
        tbody.replaceChildren(...rows);
        setStatus(status, `Updated ${fmtClock(Date.now())}`);
      } catch (e) {
        setStatus(status, `Could not load the apps: ${e.message}`, true);
      }
    };
    const tick = every(5000, load);
    $('#apps-refresh').addEventListener('click', tick);
  }

  // ------------------------------------------------------------------ debug log

  const KINDS = ['connection_opened', 'connection_closed', 'subscribed', 'unsubscribed', 'channel_occupied',
    'channel_vacated', 'member_added', 'member_removed', 'api_message', 'client_event', 'webhook_delivered',
    'webhook_failed', 'webhook_dead_letter'];
  const GROUPS = {
    connection: ['connection_opened', 'connection_closed'],
    subscription: ['subscribed', 'unsubscribed'],
    channel: ['channel_occupied', 'channel_vacated'],
    member: ['member_added', 'member_removed'],
    message: ['api_message', 'client_event'],
    webhook: ['webhook_delivered', 'webhook_failed', 'webhook_dead_letter'],
  };
  const MAX_ROWS = 2000;
  const DATA_PREVIEW = 300;

  function initDebug() {
    const scroller = $('#log-scroll');
    const tbody = $('#log-body');
    const status = $('#debug-status');
    const counter = $('#debug-count');
    const empty = $('#log-empty');
    const resume = $('#debug-resume');
    const pauseBtn = $('#debug-pause');
    const fChannel = $('#filter-channel');
    const fEvent = $('#filter-event');
    const fKind = $('#filter-kind');
    for (const k of KINDS) $('#filter-kind-single').append(el('option', { value: k, text: k }));

    // The model: the last MAX_ROWS entries received, oldest first. `rows` maps an entry to its
    // <tr> while it is shown (it matches the filters and was rendered).
    let entries = [];
    const rows = new WeakMap();
    let paused = false; // the user scrolled up or pressed Pause: new rows wait
    let pending = 0; // entries matching the filters that arrived while paused

    const filter = { channel: '', event: '', kinds: null };
    const matches = (e) => (!filter.kinds || filter.kinds.has(e.kind))
      && (!filter.channel || (e.channel || '').toLowerCase().includes(filter.channel))
      && (!filter.event || (e.event || '').toLowerCase().includes(filter.event));

    function whoText(e) {
      const parts = [];
      if (e.socket_id) parts.push(e.socket_id);
      if (e.user_id) parts.push(`user ${e.user_id}`);
      if (e.code !== undefined && e.code !== null) parts.push(`code ${e.code}`);
      return parts.join(' · ');
    }

    function prettyData(text) {
      try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
    }

    function renderRow(e) {
      const payload = e.data !== undefined && e.data !== null ? String(e.data) : (e.detail || '');
      const dataCell = el('td', { class: 'data' });
      if (payload) {
        const btn = el('button', {
          type: 'button', class: 'data-toggle', 'aria-expanded': 'false', title: 'Show all of it',
          text: payload.length > DATA_PREVIEW ? `${payload.slice(0, DATA_PREVIEW)}…` : payload,
        });
        btn.addEventListener('click', () => {
          const open = btn.getAttribute('aria-expanded') !== 'true';
          btn.setAttribute('aria-expanded', String(open));
          btn.textContent = open ? prettyData(payload) : (payload.length > DATA_PREVIEW ? `${payload.slice(0, DATA_PREVIEW)}…` : payload);
          tr.classList.toggle('expanded', open);
        });
        dataCell.append(btn);
      } else {
        dataCell.append(el('span', { class: 'data-none', text: '—' }));
      }
      const who = whoText(e);
      const tr = el('tr', { 'data-kind': e.kind },
        el('td', { class: 't', text: fmtTime(e.ts) }),
        el('td', {}, el('span', { class: `kind k-${e.kind}`, text: e.kind })),
        el('td', { class: 'ch', text: e.channel || '', title: e.channel || null }),
        el('td', { class: 'ev', text: e.event || '', title: e.event || null }),
        el('td', { class: 'who', text: who, title: who || null }),
        dataCell);
      rows.set(e, tr);
      return tr;
    }

    function atBottom() {
      return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    }
    function scrollToBottom() {
      scroller.scrollTop = scroller.scrollHeight;
    }

    function updateCounter() {
      const shown = tbody.childElementCount;
      counter.textContent = `${fmtNum(shown)} shown · ${fmtNum(entries.length)} kept`;
      empty.hidden = shown > 0;
      empty.textContent = entries.length ? 'No entry matches the filters.' : 'Waiting for activity on this app…';
    }

    function updateResume() {
      resume.hidden = !paused;
      resume.textContent = pending ? `${fmtNum(pending)} new — resume` : 'Paused — resume';
      pauseBtn.setAttribute('aria-pressed', String(paused));
      pauseBtn.textContent = paused ? 'Paused' : 'Pause';
    }

    /** Re-render every kept entry that matches the filters (filters changed, or resuming). */
    function rebuild() {
      const frag = document.createDocumentFragment();
      for (const e of entries) {
        if (!matches(e)) { rows.delete(e); continue; }
        frag.append(rows.get(e) || renderRow(e));
      }
      tbody.replaceChildren(frag);
      pending = 0;
      updateCounter();
      if (!paused) scrollToBottom();
    }

    function setPaused(p) {
      if (paused === p) return;
      paused = p;
      if (!paused) rebuild();
      updateResume();
    }

    /** Keeps `entry` (and at most MAX_ROWS entries); returns the rows of the entries dropped. */
    function add(entry, dropped) {
      entries.push(entry);
      while (entries.length > MAX_ROWS) {
        const old = entries.shift();
        const tr = rows.get(old);
        if (tr) { dropped.push(tr); rows.delete(old); }
      }
      if (!matches(entry)) return;
      if (paused) { pending += 1; return; }
      tbody.append(renderRow(entry));
    }

    /** Adds a batch of entries, then updates the counters and the scroll position once. */
    function addAll(batch) {
      const dropped = [];
      for (const e of batch) add(e, dropped);
      if (dropped.length) {
        // While the user reads further up, removing rows above them would move the text under
        // their eyes: scroll up by the height removed.
        // (Set absolutely: removing more than lies below the view clamps scrollTop on its own.)
        const h = paused ? dropped.reduce((sum, tr) => sum + (tr.isConnected ? tr.offsetHeight : 0), 0) : 0;
        const target = scroller.scrollTop - h;
        for (const tr of dropped) tr.remove();
        if (h) scroller.scrollTop = Math.max(0, target);
      }
      updateCounter();
      if (paused) updateResume(); else scrollToBottom();
    }

    // Batch the entries of one animation frame: a busy app sends hundreds per second.
    let queue = [];
    let scheduled = false;
    function enqueue(entry) {
      queue.push(entry);
      // A hidden tab gets no frames: keep only what the log would keep.
      if (queue.length > MAX_ROWS) queue.shift();
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => {
        scheduled = false;
        const batch = queue;
        queue = [];
        addAll(batch);
      });
    }

    // New rows are appended and scrolled to within one frame, before scroll events are sent:
    // a scroll event away from the bottom is the user's.
    scroller.addEventListener('scroll', () => {
      if (!paused && !atBottom()) setPaused(true);
      else if (paused && atBottom() && pauseBtn.dataset.manual !== 'true') setPaused(false);
    }, { passive: true });
    resume.addEventListener('click', () => { pauseBtn.dataset.manual = 'false'; setPaused(false); });
    pauseBtn.addEventListener('click', () => {
      pauseBtn.dataset.manual = String(!paused);
      setPaused(!paused);
    });
    $('#debug-clear').addEventListener('click', () => {
      entries = [];
      pending = 0;
      tbody.replaceChildren();
      updateCounter();
      updateResume();
    });

    const applyFilters = () => {
      filter.channel = fChannel.value.trim().toLowerCase();
      filter.event = fEvent.value.trim().toLowerCase();
      const k = fKind.value;
      filter.kinds = !k ? null : new Set(k.startsWith('group:') ? GROUPS[k.slice(6)] : [k]);
      rebuild();
    };
    fChannel.addEventListener('input', applyFilters);
    fEvent.addEventListener('input', applyFilters);
    fKind.addEventListener('change', applyFilters);
    $('#debug-filters').addEventListener('submit', (e) => e.preventDefault());

    // The stream: reconnects with a growing delay after an error, and at once (after a short
    // pause) when the server dropped this console for being too slow.
    let source = null;
    let backoff = 1000;
    let retryTimer = null;
    let received = 0;
    function reconnectIn(ms, why) {
      if (source) { source.close(); source = null; }
      clearTimeout(retryTimer);
      let left = Math.ceil(ms / 1000);
      const show = () => setStatus(status, `${why}, reconnecting in ${left} s…`, true);
      show();
      const countdown = setInterval(() => { left -= 1; if (left > 0) show(); }, 1000);
      retryTimer = setTimeout(() => { clearInterval(countdown); connect(); }, ms);
    }
    function connect() {
      setStatus(status, 'Connecting…');
      source = new EventSource(appPath('stream'));
      source.onopen = () => {
        backoff = 1000;
        setStatus(status, `Live: receiving ${APP}'s events (since ${fmtClock(Date.now())})`);
      };
      source.onmessage = (msg) => {
        let entry;
        try { entry = JSON.parse(msg.data); } catch { return; }
        if (!entry || typeof entry.kind !== 'string') return;
        received += 1;
        enqueue(entry);
      };
      source.addEventListener('dropped', () => {
        reconnectIn(1000, 'Too slow, some events were skipped');
      });
      source.onerror = () => {
        const wait = backoff;
        backoff = Math.min(backoff * 2, 30000);
        reconnectIn(wait, 'Connection to the stream lost');
      };
    }
    updateCounter();
    updateResume();
    connect();
    window.addEventListener('beforeunload', () => { if (source) source.close(); });
    // for the browser test and for debugging from the devtools
    window.heraldConsole = { received: () => received };
  }

  // ------------------------------------------------------------------ channels

  function initChannels() {
    const tbody = $('#channels-body');
    const status = $('#channels-status');
    const auto = $('#channels-auto');
    const membersTable = $('.members-table');
    const membersBody = $('#members-body');
    const hint = $('#members-hint');
    let open = null; // the presence channel whose members are shown

    async function loadMembers() {
      if (!open) return;
      const name = open;
      try {
        const members = await api(apiPath(`/channels/${encodeURIComponent(name)}/members`));
        if (open !== name) return;
        const list = members || [];
        hint.textContent = `${name}: ${list.length} member${list.length === 1 ? '' : 's'}`;
        membersTable.hidden = list.length === 0;
        membersBody.replaceChildren(...list.map((m) => {
          const info = m.info === undefined || m.info === null ? '—' : JSON.stringify(m.info);
          return el('tr', {}, el('td', { class: 'mono', text: String(m.id), title: String(m.id) }),
            el('td', { class: 'mono', text: info, title: info }));
        }));
      } catch (e) {
        hint.textContent = `Could not load the members of ${name}: ${e.message}`;
        membersTable.hidden = true;
      }
    }

    async function load() {
      try {
        const channels = (await api(apiPath('/channels'))) || [];
        channels.sort((a, b) => a.name.localeCompare(b.name));
        const rows = channels.map((c) => {
          const presence = c.name.startsWith('presence-');
          const nameCell = presence
            ? el('button', {
              type: 'button', class: 'channel-open', text: c.name, title: `Show the members of ${c.name}`,
              'aria-pressed': String(open === c.name),
              onclick: () => { open = c.name; load(); loadMembers(); },
            })
            : el('span', { class: 'mono', text: c.name, title: c.name });
          return el('tr', {}, el('td', {}, nameCell),
            el('td', { class: 'num', text: fmtNum(c.subscription_count) }),
            el('td', { class: 'num', text: typeof c.user_count === 'number' ? fmtNum(c.user_count) : '—' }));
        });
        if (!rows.length) rows.push(el('tr', {}, el('td', { class: 'empty', colspan: '3', text: 'No occupied channel.' })));
        const focused = document.activeElement && document.activeElement.classList.contains('channel-open')
          ? document.activeElement.textContent : null;
        tbody.replaceChildren(...rows);
        if (focused) {
          for (const b of tbody.querySelectorAll('.channel-open')) if (b.textContent === focused) b.focus();
        }
        if (open && !channels.some((c) => c.name === open)) {
          hint.textContent = `${open} is no longer occupied.`;
          membersTable.hidden = true;
          open = null;
        }
        setStatus(status, `${channels.length} channel${channels.length === 1 ? '' : 's'} · updated ${fmtClock(Date.now())}`);
      } catch (e) {
        setStatus(status, `Could not load the channels: ${e.message}`, true);
      }
    }
    const refresh = async () => { await load(); await loadMembers(); };
    const tick = every(5000, refresh, () => auto.checked);
    $('#channels-refresh').addEventListener('click', refresh);
    auto.addEventListener('change', () => { if (auto.checked) tick(); });
  }

  // ------------------------------------------------------------------ event creator

  function initEvents() {
    const form = $('#event-form');
    const channel = $('#ev-channel');
    const event = $('#ev-event');
    const data = $('#ev-data');
    const socket = $('#ev-socket');
    const dataError = $('#ev-data-error');
    const result = $('#ev-result');
    const send = $('#ev-send');

    const showResult = (text, ok) => {
      result.textContent = text;
      result.className = `result ${ok ? 'ok' : 'bad'}`;
    };
    function validateData() {
      try {
        JSON.parse(data.value);
        data.removeAttribute('aria-invalid');
        dataError.hidden = true;
        return true;
      } catch (e) {
        data.setAttribute('aria-invalid', 'true');
        dataError.textContent = `Not valid JSON: ${e.message}`;
        dataError.hidden = false;
        return false;
      }
    }
    data.addEventListener('input', () => { if (data.hasAttribute('aria-invalid')) validateData(); });
    data.addEventListener('blur', validateData);

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const channels = channel.value.split(',').map((s) => s.trim()).filter(Boolean);
      for (const [input, ok] of [[channel, channels.length > 0], [event, event.value.trim() !== '']]) {
        if (ok) input.removeAttribute('aria-invalid'); else input.setAttribute('aria-invalid', 'true');
      }
      if (!channels.length) { showResult('Enter a channel.', false); channel.focus(); return; }
      if (!event.value.trim()) { showResult('Enter an event name.', false); event.focus(); return; }
      if (!validateData()) { showResult('The data must be valid JSON.', false); data.focus(); return; }
      const payload = { event: event.value.trim(), data: data.value };
      if (channels.length === 1) payload.channel = channels[0]; else payload.channels = channels;
      if (socket.value.trim()) payload.socket_id = socket.value.trim();
      send.disabled = true;
      showResult('Sending…', true);
      try {
        await api(apiPath('/events'), { method: 'POST', json: payload });
        showResult(`Sent "${payload.event}" to ${channels.join(', ')} at ${fmtClock(Date.now())}.`, true);
      } catch (err) {
        showResult(`Not sent (${err.status ? `HTTP ${err.status}` : 'network error'}): ${err.message}`, false);
      } finally {
        send.disabled = false;
      }
    });
  }

  // ------------------------------------------------------------------ webhooks

  function eventsText(events) {
    if (Array.isArray(events)) {
      return events.map((ev) => (ev && typeof ev === 'object' ? [ev.name, ev.channel].filter(Boolean).join(' ') : String(ev))).join(', ');
    }
    if (typeof events === 'number') return `${fmtNum(events)} event${events === 1 ? '' : 's'}`;
    return events === undefined || events === null ? '' : String(events);
  }

  function initWebhooks() {
    const pendingBody = $('#pending-body');
    const deadBody = $('#dead-body');
    const status = $('#webhooks-status');
    const result = $('#resend-result');
    const selectedBtn = $('#resend-selected');
    const allBtn = $('#resend-all');
    const selectAll = $('#dead-select-all');
    const selected = new Set(); // dead-letter ids ticked, kept across refreshes
    let deadIds = [];

    function syncButtons() {
      for (const id of [...selected]) if (!deadIds.includes(id)) selected.delete(id);
      selectedBtn.disabled = selected.size === 0;
      selectedBtn.textContent = selected.size ? `Re-send selected (${selected.size})` : 'Re-send selected';
      allBtn.disabled = deadIds.length === 0;
      selectAll.checked = deadIds.length > 0 && selected.size === deadIds.length;
      selectAll.indeterminate = selected.size > 0 && selected.size < deadIds.length;
    }

    const cell = (text, cls) => el('td', { class: cls, text, title: text || null });

    async function load() {
      try {
        const data = (await api(apiPath('/webhooks'))) || {};
        const pending = data.pending || [];
        const dead = data.dead_letters || [];
        pendingBody.replaceChildren(...(pending.length ? pending.map((p) => el('tr', {},
          cell(String(p.id), 'mono'), cell(p.url, 'mono'), cell(eventsText(p.events)),
          cell(fmtNum(p.attempts), 'num'),
          cell(typeof p.next_attempt_ms === 'number' ? fmtRelative(p.next_attempt_ms) : p.attempts ? 'in flight' : 'queued'),
        )) : [el('tr', {}, el('td', { class: 'empty', colspan: '5', text: 'Nothing pending.' }))]));
        deadIds = dead.map((d) => d.id);
        const focusedId = document.activeElement && document.activeElement.dataset.deadId;
        deadBody.replaceChildren(...(dead.length ? dead.map((d) => {
          const box = el('input', {
            type: 'checkbox', 'aria-label': `Select dead letter ${d.id}`, 'data-dead-id': String(d.id),
            checked: selected.has(d.id),
            onchange: () => { if (box.checked) selected.add(d.id); else selected.delete(d.id); syncButtons(); },
          });
          return el('tr', {}, el('td', {}, box), cell(String(d.id), 'mono'), cell(d.url, 'mono'),
            cell(eventsText(d.events)), cell(fmtNum(d.attempts), 'num'), cell(d.error || ''),
            cell(fmtDateTime(d.dead_at_ms)));
        }) : [el('tr', {}, el('td', { class: 'empty', colspan: '7', text: 'No dead letters.' }))]));
        if (focusedId) { const b = deadBody.querySelector(`[data-dead-id="${CSS.escape(focusedId)}"]`); if (b) b.focus(); }
        syncButtons();
        const total = (n, shown) => (typeof n === 'number' && n > shown ? `${fmtNum(n)} (${fmtNum(shown)} shown)` : fmtNum(shown));
        setStatus(status, `${total(data.pending_total, pending.length)} pending · ${total(data.dead_letters_total, dead.length)} dead letters · updated ${fmtClock(Date.now())}`);
      } catch (e) {
        setStatus(status, `Could not load the webhooks: ${e.message}`, true);
      }
    }

    selectAll.addEventListener('change', () => {
      if (selectAll.checked) for (const id of deadIds) selected.add(id); else selected.clear();
      for (const b of deadBody.querySelectorAll('input[type="checkbox"]')) b.checked = selectAll.checked;
      syncButtons();
    });

    async function resend(body, button) {
      button.disabled = true;
      result.className = 'result';
      result.textContent = 'Re-sending…';
      try {
        const r = await api(apiPath('/webhooks/resend'), { method: 'POST', json: body });
        const n = r && typeof r.resent === 'number' ? r.resent : 0;
        result.textContent = `Re-sent ${n} dead letter${n === 1 ? '' : 's'}.`;
        result.className = 'result ok';
        selected.clear();
      } catch (e) {
        result.textContent = `Re-send failed: ${e.message}`;
        result.className = 'result bad';
      }
      await load();
    }
    selectedBtn.addEventListener('click', () => resend({ ids: [...selected] }, selectedBtn));
    allBtn.addEventListener('click', () => resend({ all: true }, allBtn));

    const tick = every(5000, load);
    $('#webhooks-refresh').addEventListener('click', tick);
  }

  // ------------------------------------------------------------------ charts

  /** Round numbers for a y axis from 0 to at least `max`: [step, top]. */
  function niceScale(max) {
    if (!(max > 0)) return [1, 4];
    const rough = max / 4;
    const mag = 10 ** Math.floor(Math.log10(rough));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= rough);
    const whole = Math.max(1, Math.ceil(step));
    const s = max < 4 ? 1 : (Number.isInteger(step) ? step : whole);
    return [s, Math.ceil(max / s) * s];
  }

  /**
   * An SVG line chart of `points` ([t ms, value]) over [from, to] into `box`: a y axis with
   * round ticks, an x axis with clock times every 10 minutes, both titled.
   */
  function lineChart(box, { points, from, to, yTitle, cls, label }) {
    const W = Math.max(600, Math.round(box.clientWidth || 1200));
    const H = 250;
    const m = { l: 64, r: 16, t: 12, b: 44 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const max = points.reduce((a, [, v]) => Math.max(a, v), 0);
    const [step, top] = niceScale(max);
    const x = (t) => m.l + ((t - from) / (to - from)) * iw;
    const y = (v) => m.t + ih - (v / top) * ih;
    const last = points.length ? points[points.length - 1][1] : null;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
    root.append(svg('title', {}, label), svg('desc', {}, points.length
      ? `${points.length} samples; highest ${fmtNum(max)}, latest ${fmtNum(last)}.` : 'No samples yet.'));

    for (let v = 0; v <= top + 1e-9; v += step) {
      root.append(svg('line', { class: 'gridline', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
      root.append(svg('text', { class: 'tick', x: m.l - 8, y: y(v) + 4, 'text-anchor': 'end' }, fmtNum(Math.round(v * 100) / 100)));
    }
    // Clock times at a round step giving at most 8 ticks (seconds shown below a minute).
    const tickMs = [30, 60, 120, 300, 600, 900].map((sec) => sec * 1000).find((ms) => (to - from) / ms <= 8) || 1800000;
    for (let t = Math.ceil(from / tickMs) * tickMs; t <= to; t += tickMs) {
      root.append(svg('line', { class: 'gridline', x1: x(t), x2: x(t), y1: m.t, y2: m.t + ih }));
      const clock = fmtClock(t);
      root.append(svg('text', { class: 'tick', x: x(t), y: m.t + ih + 18, 'text-anchor': 'middle' }, tickMs < 60000 ? clock : clock.slice(0, 5)));
    }
    root.append(svg('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: m.t + ih }));
    root.append(svg('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih }));
    root.append(svg('text', { class: 'axis-title', x: m.l + iw / 2, y: H - 6, 'text-anchor': 'middle' }, 'Time (local)'));
    root.append(svg('text', {
      class: 'axis-title', x: 14, y: m.t + ih / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${m.t + ih / 2})`,
    }, yTitle));

    if (points.length) {
      const line = points.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      const area = `${line} L${x(points[points.length - 1][0]).toFixed(1)},${y(0)} L${x(points[0][0]).toFixed(1)},${y(0)} Z`;
      root.append(svg('path', { class: `area ${cls}`, d: area }));
      root.append(svg('path', { class: `series ${cls}`, d: line }));
      const [lt, lv] = points[points.length - 1];
      root.append(svg('circle', { cx: x(lt), cy: y(lv), r: 3.5, class: `series ${cls}` }));
    } else {
      root.append(svg('text', { class: 'nodata', x: m.l + iw / 2, y: m.t + ih / 2, 'text-anchor': 'middle' }, 'No samples yet'));
    }
    box.replaceChildren(root);
  }

  function initCharts() {
    const status = $('#charts-status');
    async function load() {
      try {
        const h = (await api(apiPath('/history'))) || {};
        const samples = (h.samples || []).slice().sort((a, b) => a.t - b.t);
        const interval = h.interval_s || 10;
        const to = Date.now();
        // The last hour, or less when herald has not run that long (at least 2 minutes).
        const first = samples.find((s) => s.t >= to - 3600 * 1000);
        const from = Math.max(to - 3600 * 1000, Math.min(to - 120 * 1000, first ? first.t : to));
        const recent = samples.filter((s) => s.t >= from - interval * 1000);
        lineChart($('#chart-connections'), {
          points: recent.map((s) => [Math.max(s.t, from), s.connections]), from, to,
          yTitle: 'Connections', cls: 'conn', label: 'Open connections over the last hour',
        });
        lineChart($('#chart-messages'), {
          points: recent.map((s) => [Math.max(s.t, from), s.messages]), from, to,
          yTitle: `Messages / ${interval} s`, cls: 'msg', label: `Messages per ${interval} s interval over the last hour`,
        });
        const span = from > to - 3600 * 1000 ? `since ${fmtClock(from).slice(0, 5)}` : 'last hour';
        $('#chart-conn-title').textContent = `Connections (${span})`;
        $('#chart-msg-title').textContent = `Messages per ${interval} s interval (${span})`;
        const last = recent[recent.length - 1];
        setStatus(status, last
          ? `Now: ${fmtNum(last.connections)} connections, ${fmtNum(last.messages)} messages in the last ${interval} s · updated ${fmtClock(Date.now())}`
          : `No samples yet · updated ${fmtClock(Date.now())}`);
      } catch (e) {
        setStatus(status, `Could not load the history: ${e.message}`, true);
      }
    }
    const tick = every(10000, load);
    $('#charts-refresh').addEventListener('click', tick);
    let resizeTimer = null;
    window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(tick, 200); });
  }

  // ------------------------------------------------------------------ start

  const view = initShell();
  const init = { apps: initApps, debug: initDebug, channels: initChannels, events: initEvents, webhooks: initWebhooks, charts: initCharts }[view];
  if (init) init();
}());
