// durable admin UI: one vanilla ES2020 file, no dependencies, no build step.
//
// Security model: every string that comes from the API (workflow names, keys,
// errors, JSON values, queue and schedule names) is hostile. The DOM is only
// built with document.createElement and text nodes (see el()), never parsed
// from HTML, so a workflow named "<img src=x onerror=alert(1)>" shows as that
// literal text. The page runs under `Content-Security-Policy: default-src
// 'self'`: no inline scripts, no inline handlers, no style attributes
// (element.style set from JS goes through the CSSOM, which that policy allows).
'use strict';

(() => {
  const API = '/api/v1';
  const TOKEN_KEY = 'durable.token';
  const STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'PAUSED', 'CANCELLED'];
  const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
  const LIST_REFRESH_MS = 3000;
  const TREE_REFRESH_MS = 1000;
  const QUEUE_REFRESH_MS = 3000;
  const SCHEDULE_REFRESH_MS = 3000;
  const FILTER_DEBOUNCE_MS = 300;
  const PAGE_SIZE = 50;
  const CLIP_CHARS = 200;

  // ---------------------------------------------------------------- DOM helpers

  // Properties rather than attributes: these reflect live state (a checkbox's
  // checked, an input's value) and the attribute only sets the default.
  const EL_PROPS = new Set(['value', 'checked', 'disabled', 'hidden']);

  // el(tag, attrs, ...children): the only way this file creates elements.
  // attrs only become properties/attributes; children that are not nodes
  // become text nodes, so data can never be interpreted as markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    append(node, children);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      // Handlers and style attributes would be blocked by the CSP anyway;
      // refusing them here catches the mistake in development.
      if (/^on/i.test(name) || name === 'style') throw new Error(`el(): attribute ${name} not allowed`);
      if (name === 'class') node.className = value;
      else if (EL_PROPS.has(name)) {
        node[name] = value;
        // Mirror an input's initial value/checked into the attribute too, so
        // tools that read attributes (WebDriver) see what is on screen.
        if (node instanceof HTMLInputElement && (name === 'value' || name === 'checked')) node.setAttribute(name, value === true ? '' : String(value));
      }
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    return node;
  }

  function append(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(node, child);
      else if (child instanceof Node) node.appendChild(child);
      else node.appendChild(document.createTextNode(String(child)));
    }
    return node;
  }

  function on(node, type, handler) {
    node.addEventListener(type, handler);
    return node;
  }

  function button(label, attrs, handler) {
    const node = el('button', Object.assign({ type: 'button', class: 'btn' }, attrs), label);
    return handler ? on(node, 'click', handler) : node;
  }

  function debounce(fn, ms) {
    let timer = null;
    const debounced = (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => { timer = null; fn(...args); }, ms);
    };
    debounced.cancel = () => { clearTimeout(timer); timer = null; };
    debounced.flush = (...args) => { debounced.cancel(); fn(...args); };
    return debounced;
  }

  // --------------------------------------------------------------- formatting

  const pad = (n) => String(n).padStart(2, '0');

  // Local time, ISO-like: YYYY-MM-DD HH:MM:SS.
  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    if (Number.isNaN(d.getTime())) return '—';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtClock(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // Compact human durations: 340 ms, 1.2 s, 42 s, 3 m 4 s, 2 h 5 m, 3 d 4 h.
  function fmtDuration(ms) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
    const v = Math.max(0, ms);
    if (v < 1000) return `${Math.round(v)} ms`;
    if (v < 9950) return `${(v / 1000).toFixed(1)} s`;
    const secs = Math.floor(v / 1000);
    if (secs < 60) return `${secs} s`;
    const mins = Math.floor(secs / 60);
    if (mins < 60) return `${mins} m ${secs % 60} s`;
    const hours = Math.floor(mins / 60);
    if (hours < 24) return `${hours} h ${mins % 60} m`;
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }

  function fmtRelative(ms, now = Date.now()) {
    if (ms === null || ms === undefined) return '';
    const delta = now - ms;
    return delta >= 0 ? `${fmtDuration(delta)} ago` : `in ${fmtDuration(-delta)}`;
  }

  function parseIso(iso) {
    if (typeof iso !== 'string') return null;
    const ms = Date.parse(iso);
    return Number.isNaN(ms) ? null : ms;
  }

  function compactJson(value) {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }

  function prettyJson(value) {
    const text = JSON.stringify(value, null, 2);
    return text === undefined ? 'null' : text;
  }

  function shortId(id) {
    return typeof id === 'string' ? id.slice(0, 8) : String(id);
  }

  // How long something ran: finished - started, or now - started while it
  // runs. Null when it never started (a queued workflow has no duration yet).
  function elapsed(item, now, frozen) {
    const start = item.started_at_ms ?? item.created_at_ms;
    if (item.finished_at_ms !== null && item.finished_at_ms !== undefined) {
      return { ms: item.finished_at_ms - start, live: false };
    }
    if (item.started_at_ms === null || item.started_at_ms === undefined || frozen) return null;
    return { ms: now - item.started_at_ms, live: true };
  }

  function fmtElapsed(span) {
    if (!span) return '—';
    return span.live ? `${fmtDuration(span.ms)} …` : fmtDuration(span.ms);
  }

  // Status names become CSS classes only through this whitelist, so an
  // unexpected value from the server cannot pick an arbitrary class.
  function statusClass(status) {
    return STATUSES.includes(status) ? `st-${status.toLowerCase()}` : 'st-unknown';
  }

  function statusBadge(status, testid) {
    return el('span', { class: `badge ${statusClass(status)}`, 'data-testid': testid }, status || '?');
  }

  function workflowHref(id) {
    return `#/workflows/${encodeURIComponent(id)}`;
  }

  function workflowLink(id, text) {
    return el('a', { href: workflowHref(id) }, text === undefined ? id : text);
  }

  function timeCell(ms) {
    return el('td', { class: 'time', title: fmtRelative(ms) }, fmtTime(ms));
  }

  // ---------------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function getToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (_) { return ''; }
  }

  function setToken(token) {
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* storage disabled: the token just won't persist */ }
  }

  // The one way to talk to the server: adds the bearer token, sends and
  // parses JSON, and turns an error body {"error":{"code","message"}} into an
  // ApiError whose message can be shown as is. A 401 reveals the token box.
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, 'network', `Cannot reach the server (${err.message})`);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = undefined; }
    }
    if (!res.ok) {
      const detail = data && typeof data === 'object' ? data.error : null;
      const code = detail && typeof detail.code === 'string' ? detail.code : `http_${res.status}`;
      const message = detail && typeof detail.message === 'string' && detail.message
        ? detail.message
        : `HTTP ${res.status} ${res.statusText}`.trim();
      if (res.status === 401) tokenBox.show(message);
      throw new ApiError(res.status, code, message);
    }
    if (data === undefined) throw new ApiError(res.status, 'bad_response', 'The server sent a response that is not JSON');
    return data;
  }

  function errorText(err) {
    if (err instanceof ApiError) {
      const code = err.code && err.status ? ` (${err.code})` : '';
      return `${err.message}${code}`;
    }
    return String(err && err.message ? err.message : err);
  }

  // ----------------------------------------------------------------- top bar

  const NAV = [
    { page: 'list', href: '#/', label: 'Workflows', testid: 'nav-workflows' },
    { page: 'queues', href: '#/queues', label: 'Queues', testid: 'nav-queues' },
    { page: 'schedules', href: '#/schedules', label: 'Schedules', testid: 'nav-schedules' },
  ];
  const navLinks = new Map();

  // The token box stays hidden until a call gets a 401 or the user opens it,
  // so a server without a token never shows an empty password field.
  const tokenBox = (() => {
    const message = el('span', { class: 'token-message', role: 'status' });
    const input = el('input', {
      type: 'password', class: 'input', placeholder: 'API token', autocomplete: 'off',
      'aria-label': 'API token', 'data-testid': 'token-input',
    });
    const save = el('button', { type: 'submit', class: 'btn primary', 'data-testid': 'token-save' }, 'Save token');
    const clearBtn = button('Forget', { 'data-testid': 'token-clear' }, () => applyToken(''));
    const form = el('form', { class: 'token-box', hidden: true }, message, input, save, clearBtn);
    const toggle = button('', { class: 'btn subtle', 'data-testid': 'token-toggle' }, () => {
      if (form.hidden) show(''); else form.hidden = true;
    });

    on(form, 'submit', (event) => {
      event.preventDefault();
      applyToken(input.value.trim());
    });

    function applyToken(value) {
      setToken(value);
      input.value = '';
      form.hidden = true;
      refreshToggle();
      // Reload the page on screen: what failed for lack of a token can work now.
      navigate();
      showNotice('success', value ? 'Token saved.' : 'Token removed.');
    }

    function refreshToggle() {
      toggle.textContent = getToken() ? 'Token ✓' : 'Token';
      toggle.title = getToken() ? 'A token is stored in this browser' : 'Set the API token';
    }

    function show(text) {
      const wasHidden = form.hidden;
      message.textContent = text ? `Authentication needed: ${text}` : 'Bearer token for the API:';
      form.hidden = false;
      // Only grab focus when it opens, so a poll's repeated 401 does not
      // yank the caret while the user is typing.
      if (wasHidden) input.focus();
    }

    refreshToggle();
    return { form, toggle, show };
  })();

  function buildTopBar() {
    const nav = el('nav', { class: 'nav', 'aria-label': 'Main' });
    for (const item of NAV) {
      const link = el('a', { href: item.href, 'data-testid': item.testid }, item.label);
      navLinks.set(item.page, link);
      nav.appendChild(link);
    }
    return el('header', { class: 'topbar' },
      el('a', { class: 'brand', href: '#/' }, 'durable'),
      nav,
      el('div', { class: 'spacer' }),
      tokenBox.form,
      tokenBox.toggle);
  }

  function markNav(page) {
    for (const [name, link] of navLinks) {
      if (name === page || (page === 'workflow' && name === 'list')) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  // ------------------------------------------------------------------ notices

  const noticeArea = el('div', { class: 'notice-area', 'aria-live': 'polite' });

  // One notice at a time: the result of the last action. It is created when
  // shown, so a test that finds [data-testid=notice] always finds its text.
  function showNotice(kind, ...content) {
    const close = button('×', { class: 'notice-close', 'aria-label': 'Dismiss', title: 'Dismiss' }, clearNotice);
    // The testid sits on the message itself so its text is only the message.
    const notice = el('div', { class: `notice notice-${kind === 'error' ? 'error' : 'success'}`, role: kind === 'error' ? 'alert' : 'status' },
      el('span', { class: 'notice-text', 'data-testid': 'notice', 'data-kind': kind }, content), close);
    noticeArea.replaceChildren(notice);
  }

  function clearNotice() {
    noticeArea.replaceChildren();
  }

  // In-page error for a failed load (the page itself stays as it was).
  function errorBanner() {
    const node = el('div', { class: 'error-banner', role: 'alert', hidden: true });
    return {
      node,
      show(err) {
        const hint = err instanceof ApiError && err.status === 401 ? ' Enter the API token above.' : '';
        node.textContent = `Could not load: ${errorText(err)}.${hint}`;
        node.hidden = false;
      },
      hide() { node.hidden = true; },
    };
  }

  // -------------------------------------------------------- confirm dialog

  const dialog = el('dialog', { class: 'confirm', 'data-testid': 'confirm-dialog', 'aria-labelledby': 'confirm-title' });
  let dismissDialog = null;

  // Opens the confirmation dialog; resolves with the fields' values on
  // Confirm, or null on Cancel / Escape / navigation. Fields validate on
  // Confirm and keep the dialog open with the message when invalid.
  function confirmDialog({ title, message, fields = [], danger = false }) {
    if (dismissDialog) dismissDialog();
    return new Promise((resolve) => {
      const problem = el('p', { class: 'dialog-error', role: 'alert', 'data-testid': 'confirm-error', hidden: true });
      const yes = button('Confirm', { class: danger ? 'btn danger' : 'btn primary', 'data-testid': 'confirm-yes' });
      const no = button('Cancel', { 'data-testid': 'confirm-no' });
      const form = el('form', { class: 'dialog-form', method: 'dialog' },
        el('h2', { id: 'confirm-title' }, title),
        el('div', { class: 'dialog-message' }, message),
        fields.map((field) => field.row),
        problem,
        el('div', { class: 'dialog-buttons' }, no, yes));

      let settled = false;
      const finish = (value) => {
        if (settled) return;
        settled = true;
        dismissDialog = null;
        dialog.removeEventListener('cancel', onCancel);
        dialog.removeEventListener('close', onClose);
        if (dialog.open) dialog.close();
        resolve(value);
      };
      const onCancel = (event) => { event.preventDefault(); finish(null); };
      const onClose = () => finish(null);
      const confirm = () => {
        try {
          finish(readFields(fields));
        } catch (err) {
          problem.textContent = err.message;
          problem.hidden = false;
        }
      };

      on(yes, 'click', confirm);
      on(no, 'click', () => finish(null));
      on(form, 'submit', (event) => { event.preventDefault(); confirm(); });
      dialog.addEventListener('cancel', onCancel);
      dialog.addEventListener('close', onClose);
      dismissDialog = () => finish(null);

      dialog.replaceChildren(form);
      dialog.showModal();
      // Focus the first field, else Cancel: Enter alone should not confirm
      // a destructive action.
      (fields.length ? fields[0].input : no).focus();
    });
  }

  function readFields(fields) {
    const values = {};
    for (const field of fields) values[field.name] = field.read();
    return values;
  }

  function fieldRow(label, input, hint) {
    return el('label', { class: 'field' }, el('span', { class: 'field-label' }, label), input,
      hint ? el('span', { class: 'field-hint' }, hint) : null);
  }

  function numberField(name, label, { value, min, max, testid, hint }) {
    const input = el('input', { type: 'number', class: 'input', min, max, step: 1, value: String(value), 'data-testid': testid });
    const read = () => {
      const n = Number(input.value);
      if (input.value.trim() === '' || !Number.isInteger(n) || n < min) throw new Error(`${label}: enter a whole number from ${min}.`);
      if (max !== undefined && n > max) throw new Error(`${label}: at most ${max}.`);
      return n;
    };
    return { name, input, read, row: fieldRow(label, input, hint) };
  }

  function textField(name, label, { required = false, testid, placeholder }) {
    const input = el('input', { type: 'text', class: 'input', 'data-testid': testid, placeholder, autocomplete: 'off' });
    const read = () => {
      const text = input.value.trim();
      if (required && !text) throw new Error(`${label} is required.`);
      return text;
    };
    return { name, input, read, row: fieldRow(label, input) };
  }

  function jsonField(name, label, { value, testid }) {
    const input = el('textarea', { class: 'input mono', rows: 5, spellcheck: 'false', value, 'data-testid': testid });
    const read = () => {
      try { return JSON.parse(input.value); } catch (err) { throw new Error(`${label} is not valid JSON: ${err.message}`); }
    };
    return { name, input, read, row: fieldRow(label, input, 'Any JSON value, e.g. {"approved": true} or "text".') };
  }

  function checkboxField(name, label, { checked, testid }) {
    const input = el('input', { type: 'checkbox', checked, 'data-testid': testid });
    return { name, input, read: () => input.checked, row: el('label', { class: 'field check' }, input, label) };
  }

  // A sentence naming the action and its target, target strings as text.
  function actionSentence(verb, noun, name, id) {
    return [verb, ` ${noun} `, el('strong', {}, `“${name}”`), id ? [' (', el('code', {}, id), ')'] : null, '?'];
  }

  // ------------------------------------------------------------------ polling

  // Runs task now, then again intervalMs after each run ends (never two at
  // once). While the tab is hidden nothing runs; it catches up as soon as the
  // tab is visible again. A task returning false stops the schedule (a
  // finished workflow); kick() runs it again at once, whatever its state.
  function poller(task, intervalMs) {
    let timer = null;
    let running = false;
    let rerun = false;
    let stopped = false;
    let dueWhileHidden = false;

    async function run() {
      clearTimeout(timer);
      timer = null;
      if (stopped) return;
      if (running) { rerun = true; return; }
      running = true;
      let again = true;
      try { again = (await task()) !== false; } catch (err) { console.error(err); }
      running = false;
      if (stopped) return;
      if (rerun) { rerun = false; run(); return; }
      if (again) timer = setTimeout(due, intervalMs);
    }

    function due() {
      timer = null;
      if (document.hidden) dueWhileHidden = true;
      else run();
    }

    function onVisibility() {
      if (!document.hidden && dueWhileHidden) {
        dueWhileHidden = false;
        run();
      }
    }

    document.addEventListener('visibilitychange', onVisibility);
    run();
    return {
      kick: run,
      stop() {
        stopped = true;
        clearTimeout(timer);
        document.removeEventListener('visibilitychange', onVisibility);
      },
    };
  }

  // ------------------------------------------------------------------- router

  function safeDecode(text) {
    try { return decodeURIComponent(text); } catch (_) { return text; }
  }

  function parseRoute() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const q = raw.indexOf('?');
    const path = q === -1 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
    if (path === '/' || path === '') return { page: 'list', params };
    const wf = /^\/workflows\/([^/]+)\/?$/.exec(path);
    if (wf) return { page: 'workflow', id: safeDecode(wf[1]) };
    if (path === '/queues' || path === '/queues/') return { page: 'queues' };
    if (path === '/schedules' || path === '/schedules/') return { page: 'schedules' };
    return { page: 'missing', path };
  }

  let generation = 0;
  let stopPage = null;

  // Tears the old page down (timers, dialog) and renders the new one. Each
  // page gets a ctx whose alive() turns false once the user has moved on,
  // so late responses of the old page are dropped instead of drawn.
  function navigate() {
    if (stopPage) stopPage();
    stopPage = null;
    if (dismissDialog) dismissDialog();
    generation += 1;
    const gen = generation;
    setLoaded(false);
    clearNotice();
    const route = parseRoute();
    markNav(route.page);
    const root = document.getElementById('app');
    root.replaceChildren();
    const ctx = {
      root,
      alive: () => gen === generation,
      loaded() { if (gen === generation) setLoaded(true); },
    };
    const pages = { list: listPage, workflow: workflowPage, queues: queuesPage, schedules: schedulesPage, missing: missingPage };
    stopPage = pages[route.page](ctx, route) || null;
  }

  function setLoaded(yes) {
    document.body.setAttribute('data-loaded', yes ? 'true' : 'false');
  }

  function setTitle(text) {
    document.title = text ? `${text} · durable` : 'durable';
  }

  function notFound(root, title, detail, serverMessage) {
    root.replaceChildren(el('section', { class: 'card not-found', 'data-testid': 'not-found' },
      el('h1', {}, title),
      el('p', {}, detail),
      serverMessage ? el('p', { class: 'muted small' }, `Server: ${serverMessage}`) : null,
      el('p', {}, el('a', { href: '#/' }, '← Back to workflows'))));
  }

  function missingPage(ctx, route) {
    setTitle('Not found');
    notFound(ctx.root, 'Page not found', `There is no page at “${route.path}”.`);
    ctx.loaded();
  }

  function pageHead(title, ...extra) {
    return el('div', { class: 'page-head' }, el('h1', {}, title), extra);
  }

  // ----------------------------------------------------------- workflow list

  // Filters live in the hash query with the API's own parameter names, so a
  // URL can be shared and the API query is a straight copy.
  function readListFilters(params) {
    const statuses = new Set(params.getAll('status').map((s) => s.toUpperCase()).filter((s) => STATUSES.includes(s)));
    return {
      statuses,
      name: params.get('name') || '',
      key_prefix: params.get('key_prefix') || params.get('key') || '',
      queue: params.get('queue') || '',
      roots: params.get('roots') === 'true',
      direction: params.get('direction') === 'asc' ? 'asc' : 'desc',
    };
  }

  function filterParams(filters, { withStatus = true, withOrder = true } = {}) {
    const params = new URLSearchParams();
    if (withStatus) for (const s of STATUSES) if (filters.statuses.has(s)) params.append('status', s);
    if (filters.name) params.set('name', filters.name);
    if (filters.key_prefix) params.set('key_prefix', filters.key_prefix);
    if (filters.queue) params.set('queue', filters.queue);
    if (filters.roots) params.set('roots', 'true');
    if (withOrder && filters.direction === 'asc') params.set('direction', 'asc');
    return params;
  }

  // replaceState does not fire hashchange: the page keeps its inputs (and
  // their focus) while the URL follows the filters.
  function writeListHash(filters) {
    const qs = filterParams(filters).toString();
    history.replaceState(null, '', `#/${qs ? `?${qs}` : ''}`);
  }

  function listPage(ctx, route) {
    setTitle('Workflows');
    const filters = readListFilters(route.params);
    const cursors = [null]; // cursor of each page visited; the last one is on screen
    let queryVersion = 0;
    let nextCursor = null;
    let lastSignature = '';
    let shown = false;

    const chips = statusChips(filters, () => changed());
    const inputs = filterInputs(filters, () => changed());
    const banner = errorBanner();
    const tbody = el('tbody');
    const table = el('table', { class: 'data workflows', 'data-testid': 'workflow-table' }, workflowTableHead(), tbody);
    const updated = el('span', { class: 'muted updated' });
    const pageInfo = el('span', { class: 'muted' });
    const firstBtn = button('« First', { 'data-testid': 'first-page', disabled: true }, () => goPage(() => cursors.splice(1)));
    const prevBtn = button('‹ Previous', { 'data-testid': 'prev-page', disabled: true }, () => goPage(() => cursors.pop()));
    const nextBtn = button('Next page ›', { 'data-testid': 'next-page', disabled: true }, () => goPage(() => cursors.push(nextCursor)));

    on(tbody, 'click', openClickedRow);
    ctx.root.append(
      pageHead('Workflows', updated),
      chips.node,
      inputs.node,
      banner.node,
      el('div', { class: 'table-wrap' }, table),
      el('div', { class: 'pager' }, firstBtn, prevBtn, pageInfo, nextBtn));

    function changed() {
      cursors.splice(1);
      writeListHash(filters);
      queryVersion += 1;
      poll.kick();
    }

    function goPage(move) {
      move();
      queryVersion += 1;
      poll.kick();
    }

    async function load() {
      const version = queryVersion;
      const listParams = filterParams(filters);
      listParams.set('limit', String(PAGE_SIZE));
      const cursor = cursors[cursors.length - 1];
      if (cursor) listParams.set('after', cursor);
      const countParams = filterParams(filters, { withStatus: false, withOrder: false });
      try {
        const [list, counts] = await Promise.all([
          api('GET', `${API}/workflows?${listParams}`),
          api('GET', `${API}/workflows/counts${countParams.toString() ? `?${countParams}` : ''}`),
        ]);
        if (!ctx.alive() || version !== queryVersion) return true;
        banner.hide();
        chips.update(counts);
        drawRows(list.workflows || []);
        nextCursor = list.next || null;
        nextBtn.disabled = !nextCursor;
        prevBtn.disabled = cursors.length <= 1;
        firstBtn.disabled = cursors.length <= 1;
        pageInfo.textContent = `Page ${cursors.length}`;
        updated.textContent = `Updated ${fmtClock(Date.now())} · every ${LIST_REFRESH_MS / 1000} s`;
        if (!shown) { shown = true; ctx.loaded(); }
      } catch (err) {
        if (ctx.alive() && version === queryVersion) banner.show(err);
      }
      return true;
    }

    // Rows are only rebuilt when the data changed, so a refresh never swaps
    // a row out from under a click; running durations still tick.
    function drawRows(workflows) {
      const now = Date.now();
      const signature = JSON.stringify(workflows);
      if (signature === lastSignature && tbody.childElementCount) {
        for (const cell of tbody.querySelectorAll('td[data-live-start]')) {
          cell.textContent = `${fmtDuration(now - Number(cell.dataset.liveStart))} …`;
        }
        return;
      }
      lastSignature = signature;
      if (!workflows.length) {
        tbody.replaceChildren(el('tr', { class: 'empty' }, el('td', { colSpan: 7 }, 'No workflows match these filters.')));
        return;
      }
      tbody.replaceChildren(...workflows.map((wf) => workflowRow(wf, now)));
    }

    const poll = poller(load, LIST_REFRESH_MS);
    return () => { poll.stop(); inputs.cancel(); };
  }

  // The whole row opens the workflow; the link inside stays the keyboard
  // and middle-click path, and selecting text does not navigate.
  function openClickedRow(event) {
    if (event.target.closest('a')) return;
    const selection = window.getSelection();
    if (selection && String(selection).length) return;
    const row = event.target.closest('tr[data-id]');
    if (row) location.hash = workflowHref(row.dataset.id);
  }

  function statusChips(filters, onChange) {
    const counts = new Map();
    const chips = new Map();
    const total = el('span', { class: 'chip-count', 'data-testid': 'count-total' }, '–');
    const all = el('button', { type: 'button', class: 'chip chip-all', 'data-testid': 'status-all', title: 'Show every status' },
      el('span', { class: 'chip-label' }, 'All'), total);
    on(all, 'click', () => { filters.statuses.clear(); paint(); onChange(); });

    const node = el('div', { class: 'chips', role: 'group', 'aria-label': 'Status' }, all);
    for (const status of STATUSES) {
      const count = el('span', { class: 'chip-count', 'data-testid': `count-${status}` }, '–');
      const chip = el('button', { type: 'button', class: `chip ${statusClass(status)}`, 'data-testid': `status-chip-${status}`, 'data-status': status },
        el('span', { class: 'dot' }), el('span', { class: 'chip-label' }, status), count);
      on(chip, 'click', () => {
        if (filters.statuses.has(status)) filters.statuses.delete(status);
        else filters.statuses.add(status);
        paint();
        onChange();
      });
      counts.set(status, count);
      chips.set(status, chip);
      node.appendChild(chip);
    }

    function paint() {
      for (const [status, chip] of chips) chip.setAttribute('aria-pressed', String(filters.statuses.has(status)));
      all.setAttribute('aria-pressed', String(filters.statuses.size === 0));
    }

    paint();
    return {
      node,
      update(result) {
        const byStatus = (result && result.counts) || {};
        for (const [status, count] of counts) count.textContent = String(byStatus[status] ?? 0);
        total.textContent = String(result && result.total !== undefined ? result.total : '–');
      },
    };
  }

  function filterInputs(filters, onChange) {
    const text = (field, label, testid) => {
      const input = el('input', { type: 'search', class: 'input', placeholder: label, 'aria-label': label, value: filters[field], 'data-testid': testid });
      const apply = debounce(() => {
        if (filters[field] === input.value.trim()) return;
        filters[field] = input.value.trim();
        onChange();
      }, FILTER_DEBOUNCE_MS);
      on(input, 'input', () => apply());
      on(input, 'keydown', (event) => { if (event.key === 'Enter') apply.flush(); });
      return { input, apply };
    };
    const name = text('name', 'Name', 'filter-name');
    const key = text('key_prefix', 'Key prefix', 'filter-key');
    const queue = text('queue', 'Queue', 'filter-queue');

    const roots = el('input', { type: 'checkbox', checked: filters.roots, 'data-testid': 'filter-roots' });
    on(roots, 'change', () => { filters.roots = roots.checked; onChange(); });

    const order = el('select', { class: 'input', 'aria-label': 'Order', 'data-testid': 'filter-order' },
      el('option', { value: 'desc' }, 'Newest first'),
      el('option', { value: 'asc' }, 'Oldest first'));
    order.value = filters.direction;
    on(order, 'change', () => { filters.direction = order.value === 'asc' ? 'asc' : 'desc'; onChange(); });

    const node = el('div', { class: 'filters' },
      name.input, key.input, queue.input,
      el('label', { class: 'check' }, roots, 'Roots only'),
      order);
    return {
      node,
      cancel() { name.apply.cancel(); key.apply.cancel(); queue.apply.cancel(); },
    };
  }

  function workflowTableHead() {
    return el('thead', {}, el('tr', {},
      ['Name', 'Key', 'Status', 'Queue', 'Attempts', 'Created', 'Duration'].map((h) => el('th', {}, h))));
  }

  function workflowRow(wf, now) {
    const span = elapsed(wf, now, TERMINAL.has(wf.status));
    const duration = el('td', { class: 'num', title: wf.started_at_ms ? `started ${fmtTime(wf.started_at_ms)}` : 'not started' }, fmtElapsed(span));
    if (span && span.live) duration.dataset.liveStart = String(wf.started_at_ms);
    const nameCell = el('td', { class: wf.parent_id ? 'name is-child' : 'name', 'data-testid': 'workflow-name', title: wf.parent_id ? 'child workflow' : null },
      workflowLink(wf.id, wf.name || '(unnamed)'));
    return el('tr', { class: 'row-link', 'data-testid': 'workflow-row', 'data-id': wf.id, 'data-status': wf.status },
      nameCell,
      el('td', { class: 'mono clip', title: wf.key }, wf.key),
      el('td', {}, statusBadge(wf.status)),
      el('td', { class: 'clip', title: wf.queue || '' }, wf.queue ?? '—'),
      el('td', { class: 'num' }, wf.attempts ?? ''),
      timeCell(wf.created_at_ms),
      duration);
  }

  // ----------------------------------------------------------- workflow page

  function workflowUrl(id, action) {
    return `${API}/workflows/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;
  }

  // A transition either happens or is refused (409, shown as an error).
  function changedNotice(done) {
    return () => `${done}.`;
  }

  // Fork from the first failed call by default: that is the usual "run it
  // again from where it broke" case; otherwise from the start.
  function defaultForkPosition(tree) {
    const failed = (tree.steps || []).find((step) => step.status === 'FAILED');
    return failed ? failed.position : 0;
  }

  function sendBody(values) {
    const body = { topic: values.topic, payload: values.payload };
    if (values.key) body.key = values.key;
    return body;
  }

  // Every action is the same shape: fields for the dialog, the call, and the
  // text of the success notice. All buttons stay enabled: the server is the
  // judge of which transition is allowed, and its refusal (409) is shown.
  const WORKFLOW_ACTIONS = [
    { name: 'pause', title: 'Pause workflow', label: 'Pause', verb: 'Pause',
      call: (wf) => api('POST', workflowUrl(wf.id, 'pause')), done: changedNotice('Paused') },
    { name: 'resume', title: 'Resume workflow', label: 'Resume', verb: 'Resume',
      call: (wf) => api('POST', workflowUrl(wf.id, 'resume')), done: changedNotice('Resumed') },
    { name: 'cancel', title: 'Cancel workflow', label: 'Cancel', verb: 'Cancel', danger: true,
      call: (wf) => api('POST', workflowUrl(wf.id, 'cancel')), done: changedNotice('Cancelled') },
    { name: 'retry', title: 'Retry workflow', label: 'Retry', verb: 'Retry',
      fields: (tree) => [checkboxField('cancelled', 'Also run cancelled workflows of the tree again',
        { checked: tree.workflow.status === 'CANCELLED', testid: 'retry-cancelled' })],
      call: (wf, v) => api('POST', workflowUrl(wf.id, 'retry'), v.cancelled ? { cancelled: true } : undefined),
      done: () => 'Retry started: the failed calls run again.' },
    { name: 'fork', title: 'Fork workflow', label: 'Fork…', verb: 'Fork',
      fields: (tree) => [numberField('from', 'Fork from call position N', {
        value: defaultForkPosition(tree), min: 0, max: (tree.steps || []).length, testid: 'fork-position',
        hint: `Calls before N replay; N and after run anew (0 to ${(tree.steps || []).length}).`,
      })],
      call: (wf, v) => api('POST', workflowUrl(wf.id, 'fork'), { from: v.from }),
      done: (result) => ['Forked as a new workflow: ', workflowLink(result.id)] },
    { name: 'send', title: 'Send message', label: 'Send message…', verb: 'Send a message to',
      fields: () => [
        textField('topic', 'Topic', { required: true, testid: 'send-topic' }),
        jsonField('payload', 'Payload (JSON)', { value: '{}', testid: 'send-payload' }),
        textField('key', 'Idempotency key (optional)', { testid: 'send-key' }),
      ],
      call: (wf, v) => api('POST', workflowUrl(wf.id, 'messages'), sendBody(v)),
      done: (result, values) => `Message sent on topic “${values.topic}”.` },
  ];

  function workflowPage(ctx, route) {
    const id = route.id;
    setTitle('Workflow');
    const banner = errorBanner();
    const loading = el('p', { class: 'muted' }, 'Loading workflow…');
    ctx.root.append(banner.node, loading);
    const expanded = new Set(); // clipped values the user opened; survives refreshes
    let view = null;

    async function load() {
      let tree;
      try {
        tree = await api('GET', workflowUrl(id, 'tree'));
      } catch (err) {
        if (!ctx.alive()) return false;
        // 400 too: an id that is not even a UUID is just as unknown.
        if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
          setTitle('Not found');
          notFound(ctx.root, 'Workflow not found', `No workflow with id “${id}”.`, err.message);
          ctx.loaded();
          return false;
        }
        banner.show(err);
        return true;
      }
      if (!ctx.alive()) return false;
      banner.hide();
      if (!view) {
        loading.remove();
        view = workflowView(ctx, tree, expanded, () => poll.kick());
      }
      view.update(tree);
      ctx.loaded();
      return !TERMINAL.has(tree.workflow.status);
    }

    const poll = poller(load, TREE_REFRESH_MS);
    return () => poll.stop();
  }

  function workflowView(ctx, firstTree, expanded, refresh) {
    let tree = firstTree;
    let signature = '';
    const title = el('div', { class: 'wf-title' });
    const live = el('span', { class: 'live-indicator' });
    const actionButtons = WORKFLOW_ACTIONS.map((action) => button(action.label, {
      class: action.danger ? 'btn danger-outline' : 'btn', 'data-testid': `action-${action.name}`,
    }, () => runWorkflowAction(action)));
    const details = el('div', { class: 'wf-details' });
    const header = el('section', { class: 'card wf-header', 'data-testid': 'workflow-header' },
      el('div', { class: 'wf-title-row' }, title, el('div', { class: 'actions' }, actionButtons)),
      details);
    const timeline = el('div', { class: 'timeline', 'data-testid': 'timeline' });
    const stepBody = el('tbody');
    const stepTable = el('table', { class: 'data steps', 'data-testid': 'step-tree' }, stepTableHead(), stepBody);
    const retried = el('div', { class: 'retried' });
    const retriedTitle = el('h2', {}, 'Retried calls');

    ctx.root.append(
      el('div', { class: 'crumbs' }, el('a', { href: '#/' }, '← Workflows'), live),
      header,
      el('section', { class: 'card' }, el('h2', {}, 'Timeline'), timeline),
      el('section', { class: 'card' }, el('h2', {}, 'Steps'), el('div', { class: 'table-wrap' }, stepTable)),
      el('section', { class: 'card' }, retriedTitle, retried));

    async function runWorkflowAction(action) {
      const wf = tree.workflow;
      const fields = action.fields ? action.fields(tree) : [];
      const values = await confirmDialog({
        title: action.title,
        message: actionSentence(action.verb, 'workflow', wf.name, wf.id),
        fields,
        danger: !!action.danger,
      });
      if (values === null || !ctx.alive()) return;
      for (const b of actionButtons) b.disabled = true;
      try {
        const result = await action.call(wf, values);
        if (ctx.alive()) showNotice('success', action.done(result, values));
      } catch (err) {
        if (ctx.alive()) showNotice('error', `${action.label.replace('…', '')} failed: ${errorText(err)}`);
      } finally {
        for (const b of actionButtons) b.disabled = false;
        // Re-fetch at once; this also restarts live updates when the action
        // made a finished workflow run again (retry).
        if (ctx.alive()) refresh();
      }
    }

    function update(next) {
      tree = next;
      const now = Date.now();
      const terminal = TERMINAL.has(tree.workflow.status);
      live.textContent = terminal ? 'finished · not refreshing' : `live · every ${TREE_REFRESH_MS / 1000} s`;
      live.classList.toggle('on', !terminal);
      const nextSignature = JSON.stringify(tree);
      // The timeline moves with the clock while anything runs; the rest only
      // changes with the data (and keeps its expanded cells across rebuilds).
      drawTimeline(timeline, tree, now);
      if (nextSignature === signature) return;
      signature = nextSignature;
      setTitle(tree.workflow.name);
      title.replaceChildren(...workflowTitle(tree.workflow));
      details.replaceChildren(...workflowDetails(tree.workflow, now));
      stepBody.replaceChildren(...stepRows(tree, 0, now, expanded, terminal));
      if (!stepBody.childElementCount) {
        stepBody.appendChild(el('tr', { class: 'empty' }, el('td', { colSpan: 8 }, 'No durable calls yet.')));
      }
      const retriedRows = collectRetried(tree, null, []);
      retriedTitle.textContent = `Retried calls (${retriedRows.length})`;
      retried.replaceChildren(retriedTable(retriedRows, tree.workflow.id, expanded));
    }

    return { update };
  }

  function workflowTitle(wf) {
    return [
      el('h1', {}, wf.name || '(unnamed)'),
      statusBadge(wf.status, 'workflow-status'),
    ];
  }

  function detailItem(label, ...value) {
    return el('div', { class: 'detail' }, el('dt', {}, label), el('dd', {}, value));
  }

  function timeWithAgo(ms, now) {
    if (ms === null || ms === undefined) return '—';
    return [fmtTime(ms), el('span', { class: 'muted' }, ` (${fmtRelative(ms, now)})`)];
  }

  function workflowDetails(wf, now) {
    const optional = (label, value, render = (v) => v) =>
      (value === null || value === undefined || value === '' ? null : detailItem(label, render(value)));
    const grid = el('dl', { class: 'details' },
      detailItem('Key', el('code', {}, wf.key)),
      detailItem('Id', el('code', {}, wf.id)),
      optional('Parent', wf.parent_id, (p) => [workflowLink(p, shortId(p)), wf.parent_position !== null && wf.parent_position !== undefined ? ` at call ${wf.parent_position}` : '']),
      wf.root_id && wf.root_id !== wf.id ? detailItem('Root', workflowLink(wf.root_id, shortId(wf.root_id))) : null,
      detailItem('Queue', wf.queue ?? '—'),
      optional('Priority', wf.priority),
      optional('Concurrency key', wf.concurrency_key),
      detailItem('Attempts', String(wf.attempts ?? '—'), wf.recoveries ? ` · ${wf.recoveries} recoveries` : ''),
      detailItem('Created', timeWithAgo(wf.created_at_ms, now)),
      detailItem('Started', timeWithAgo(wf.started_at_ms, now)),
      detailItem('Finished', timeWithAgo(wf.finished_at_ms, now)),
      detailItem('Duration', fmtElapsed(elapsed(wf, now, TERMINAL.has(wf.status)))),
      optional('Timeout', wf.timeout_ms, fmtDuration),
      optional('Deadline', wf.deadline_ms, fmtTime),
      optional('Wakes at', wf.wake_at_ms, fmtTime),
      optional('Waiting for', wf.waiting_for),
      optional('App version', wf.app_version),
      optional('Owner', wf.owner));
    const io = el('div', { class: 'io' },
      el('div', { class: 'io-box' }, el('h3', {}, 'Input'), el('pre', { class: 'json', 'data-testid': 'workflow-input' }, prettyJson(wf.input))),
      el('div', { class: 'io-box' }, el('h3', {}, 'Output'), el('pre', { class: 'json', 'data-testid': 'workflow-output' }, prettyJson(wf.output))));
    const error = wf.error ? el('div', { class: 'io-box error-box' }, el('h3', {}, 'Error'), el('pre', { class: 'error-text', 'data-testid': 'workflow-error' }, wf.error)) : null;
    return [grid, io, error];
  }

  // Long values are clipped to CLIP_CHARS with a toggle; which ones are open
  // is remembered by key so the 1 s refresh does not fold them back.
  function clippedValue(shortText, fullText, stateKey, expanded, className) {
    if (shortText.length <= CLIP_CHARS) return el('span', { class: className }, shortText);
    const box = el('div', { class: `clipped ${className}` });
    const draw = () => {
      const open = expanded.has(stateKey);
      const toggle = button(open ? 'less' : 'more', { class: 'link-btn', 'data-testid': 'expand', 'aria-expanded': String(open) }, () => {
        if (expanded.has(stateKey)) expanded.delete(stateKey); else expanded.add(stateKey);
        draw();
      });
      const body = open
        ? el('pre', { class: 'json' }, fullText)
        : el('span', {}, shortText.length > CLIP_CHARS ? `${shortText.slice(0, CLIP_CHARS)}…` : shortText);
      box.replaceChildren(body, ' ', toggle);
    };
    draw();
    return box;
  }

  function outputCell(value, stateKey, expanded) {
    if (value === null || value === undefined) return el('td', { class: 'muted' }, '—');
    return el('td', { class: 'output' }, clippedValue(compactJson(value), prettyJson(value), `out:${stateKey}`, expanded, 'mono'));
  }

  function errorCell(error, stateKey, expanded) {
    if (!error) return el('td', {}, '');
    return el('td', { class: 'error-cell' }, clippedValue(error.replace(/\s+/g, ' '), error, `err:${stateKey}`, expanded, 'error-text'));
  }

  function stepTableHead() {
    return el('thead', {}, el('tr', {},
      ['#', 'Step', 'Kind', 'Status', 'Attempts', 'Duration', 'Output', 'Error'].map((h) => el('th', {}, h))));
  }

  function indent(cell, depth) {
    // Depth is a number we computed; CSSOM style is allowed by the CSP.
    cell.style.paddingLeft = `${8 + depth * 22}px`;
    return cell;
  }

  function stepCells(step, stateKey, now, expanded, frozen, depth) {
    const span = elapsed(step, now, frozen);
    const maxAttempts = (step.max_retries ?? 0) + 1;
    const stepName = indent(el('td', { class: 'step-name' },
      el('span', { class: 'strong' }, step.name),
      step.key && step.key !== step.name ? el('span', { class: 'muted mono small' }, ` ${step.key}`) : null), depth);
    return [
      el('td', { class: 'num' }, step.position),
      stepName,
      el('td', {}, el('span', { class: 'kind' }, step.kind)),
      el('td', {}, statusBadge(step.status)),
      el('td', { class: 'num', title: `max_retries ${step.max_retries}` }, `${step.attempts}/${maxAttempts}`),
      el('td', { class: 'num', title: stepTimesTitle(step) }, fmtElapsed(span)),
      outputCell(step.output, stateKey, expanded),
      errorCell(step.error, stateKey, expanded),
    ];
  }

  function stepTimesTitle(step) {
    const parts = [`created ${fmtTime(step.created_at_ms)}`];
    if (step.started_at_ms) parts.push(`started ${fmtTime(step.started_at_ms)}`);
    if (step.finished_at_ms) parts.push(`finished ${fmtTime(step.finished_at_ms)}`);
    if (step.wake_at_ms) parts.push(`wakes ${fmtTime(step.wake_at_ms)}`);
    return parts.join('\n');
  }

  // One row per call; a child workflow's header row and its own calls follow
  // the call that started it, one level deeper.
  function stepRows(tree, depth, now, expanded, frozen) {
    const rows = [];
    const wfId = tree.workflow.id;
    for (const step of tree.steps || []) {
      const stateKey = `${wfId}:${step.position}`;
      rows.push(el('tr', {
        class: `step depth-${Math.min(depth, 4)}`, 'data-testid': 'step-row', 'data-position': step.position,
        'data-kind': step.kind, 'data-status': step.status, 'data-depth': depth, 'data-workflow-id': wfId,
      }, stepCells(step, stateKey, now, expanded, frozen, depth)));
      if (step.child && step.child.workflow) {
        rows.push(childRow(step.child.workflow, depth + 1));
        rows.push(...stepRows(step.child, depth + 1, now, expanded, frozen));
      }
    }
    return rows;
  }

  function childRow(wf, depth) {
    const cell = indent(el('td', { colSpan: 8 },
      el('span', { class: 'muted' }, '↳ child workflow '),
      workflowLink(wf.id, wf.name || '(unnamed)'), ' ',
      statusBadge(wf.status), ' ',
      el('code', { class: 'muted small' }, wf.key)), depth);
    return el('tr', { class: 'child-row', 'data-testid': 'child-row', 'data-id': wf.id, 'data-status': wf.status }, cell);
  }

  function collectRetried(tree, owner, out) {
    for (const entry of tree.retried || []) out.push({ owner, workflow: tree.workflow, entry });
    for (const step of tree.steps || []) {
      if (step.child && step.child.workflow) collectRetried(step.child, step.child.workflow, out);
    }
    return out;
  }

  function retriedTable(items, rootId, expanded) {
    if (!items.length) return el('p', { class: 'muted' }, 'No retried calls: nothing was set aside by a retry.');
    const head = el('thead', {}, el('tr', {},
      ['Workflow', 'Round', 'Retried at', '#', 'Step', 'Kind', 'Status', 'Attempts', 'Duration', 'Output', 'Error'].map((h) => el('th', {}, h))));
    const rows = items.map(({ workflow, entry }) => {
      const step = entry.step || {};
      const stateKey = `retried:${workflow.id}:${entry.round}:${step.position}`;
      const cells = stepCells(step, stateKey, Date.now(), expanded, true, 0);
      return el('tr', { 'data-testid': 'retried-row', 'data-position': step.position, 'data-round': entry.round, 'data-status': step.status },
        el('td', {}, workflow.id === rootId ? el('span', { class: 'muted' }, 'this') : workflowLink(workflow.id, workflow.name)),
        el('td', { class: 'num' }, entry.round),
        timeCell(entry.retried_at_ms),
        cells);
    });
    return el('div', { class: 'table-wrap' }, el('table', { class: 'data steps' }, head, el('tbody', {}, rows)));
  }

  // ----------------------------------------------------------------- timeline

  // Bars per call and per child workflow, nested in call order. Unfinished
  // bars run to now while the root runs, or to the root's end once it is
  // over (a call cut short by a cancel has no finish time of its own).
  function timelineItems(tree, depth, rootEnd, out) {
    for (const step of tree.steps || []) {
      out.push({
        kind: 'step', depth, status: step.status, label: `${step.position} · ${step.name}`,
        detail: `${step.kind} ${step.key}`, start: step.started_at_ms ?? step.created_at_ms, end: step.finished_at_ms ?? rootEnd,
        done: step.finished_at_ms !== null && step.finished_at_ms !== undefined,
      });
      if (step.child && step.child.workflow) {
        const wf = step.child.workflow;
        out.push({
          kind: 'workflow', depth: depth + 1, status: wf.status, label: `↳ ${wf.name}`, detail: `workflow ${wf.key}`,
          start: wf.started_at_ms ?? wf.created_at_ms, end: wf.finished_at_ms ?? rootEnd,
          done: wf.finished_at_ms !== null && wf.finished_at_ms !== undefined,
        });
        timelineItems(step.child, depth + 1, rootEnd, out);
      }
    }
    return out;
  }

  function drawTimeline(container, tree, now) {
    const root = tree.workflow;
    const rootEnd = root.finished_at_ms ?? now;
    const items = timelineItems(tree, 0, rootEnd, []);
    if (!items.length) {
      container.replaceChildren(el('p', { class: 'muted' }, 'No calls to draw yet.'));
      return;
    }
    let t0 = root.created_at_ms;
    let t1 = root.finished_at_ms ?? now;
    for (const item of items) {
      t0 = Math.min(t0, item.start);
      t1 = Math.max(t1, item.end);
    }
    const total = Math.max(1, t1 - t0);
    const pct = (ms) => `${((ms - t0) / total) * 100}%`;

    const rows = items.map((item) => {
      const width = Math.max(0, item.end - item.start);
      const bar = el('div', {
        class: `tl-bar ${statusClass(item.status)}${item.done ? '' : ' tl-live'}`,
        'data-testid': 'timeline-bar', 'data-status': item.status, 'data-kind': item.kind,
        title: `${item.label} (${item.detail})\n${item.status}, ${fmtDuration(width)}\n${fmtTime(item.start)} → ${item.done ? fmtTime(item.end) : 'now'}`,
      });
      bar.style.left = pct(item.start);
      bar.style.width = `${(width / total) * 100}%`;
      const label = indent(el('div', { class: `tl-label${item.kind === 'workflow' ? ' tl-workflow' : ''}`, title: item.label }, item.label), item.depth);
      return el('div', { class: 'tl-row' }, label, el('div', { class: 'tl-track' }, bar), el('div', { class: 'tl-dur' }, fmtDuration(width)));
    });

    container.replaceChildren(el('div', { class: 'tl-rows' }, rows), timelineAxis(total, t0));
  }

  function timelineAxis(total, t0) {
    const track = el('div', { class: 'tl-track tl-axis-track' });
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const tick = el('div', { class: `tl-tick${f === 1 ? ' tl-tick-end' : ''}` }, f === 0 ? '0' : fmtDuration(total * f));
      tick.style.left = `${f * 100}%`;
      track.appendChild(tick);
    }
    return el('div', { class: 'tl-row tl-axis' },
      el('div', { class: 'tl-label muted' }, `from ${fmtTime(t0)}`),
      track,
      el('div', { class: 'tl-dur strong', 'data-testid': 'timeline-total', title: 'total duration' }, fmtDuration(total)));
  }

  // ------------------------------------------------------------------- queues

  function queuesPage(ctx) {
    setTitle('Queues');
    const banner = errorBanner();
    const updated = el('span', { class: 'muted updated' });
    const tbody = el('tbody');
    const table = el('table', { class: 'data', 'data-testid': 'queue-table' },
      el('thead', {}, el('tr', {},
        ['Queue', 'Running', 'Concurrency limit', 'Per-key limit', 'Queued', 'Waiting', 'Rate limit'].map((h) => el('th', {}, h)))),
      tbody);
    ctx.root.append(pageHead('Queues', updated), banner.node, el('section', { class: 'card' }, el('div', { class: 'table-wrap' }, table)),
      el('p', { class: 'muted small' }, 'Running: owned and unfinished. Queued: ready to be claimed. Waiting: suspended or delayed.'));
    let shown = false;

    async function load() {
      try {
        const result = await api('GET', `${API}/queues`);
        if (!ctx.alive()) return false;
        banner.hide();
        const queues = result.queues || [];
        tbody.replaceChildren(...(queues.length ? queues.map(queueRow)
          : [el('tr', { class: 'empty' }, el('td', { colSpan: 7 }, 'No queues.'))]));
        updated.textContent = `Updated ${fmtClock(Date.now())} · every ${QUEUE_REFRESH_MS / 1000} s`;
        if (!shown) { shown = true; ctx.loaded(); }
      } catch (err) {
        if (ctx.alive()) banner.show(err);
      }
      return true;
    }

    const poll = poller(load, QUEUE_REFRESH_MS);
    return () => poll.stop();
  }

  function limitText(value) {
    return value === null || value === undefined ? 'none' : String(value);
  }

  function rateText(queue) {
    if (queue.rate_limit === null || queue.rate_limit === undefined) return 'none';
    return `${queue.rate_limit} per ${fmtDuration(queue.rate_period_ms)}`;
  }

  // running against the concurrency limit, with a small fill bar.
  function usageCell(running, limit) {
    const cell = el('td', { class: 'usage' }, el('span', { class: 'num' }, limit ? `${running} / ${limit}` : String(running)));
    if (limit) {
      const fill = el('div', { class: `meter-fill${running >= limit ? ' full' : ''}` });
      fill.style.width = `${Math.min(100, (running / limit) * 100)}%`;
      cell.appendChild(el('div', { class: 'meter' }, fill));
    }
    return cell;
  }

  function queueRow(queue) {
    const listHref = `#/?${new URLSearchParams({ queue: queue.name })}`;
    return el('tr', { 'data-testid': 'queue-row', 'data-name': queue.name },
      el('td', { class: 'mono' }, el('a', { href: listHref, title: 'Workflows of this queue' }, queue.name)),
      usageCell(queue.running, queue.concurrency),
      el('td', { class: 'num' }, limitText(queue.concurrency)),
      el('td', { class: 'num' }, limitText(queue.concurrency_per_key)),
      el('td', { class: 'num' }, queue.queued),
      el('td', { class: 'num' }, queue.waiting),
      el('td', {}, rateText(queue)));
  }

  // ---------------------------------------------------------------- schedules

  function scheduleUrl(name, action) {
    return `${API}/schedules/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;
  }

  const SCHEDULE_ACTIONS = [
    { name: 'pause', label: 'Pause', verb: 'Pause', call: (s) => api('POST', scheduleUrl(s.name, 'pause')), done: (r, s) => `Schedule “${s.name}” paused.` },
    { name: 'resume', label: 'Resume', verb: 'Resume', call: (s) => api('POST', scheduleUrl(s.name, 'resume')), done: (r, s) => `Schedule “${s.name}” resumed.` },
    { name: 'trigger', label: 'Trigger', verb: 'Trigger', call: (s) => api('POST', scheduleUrl(s.name, 'trigger')),
      done: (r, s) => [`Schedule “${s.name}” triggered: started workflow `, workflowLink(r.id)] },
    { name: 'delete', label: 'Delete', verb: 'Delete', danger: true, call: (s) => api('DELETE', scheduleUrl(s.name)), done: (r, s) => `Schedule “${s.name}” deleted.` },
  ];

  function schedulesPage(ctx) {
    setTitle('Schedules');
    const banner = errorBanner();
    const updated = el('span', { class: 'muted updated' });
    const tbody = el('tbody');
    const table = el('table', { class: 'data schedules', 'data-testid': 'schedule-table' },
      el('thead', {}, el('tr', {},
        ['Name', 'Workflow', 'Cron', 'Queue', 'Catch-up', 'State', 'Next tick', 'Last tick', 'Fired', 'Actions'].map((h) => el('th', {}, h)))),
      tbody);
    ctx.root.append(pageHead('Schedules', updated), banner.node, el('section', { class: 'card' }, el('div', { class: 'table-wrap' }, table)));
    let shown = false;
    let signature = null;

    async function load() {
      try {
        const result = await api('GET', `${API}/schedules`);
        if (!ctx.alive()) return false;
        banner.hide();
        const schedules = result.schedules || [];
        // Rebuild only on change so a refresh never replaces a button mid-click.
        const next = JSON.stringify(schedules);
        if (next !== signature) {
          signature = next;
          tbody.replaceChildren(...(schedules.length ? schedules.map((s) => scheduleRow(s, act))
            : [el('tr', { class: 'empty' }, el('td', { colSpan: 10 }, 'No schedules.'))]));
        }
        updated.textContent = `Updated ${fmtClock(Date.now())} · every ${SCHEDULE_REFRESH_MS / 1000} s`;
        if (!shown) { shown = true; ctx.loaded(); }
      } catch (err) {
        if (ctx.alive()) banner.show(err);
      }
      return true;
    }

    async function act(action, schedule) {
      const ok = await confirmDialog({
        title: `${action.verb} schedule`,
        message: actionSentence(action.verb, 'schedule', schedule.name),
        danger: !!action.danger,
      });
      if (ok === null || !ctx.alive()) return;
      try {
        const result = await action.call(schedule);
        if (ctx.alive()) showNotice('success', action.done(result, schedule));
      } catch (err) {
        if (ctx.alive()) showNotice('error', `${action.label} failed: ${errorText(err)}`);
      }
      if (ctx.alive()) poll.kick();
    }

    const poll = poller(load, SCHEDULE_REFRESH_MS);
    return () => poll.stop();
  }

  function catchUpText(value) {
    if (typeof value === 'string') return value;
    if (value && typeof value === 'object' && 'bounded' in value) return `bounded (${value.bounded})`;
    return compactJson(value);
  }

  function isoCell(iso) {
    const ms = parseIso(iso);
    if (ms === null) return el('td', { class: 'time' }, iso ? String(iso) : '—');
    return el('td', { class: 'time', title: `${iso} (${fmtRelative(ms)})` }, fmtTime(ms));
  }

  function scheduleRow(schedule, act) {
    const buttons = SCHEDULE_ACTIONS.map((action) => button(action.label, {
      class: action.danger ? 'btn small danger-outline' : 'btn small', 'data-testid': `schedule-${action.name}`,
    }, () => act(action, schedule)));
    return el('tr', { 'data-testid': 'schedule-row', 'data-name': schedule.name, 'data-paused': String(!!schedule.paused) },
      el('td', { class: 'mono strong' }, schedule.name),
      el('td', { title: `input: ${compactJson(schedule.input)}` }, schedule.workflow),
      el('td', { class: 'cron' }, el('code', {}, schedule.cron), schedule.time_zone ? el('div', { class: 'muted small' }, schedule.time_zone) : null),
      el('td', {}, schedule.queue ?? '—'),
      el('td', {}, catchUpText(schedule.catch_up)),
      el('td', {}, el('span', { class: `badge ${schedule.paused ? 'st-paused' : 'st-completed'}`, 'data-testid': 'schedule-state' }, schedule.paused ? 'PAUSED' : 'ACTIVE')),
      isoCell(schedule.next_tick),
      isoCell(schedule.last_tick),
      el('td', { class: 'num' }, schedule.fired ?? 0),
      el('td', { class: 'row-actions' }, buttons));
  }

  // --------------------------------------------------------------------- boot

  function start() {
    const main = document.getElementById('app');
    document.body.insertBefore(buildTopBar(), main);
    document.body.insertBefore(noticeArea, main);
    document.body.appendChild(dialog);
    window.addEventListener('hashchange', navigate);
    navigate();
  }

  start();
})();
