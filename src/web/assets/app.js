/* dcsync web console: app.js
 *
 * This file owns the browser side of the console:
 *   - polls GET /api/state every second and shows connection / login banners;
 *   - renders one <section class="pair" data-pair="NAME"> card per pair and the
 *     "Recent activity" table, updating them in place: each card is split into
 *     parts that are rebuilt only when their slice of the JSON changed, so buttons
 *     do not flicker or vanish under the pointer;
 *   - sends the POST actions (pause, resume, sync-now, confirm-delete, resolve,
 *     bwlimit) with the X-CSRF-Token from the last state answer.
 *
 * The page runs under a strict CSP: no inline code or styles, no innerHTML.
 * All user data (paths, names, messages) goes into the DOM through textContent.
 */
'use strict';

(() => {
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 8000;
  const SEP = '\u0000';

  const $ = (id) => document.getElementById(id);
  const ui = {
    conn: $('conn'),
    messages: $('messages'),
    version: $('version'),
    bwCurrent: $('bw-current'),
    bwForm: $('bw-form'),
    bwInput: $('bw-input'),
    bwSet: $('bw-set'),
    bwReset: $('bw-reset'),
    pairs: $('pairs'),
    pairsEmpty: $('pairs-empty'),
    actTable: $('act-table'),
    actBody: $('act-body'),
    actEmpty: $('act-empty'),
  };

  let csrf = '';
  let lastState = null;
  let stopped = false;        // true after a 401: polling ends for good
  let timer = null;
  let inFlight = false;
  let pollAgain = false;
  let lastActivityKey = null;

  const pending = new Set();      // actions in flight, keyed by actionKey()
  const openDetails = new Map();  // remembers which <details> the user opened
  const cards = new Map();        // pair name -> card record (see createCard)

  // ---------------------------------------------------------------- helpers

  /** Create an element. props: class, text, dataset, or any attribute. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function num(v) {
    return typeof v === 'number' && Number.isFinite(v) ? v : 0;
  }

  function humanSize(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '?';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    if (i === 0) return `${v} B`;
    return `${v.toFixed(v < 100 ? 1 : 0)} ${units[i]}`;
  }

  function humanSecs(s) {
    s = Math.max(0, Math.round(num(s)));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  function actionKey(pair, action, path, keep) {
    return [pair, action, path || '', keep || ''].join(SEP);
  }

  /** Pending actions of one pair, as a string that can join a part's key. */
  function pendingOf(pair) {
    const out = [];
    for (const k of pending) if (k.startsWith(pair + SEP)) out.push(k);
    return out.sort().join('|');
  }

  function isPending(pair, action, path, keep) {
    return pending.has(actionKey(pair, action, path, keep));
  }

  // ------------------------------------------------------------- messages

  function showMessage(text) {
    const last = ui.messages.lastElementChild;
    if (last && last.dataset.text === text) return;
    ui.messages.append(h('div', { class: 'msg', dataset: { text } },
      h('span', { class: 'msg-text', text }),
      h('button', { type: 'button', class: 'msg-close', 'aria-label': 'Dismiss message', text: 'Dismiss' })));
    while (ui.messages.children.length > 5) ui.messages.firstElementChild.remove();
  }

  ui.messages.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button.msg-close');
    if (btn) btn.closest('.msg').remove();
  });

  // ------------------------------------------------------------ networking

  async function fetchWithTimeout(url, opts) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      return await fetch(url, { ...opts, signal: ctl.signal });
    } finally {
      clearTimeout(t);
    }
  }

  class SilentError extends Error {}

  async function post(url, body) {
    if (stopped) throw new SilentError('not logged in');
    if (!csrf) throw new Error('the page has not heard from the daemon yet; try again in a moment');
    let res;
    try {
      res = await fetchWithTimeout(url, {
        method: 'POST',
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
        body: JSON.stringify(body || {}),
      });
    } catch (e) {
      throw new Error('no answer from the daemon');
    }
    if (res.status === 401) {
      notLoggedIn();
      throw new SilentError('not logged in');
    }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok || !data || data.ok !== true) {
      throw new Error((data && typeof data.error === 'string' && data.error) || `the daemon answered HTTP ${res.status}`);
    }
    return data;
  }

  function schedule(ms) {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function pollNow() { schedule(0); }

  async function poll() {
    timer = null;
    if (stopped) return;
    if (inFlight) { pollAgain = true; return; }
    inFlight = true;
    let data = null;
    try {
      const res = await fetchWithTimeout('/api/state', {
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (res.status === 401) {
        notLoggedIn();
      } else if (!res.ok) {
        throw new Error(`HTTP ${res.status}`);
      } else {
        data = await res.json();
      }
    } catch (e) {
      setConnected(false);
    }
    inFlight = false;
    if (data) {
      setConnected(true);
      try {
        render(data);
      } catch (e) {
        console.error('dcsync: render failed', e);
      }
    }
    if (!stopped) {
      schedule(pollAgain ? 0 : POLL_MS);
      pollAgain = false;
    }
  }

  function setConnected(ok) {
    if (stopped) return;
    document.body.classList.toggle('stale', !ok);
    if (ok) {
      ui.conn.hidden = true;
      return;
    }
    ui.conn.className = 'banner warn';
    setText(ui.conn, 'Lost contact with the daemon; retrying…');
    ui.conn.hidden = false;
  }

  function notLoggedIn() {
    stopped = true;
    if (timer) { clearTimeout(timer); timer = null; }
    document.body.classList.add('stale');
    ui.conn.className = 'banner error';
    ui.conn.replaceChildren('Not logged in: run ', h('code', { text: 'dcsync web' }),
      ' and open the URL it prints.');
    ui.conn.hidden = false;
  }

  async function runAction(key, url, body, what) {
    if (pending.has(key)) return;
    pending.add(key);
    rerender();
    try {
      await post(url, body);
    } catch (e) {
      if (!(e instanceof SilentError)) showMessage(`${what} failed: ${e.message}`);
    } finally {
      pending.delete(key);
      rerender();
      pollNow();
    }
  }

  // -------------------------------------------------------------- rendering

  function rerender() {
    if (lastState) {
      try { render(lastState); } catch (e) { console.error('dcsync: render failed', e); }
    }
  }

  function render(data) {
    lastState = data;
    if (typeof data.csrf === 'string') csrf = data.csrf;
    setText(ui.version, data.version ? `v${data.version}` : '');
    setText(ui.bwCurrent, data.bwlimit ? String(data.bwlimit) : 'no limit');
    renderPairs(Array.isArray(data.pairs) ? data.pairs : []);
    renderActivity(Array.isArray(data.activity) ? data.activity : []);
  }

  function renderPairs(pairs) {
    const seen = new Set();
    pairs.forEach((p, i) => {
      const name = String(p.name);
      seen.add(name);
      let card = cards.get(name);
      if (!card) {
        card = createCard(name);
        cards.set(name, card);
      }
      updateCard(card, p);
      const at = ui.pairs.children[i];
      if (at !== card.el) ui.pairs.insertBefore(card.el, at || null);
    });
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.el.remove();
        cards.delete(name);
      }
    }
    setText(ui.pairsEmpty, 'No sync pairs are configured.');
    ui.pairsEmpty.hidden = pairs.length > 0;
  }

  // Card parts in display order; each has a key (the JSON slice it depends on)
  // and a builder returning a node, or null to hide the part.
  const PARTS = [
    { kind: 'status', key: (p) => [p.state, p.detail, p.ops_planned, p.ops_done, p.last_sync,
        p.last_result, p.last_error, p.next_poll_secs, p.watching, p.host_down_since], build: buildStatus },
    { kind: 'massdelete', key: (p) => [p.mass_delete, pendingOf(p.name)], build: buildMassDelete },
    { kind: 'transfers', key: (p) => [p.transfers], build: buildTransfers },
    { kind: 'actions', key: (p) => [p.state, pendingOf(p.name)], build: buildActions },
    { kind: 'conflicts', key: (p) => [p.conflicts, pendingOf(p.name)], build: buildConflicts },
    { kind: 'skipped', key: (p) => [p.skipped], build: buildSkipped },
  ];

  let headingCounter = 0;

  function createCard(name) {
    const hid = `pair-h-${++headingCounter}`;
    const stateEl = h('span', { class: 'state' });
    const localEl = h('code', { class: 'path' });
    const remoteEl = h('code', { class: 'path' });
    const el = h('section', { class: 'pair', 'aria-labelledby': hid, dataset: { pair: name } },
      h('div', { class: 'pair-head' }, h('h3', { id: hid, text: name }), stateEl),
      h('p', { class: 'paths' },
        h('span', { class: 'side' }, h('span', { class: 'label', text: 'Local' }), ' ', localEl),
        h('span', { class: 'arrow', 'aria-hidden': 'true', text: '⇄' }),
        h('span', { class: 'sr-only', text: ' synced with ' }),
        h('span', { class: 'side' }, h('span', { class: 'label', text: 'Remote' }), ' ', remoteEl)));
    const parts = {};
    for (const part of PARTS) {
      const pe = h('div', { class: `part part-${part.kind}`, hidden: true });
      el.append(pe);
      parts[part.kind] = { el: pe, key: null };
    }
    return { el, name, stateEl, localEl, remoteEl, parts };
  }

  function updateCard(card, p) {
    const state = String(p.state || 'unknown');
    setText(card.stateEl, state);
    if (card.stateEl.dataset.state !== state) card.stateEl.dataset.state = state;
    if (card.el.dataset.state !== state) card.el.dataset.state = state;
    setText(card.localEl, String(p.local_path ?? ''));
    setText(card.remoteEl, String(p.remote_path ?? ''));
    for (const part of PARTS) {
      const rec = card.parts[part.kind];
      const key = JSON.stringify(part.key(p));
      if (key === rec.key) continue;
      rec.key = key;
      rebuildPart(rec.el, () => part.build(p, card.name));
    }
  }

  /** Describe a focused control so the same control can be refocused after a rebuild. */
  function focusSig(el) {
    const holder = el.closest('[data-path]');
    return [el.tagName, el.dataset.action || '', el.dataset.keep || '',
      holder ? holder.dataset.path : '', el.tagName === 'SUMMARY' ? el.parentElement.dataset.kind : ''].join(SEP);
  }

  function rebuildPart(container, build) {
    const active = document.activeElement;
    const sig = active && active !== document.body && container.contains(active) ? focusSig(active) : null;
    const node = build();
    if (node) container.replaceChildren(node); else container.replaceChildren();
    container.hidden = !node;
    if (sig) {
      for (const el of container.querySelectorAll('button, summary')) {
        if (focusSig(el) === sig) { el.focus(); break; }
      }
    }
  }

  /** A <details> whose open/closed state survives rebuilds. */
  function folded(pair, kind, summary, body) {
    const k = pair + SEP + kind;
    const d = h('details', { class: 'fold', dataset: { kind }, open: openDetails.get(k) === true },
      h('summary', null, summary), body);
    d.addEventListener('toggle', () => openDetails.set(k, d.open));
    return d;
  }

  function fact(label, ...value) {
    return [h('dt', { text: label }), h('dd', null, ...value)];
  }

  function buildStatus(p) {
    const out = h('div');
    if (p.detail) out.append(h('p', { class: 'detail', text: p.detail }));
    if (p.state === 'syncing') {
      const planned = num(p.ops_planned);
      const done = Math.min(num(p.ops_done), planned);
      const label = planned > 0 ? `syncing ${done} of ${planned}` : 'syncing…';
      out.append(h('div', { class: 'progress-line' },
        h('span', { class: 'progress-label', text: label }),
        h('progress', planned > 0 ? { max: planned, value: done, 'aria-label': label } : { 'aria-label': label })));
    }
    const facts = [];
    if (p.last_sync) {
      facts.push(...fact('Last sync', String(p.last_sync)));
    } else if (p.state !== 'syncing' && p.state !== 'starting') {
      facts.push(...fact('Last sync', 'not yet'));
    }
    if (p.last_result) facts.push(...fact('Last result', String(p.last_result)));
    if (facts.length) out.append(h('dl', { class: 'facts' }, facts));
    if (typeof p.next_poll_secs === 'number') {
      out.append(h('p', { class: 'muted next-poll', text: `next look at the host in ${humanSecs(p.next_poll_secs)}` }));
    }
    if (p.last_error) {
      out.append(h('p', { class: 'notice error' }, h('strong', { text: 'Last error: ' }), String(p.last_error)));
    }
    if (p.host_down_since) {
      out.append(h('p', { class: 'notice warn', text: `The host has been unreachable since ${p.host_down_since}.` }));
    }
    if (p.watching === false) {
      out.append(h('p', { class: 'notice warn',
        text: 'The local file watcher is off: local changes are only noticed on the next full scan.' }));
    }
    return out;
  }

  function buildTransfers(p) {
    const list = Array.isArray(p.transfers) ? p.transfers : [];
    if (!list.length) return null;
    return h('div', null,
      h('h4', { text: `Transfers (${list.length})` }),
      h('ul', { class: 'transfers' }, list.map((t) => {
        const total = num(t.total);
        const done = Math.min(num(t.done), total || Infinity);
        const pct = total > 0 ? Math.floor((done / total) * 100) : null;
        const sizes = total > 0 ? `${humanSize(done)} of ${humanSize(total)} (${pct}%)` : humanSize(done);
        return h('li', null,
          h('code', { class: 'path', text: String(t.path) }),
          h('progress', total > 0
            ? { max: total, value: done, 'aria-label': `${t.path}: ${pct}%` }
            : { 'aria-label': String(t.path) }),
          h('span', { class: 'muted size', text: sizes }));
      })));
  }

  function actionButton(pair, action, label, extra) {
    const busy = isPending(pair, action);
    return h('button', {
      type: 'button',
      class: extra && extra.class,
      dataset: { action },
      disabled: busy || (extra && extra.disabled),
      'aria-busy': busy ? 'true' : null,
      text: label,
    });
  }

  function buildActions(p, name) {
    const state = p.state;
    const paused = state === 'paused';
    const btns = [];
    if (!paused) btns.push(actionButton(name, 'pause', 'Pause'));
    if (paused || state === 'error' || state === 'stopped') {
      btns.push(actionButton(name, 'resume', 'Resume', { class: 'primary' }));
    }
    btns.push(actionButton(name, 'sync-now', 'Sync now', { disabled: paused }));
    return h('div', { class: 'btns' }, btns);
  }

  function buildMassDelete(p, name) {
    const md = p.mass_delete;
    if (!md) return null;
    const paths = Array.isArray(md.paths) ? md.paths : [];
    const count = typeof md.count === 'number' ? md.count : paths.length;
    const busy = isPending(name, 'confirm-delete');
    const shown = paths.length < count ? ` (first ${paths.length} of ${count})` : '';
    return h('div', { class: 'massdelete' },
      h('h4', { text: 'Deletions stopped for safety' }),
      md.message ? h('p', { text: String(md.message) }) : null,
      h('p', null, h('strong', { text: `${plural(count, 'file', 'files')} would be deleted.` })),
      paths.length
        ? folded(name, 'massdelete', `Show the paths${shown}`,
          h('ul', { class: 'pathlist' }, paths.map((x) => h('li', null, h('code', { class: 'path', text: String(x) })))))
        : null,
      h('div', { class: 'btns' },
        h('button', { type: 'button', class: 'danger', dataset: { action: 'confirm-delete' },
          disabled: busy, 'aria-busy': busy ? 'true' : null, text: 'Delete them' })),
      h('p', { class: 'hint',
        text: 'Nothing is deleted until you press “Delete them”. Pressing Resume without confirming keeps the pair stopped here.' }));
  }

  function buildConflicts(p, name) {
    const list = Array.isArray(p.conflicts) ? p.conflicts : [];
    if (!list.length) return null;
    const title = `Conflicts (${list.length})`;
    const ul = h('ul', { class: 'conflicts' }, list.map((c) => conflictItem(name, c)));
    if (list.length > 5) return folded(name, 'conflicts', h('h4', { text: title }), ul);
    return h('div', null, h('h4', { text: title }), ul);
  }

  function conflictItem(name, c) {
    const path = String(c.path);
    const size = (n) => (typeof n === 'number' ? ` (${humanSize(n)})` : '');
    const side = c.copy_from === 'local' ? 'local' : c.copy_from === 'remote' ? 'remote' : String(c.copy_from || '?');
    const btn = (keep, label) => {
      const busy = isPending(name, 'resolve', path, keep);
      return h('button', { type: 'button', dataset: { action: 'resolve', keep },
        disabled: busy, 'aria-busy': busy ? 'true' : null,
        'aria-label': `${label}: ${path}`, text: label });
    };
    return h('li', { class: 'conflict', dataset: { path } },
      h('p', { class: 'c-path' }, h('code', { class: 'path', text: path }),
        h('span', { class: 'muted', text: size(c.path_size) })),
      h('p', { class: 'c-copy' },
        h('span', { class: 'muted', text: `Copy from the ${side} side: ` }),
        h('code', { class: 'path', text: String(c.copy_path ?? '') }),
        h('span', { class: 'muted', text: size(c.copy_size) })),
      c.at ? h('p', { class: 'muted c-time', text: `Conflict found ${c.at}` }) : null,
      h('div', { class: 'btns' },
        btn('local', 'Keep local'), btn('remote', 'Keep remote'), btn('both', 'Keep both')));
  }

  function buildSkipped(p, name) {
    const list = Array.isArray(p.skipped) ? p.skipped : [];
    if (!list.length) return null;
    return folded(name, 'skipped', h('h4', { text: `Skipped paths (${list.length})` }),
      h('ul', { class: 'skipped' }, list.map((s) => h('li', null,
        h('code', { class: 'path', text: String(s.path) }),
        h('span', { class: 'muted', text: ` — ${s.reason ?? ''}` })))));
  }

  function renderActivity(acts) {
    const key = JSON.stringify(acts);
    if (key === lastActivityKey) return;
    lastActivityKey = key;
    const td = (label, value, cls) => h('td', { class: cls, dataset: { label }, text: String(value ?? '') });
    ui.actBody.replaceChildren(...acts.map((a) => {
      const outcome = String(a.outcome ?? '');
      const failed = outcome.startsWith('failed');
      return h('tr', { class: failed ? 'failed' : null },
        td('Time', a.time, 'nowrap'), td('Pair', a.pair), td('Action', a.action),
        td('Path', a.path, 'path'), td('Outcome', outcome, failed ? 'outcome bad' : 'outcome'));
    }));
    ui.actTable.hidden = acts.length === 0;
    ui.actEmpty.hidden = acts.length > 0;
  }

  // ----------------------------------------------------------------- events

  ui.pairs.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button[data-action]');
    if (!btn || btn.disabled || !ui.pairs.contains(btn)) return;
    const section = btn.closest('section.pair');
    if (!section) return;
    const name = section.dataset.pair;
    const pair = lastState && Array.isArray(lastState.pairs)
      ? lastState.pairs.find((x) => String(x.name) === name) : null;
    const base = `/api/pairs/${encodeURIComponent(name)}/`;
    const action = btn.dataset.action;

    switch (action) {
      case 'pause':
      case 'resume':
      case 'sync-now': {
        const what = { pause: 'Pause', resume: 'Resume', 'sync-now': 'Sync now' }[action];
        runAction(actionKey(name, action), base + action, {}, `${what} of “${name}”`);
        break;
      }
      case 'confirm-delete': {
        const md = pair && pair.mass_delete;
        if (!md) return;
        const count = typeof md.count === 'number' ? md.count : '?';
        const ok = window.confirm(`Let “${name}” delete ${count} file${count === 1 ? '' : 's'}?\n\n` +
          `${md.message || ''}\n\nThis cannot be undone from here.`);
        if (!ok) return;
        runAction(actionKey(name, action), base + 'confirm-delete', {}, `Confirming the deletions of “${name}”`);
        break;
      }
      case 'resolve': {
        const item = btn.closest('[data-path]');
        const keep = btn.dataset.keep;
        if (!item || !['local', 'remote', 'both'].includes(keep)) return;
        const path = item.dataset.path;
        if (keep !== 'both') {
          const other = keep === 'local' ? 'remote' : 'local';
          const ok = window.confirm(`Keep the ${keep} version of “${path}”?\n\n` +
            `The ${other} version will be moved to the trash.`);
          if (!ok) return;
        }
        runAction(actionKey(name, 'resolve', path, keep), base + 'resolve', { path, keep },
          `Resolving “${path}”`);
        break;
      }
      default:
        break;
    }
  });

  async function setBandwidth(limit) {
    ui.bwSet.disabled = true;
    ui.bwReset.disabled = true;
    try {
      await post('/api/bwlimit', { limit });
      ui.bwInput.value = '';
    } catch (e) {
      if (!(e instanceof SilentError)) showMessage(`Setting the bandwidth limit failed: ${e.message}`);
    } finally {
      ui.bwSet.disabled = false;
      ui.bwReset.disabled = false;
      pollNow();
    }
  }

  ui.bwForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = ui.bwInput.value.trim();
    if (!value) {
      showMessage('Enter a bandwidth limit such as 2M, a schedule, or “off”.');
      ui.bwInput.focus();
      return;
    }
    setBandwidth(value);
  });

  ui.bwReset.addEventListener('click', () => setBandwidth('reset'));

  poll();
})();
