/*! frontdesk agent console: the agents' side of /ws/agent and the agent REST API (docs/PROTOCOL.md).
 *
 * Plain JS, no dependencies. State lives in `S`; `render*` functions rebuild a pane from it. Every
 * word from a customer, an agent or the knowledge base is set with textContent (the `h` helper turns
 * strings into text nodes), never innerHTML, so markup in a message shows as the characters typed.
 */
(function () {
  'use strict';

  const TOKEN_KEY = 'frontdesk.console.token';
  const AGENT_KEY = 'frontdesk.console.agent';
  const SOUND_KEY = 'frontdesk.console.sound';
  const SELECTED_KEY = 'frontdesk.console.selected';
  // Replies typed and not stored yet, by chat, so a reload (or a crash) while the network is down
  // loses none: sent again once their chat is loaded. Removed at logout, like the drafts.
  const PENDING_KEY = 'frontdesk.console.pending';
  // The device token of each account that signed in from this browser (email → token): given back
  // at the next sign-in, it is throttled on its own, so someone guessing the password elsewhere
  // does not keep the agent out. It signs nobody in, so signing out leaves it.
  const DEVICES_KEY = 'frontdesk.console.devices';
  const TYPING_EVERY_MS = 3000, TYPING_IDLE_MS = 2000, TYPING_HIDE_MS = 8000;
  const TITLE = 'frontdesk console';

  /** Canned replies: `/` in an empty reply box or the menu; {name} is the customer's first name. */
  const CANNED = [
    { key: 'hello', text: 'Hi {name}, thanks for waiting! I’ve read through your conversation with our assistant, so no need to repeat anything. Let me take a look.' },
    { key: 'moment', text: 'Give me a moment while I check that for you.' },
    { key: 'order', text: 'Could you send me your order number (it starts with TW-)? I’ll look it up right away.' },
    { key: 'email', text: 'Could you confirm the email address on your account?' },
    { key: 'refund', text: 'I’ve issued the refund. It usually shows on your statement within 3–5 business days.' },
    { key: 'sorry', text: 'I’m really sorry about this, {name}. That’s not the experience we want you to have, and I’ll make it right.' },
    { key: 'anything', text: 'Is there anything else I can help you with today?' },
    { key: 'bye', text: 'Thanks for chatting with us, {name}. Have a great day!' },
  ];

  // ---- state ---------------------------------------------------------------------------------
  const S = {
    token: localStorage.getItem(TOKEN_KEY) || '',
    agent: safeJson(localStorage.getItem(AGENT_KEY)),
    presence: 'online',
    sound: localStorage.getItem(SOUND_KEY) !== 'off',
    ws: null, connected: false, retry: 0, retryTimer: 0,
    settled: new Set(), // client ids of replies seen stored or refused: out of the kept list (PENDING_KEY)
    queue: [], queueTotal: 0, seenQueue: null, // conversation ids already announced
    fresh: new Map(), // conversation id -> until when it is highlighted as new
    chats: new Map(), // id -> chat (see `chat()`)
    selected: sessionStorage.getItem(SELECTED_KEY), // conversation id shown in the centre
    preview: null, // {id, context} of a queued conversation being looked at
    mode: 'reply',
    teams: new Set(['general']),
    blink: 0,
  };

  const $ = (id) => document.getElementById(id);
  const el = {};
  for (const id of ['login', 'login-form', 'login-email', 'login-password', 'login-error', 'app', 'conn', 'sound',
    'presence', 'me-name', 'me-avatar', 'logout', 'mine', 'mine-count', 'queue', 'queue-count', 'empty', 'chat',
    'chat-name', 'chat-sub', 'chat-avatar', 'claim', 'transfer', 'resolve', 'close-chat', 'transcript', 'typing',
    'composer', 'mode-reply', 'mode-note', 'input', 'canned-btn', 'canned-menu', 'kb-btn', 'kb-pop', 'kb-q',
    'kb-results', 'send', 'ctx', 'transfer-dialog', 'transfer-form', 'transfer-team', 'transfer-agent',
    'transfer-note', 'teams', 'toasts', 'view-queue-count']) el[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = $(id);

  /** Small line icons (headless and minimal systems often have no emoji font). */
  const ICONS = {
    lock: 'M5 11h14v10H5zM8 11V7a4 4 0 0 1 8 0v4',
    bell: 'M6 17V11a6 6 0 0 1 12 0v6l2 2H4zM10 21h4',
    doc: 'M6 3h8l4 4v14H6zM14 3v4h4M9 12h6M9 16h6',
    book: 'M4 5a2 2 0 0 1 2-2h14v16H6a2 2 0 0 0-2 2zM4 21V5M8 7h8',
  };
  function icon(name) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'ic');
    svg.setAttribute('aria-hidden', 'true');
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', ICONS[name]);
    svg.append(path);
    return svg;
  }

  function safeJson(s) { try { return s ? JSON.parse(s) : null; } catch (e) { return null; } }

  /** Builds an element: `h('div.a.b', {title: 'x', onclick: f}, 'text', child, ...)`. Strings become text. */
  function h(spec, attrs, ...kids) {
    const [tag, ...classes] = spec.split('.');
    const n = document.createElement(tag || 'div');
    if (classes.length) n.className = classes.join(' ');
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.assign(n.dataset, v);
        else if (k === 'text') n.textContent = v;
        else n.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const k of kids.flat()) if (k != null && k !== false) n.append(k instanceof Node ? k : String(k));
    return n;
  }

  /** Only http(s) links and links on this server are followed. */
  function safeUrl(u) {
    try {
      const url = new URL(String(u), location.origin);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch (e) { return null; }
  }

  const initials = (name) => String(name || '?').trim().split(/\s+/).slice(0, 2).map((w) => w[0] || '').join('').toUpperCase() || '?';
  const firstName = (name) => (String(name || '').trim().split(/\s+/)[0] || 'there');
  const customerName = (c) => (c && (c.name || c.email)) || 'Visitor';

  function ago(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  }
  const clock = (ms) => (ms ? new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '');
  const day = (ms) => new Date(ms).toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' });

  /** A notice for a few seconds; `sticky` ones stay until dismissed (text the agent may copy). */
  function toast(text, bad, sticky) {
    const t = h('div.toast' + (bad ? '.bad' : ''), { role: bad ? 'alert' : 'status' }, text);
    el.toasts.append(t);
    if (!sticky) return void setTimeout(() => t.remove(), 6000);
    const dismiss = h('button.dismiss', { type: 'button' }, 'Dismiss');
    dismiss.addEventListener('click', () => t.remove());
    t.append(' ', dismiss);
  }

  /** The replies of a chat the agent no longer holds cannot be sent: shown until dismissed. */
  function dropUnsent(c, why) {
    if (!c.pending.size) return;
    for (const [cid, p] of c.pending) {
      S.settled.add(cid);
      toast('Not sent to ' + customerName(c.context && c.context.customer) + ' (' + why + '): ' + p.text, true, true);
    }
    c.pending.clear();
    savePending();
  }

  // ---- REST ----------------------------------------------------------------------------------
  async function api(path, options = {}) {
    const res = await fetch(path, {
      ...options,
      headers: { 'content-type': 'application/json', ...(S.token ? { authorization: 'Bearer ' + S.token } : {}), ...(options.headers || {}) },
    });
    const body = await res.json().catch(() => ({}));
    if (res.status === 401 && path !== '/api/agent/login') {
      logout('Your session has ended. Please sign in again.');
      throw new Error(body.message || 'unauthorized');
    }
    if (!res.ok) throw Object.assign(new Error(body.message || res.statusText), { code: body.code });
    return body;
  }

  // ---- login ---------------------------------------------------------------------------------
  el.loginForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    unlockAudio();
    el.loginError.hidden = true;
    try {
      const email = el.loginEmail.value.trim().toLowerCase();
      const devices = safeJson(localStorage.getItem(DEVICES_KEY)) || {};
      const body = await api('/api/agent/login', {
        method: 'POST',
        body: JSON.stringify({ email, password: el.loginPassword.value, device: devices[email] || undefined }),
      });
      // The newest first, ten accounts at most.
      const kept = Object.entries(devices).filter(([e]) => e !== email).slice(0, 9);
      if (body.device) localStorage.setItem(DEVICES_KEY, JSON.stringify(Object.fromEntries([[email, body.device], ...kept])));
      S.token = body.token;
      S.agent = body.agent;
      localStorage.setItem(TOKEN_KEY, S.token);
      localStorage.setItem(AGENT_KEY, JSON.stringify(S.agent));
      el.loginPassword.value = '';
      start();
    } catch (err) {
      el.loginError.textContent = err.code === 'bad_credentials' ? 'That email and password do not match any account.' : 'Could not sign in: ' + err.message;
      el.loginError.hidden = false;
    }
  });

  function logout(message) {
    // A newer session another tab signed in since (this tab's ended or is being replaced) is not
    // this tab's to end: it keeps the stored token and the replies kept for it.
    const stored = localStorage.getItem(TOKEN_KEY);
    if (!stored || stored === S.token) {
      localStorage.removeItem(TOKEN_KEY);
      localStorage.removeItem(AGENT_KEY);
      localStorage.removeItem(PENDING_KEY);
    }
    S.settled.clear();
    sessionStorage.removeItem(SELECTED_KEY);
    S.token = '';
    S.agent = null;
    clearTimeout(S.retryTimer);
    if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
    S.connected = false;
    for (const c of S.chats.values()) { clearTimeout(c.refresh); clearTimeout(c.typingTimer); clearTimeout(c.typingStop); }
    S.chats.clear();
    S.selected = null;
    S.preview = null;
    S.queue = [];
    S.queueTotal = 0;
    S.seenQueue = null;
    S.fresh.clear();
    // Nothing a customer wrote stays in the page: the lists, transcript and context are redrawn
    // empty, and the reply draft, the search box (filled from the customer's words), the transfer
    // note, toasts and the blinking title go too.
    el.input.value = '';
    el.kbQ.value = '';
    el.kbResults.replaceChildren();
    closePopovers();
    if (el.transferDialog.open) el.transferDialog.close('cancel');
    el.transferNote.value = '';
    el.toasts.replaceChildren();
    delete document.documentElement.dataset.attention;
    stopBlink();
    renderAll();
    el.app.hidden = true;
    delete el.app.dataset.role;
    el.login.hidden = false;
    document.dispatchEvent(new Event('frontdesk:logout')); // other views forget what they showed
    if (message) { el.loginError.textContent = message; el.loginError.hidden = false; }
    el.loginEmail.focus();
  }
  /** Ends `token` on the server, best effort (`keepalive`: it is sent even as the page reloads). */
  function endSession(token) {
    if (!token) return;
    fetch('/api/agent/logout', { method: 'POST', keepalive: true, headers: { Authorization: 'Bearer ' + token } }).catch(() => {});
  }
  // Signing out ends the token on the server too (it stops working everywhere it was copied).
  el.logout.addEventListener('click', () => {
    endSession(S.token);
    logout();
  });
  // The agent's other console tabs follow: one signed out in another tab signs out here at once
  // (no tab goes on showing customers' words), one signed in in another tab is signed in here too.
  window.addEventListener('storage', (e) => {
    if (e.key !== TOKEN_KEY && e.key !== null) return; // null: the site's storage was cleared
    const now = localStorage.getItem(TOKEN_KEY) || '';
    if (now === S.token) return;
    if (!now) {
      // The site's storage cleared: the session nobody keeps now is ended on the server too (a
      // sign-out in another tab ended it already).
      if (e.key === null) endSession(S.token);
      return logout('You signed out in another tab.');
    }
    // Signed in in another tab: start as that session. This tab's own session (both tabs signed
    // in at about the same time) is no longer kept anywhere, so it is ended on the server rather
    // than left valid until it expires.
    clearTimeout(S.retryTimer);
    if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
    endSession(S.token);
    location.reload();
  });

  /** Editors look after the knowledge base; they take no conversations and never join the queue. */
  const isEditor = () => !!S.agent && S.agent.role === 'editor';

  function start() {
    const saved = safeJson(localStorage.getItem(PENDING_KEY));
    if (saved && (!S.agent || saved.agent !== S.agent.id)) localStorage.removeItem(PENDING_KEY); // another agent's
    el.login.hidden = true;
    el.app.hidden = false;
    el.app.dataset.role = isEditor() ? 'editor' : 'agent';
    renderMe();
    renderAll();
    if (!isEditor()) connect();
    document.dispatchEvent(new CustomEvent('frontdesk:start', { detail: { editor: isEditor() } }));
  }

  // ---- the socket ----------------------------------------------------------------------------
  function connect() {
    clearTimeout(S.retryTimer);
    const url = new URL('/ws/agent', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    S.ws = ws;
    setConn('Connecting…', '');
    // The token goes in the first frame rather than the URL, so it stays out of access logs.
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: S.token }));
    ws.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      (HANDLERS[f.type] || (() => {}))(f);
    };
    ws.onclose = (e) => {
      if (S.ws !== ws) return;
      // 4003: the token expired or was revoked (signed out elsewhere, an admin, a new password).
      if (e.code === 4003) return logout('Your session has ended. Please sign in again.');
      S.connected = false;
      S.ws = null;
      const delay = Math.min(15000, 500 * 2 ** S.retry) * (0.8 + Math.random() * 0.4);
      S.retry = Math.min(S.retry + 1, 6);
      setConn('Offline, reconnecting in ' + Math.round(delay / 1000) + ' s…', 'down');
      S.retryTimer = setTimeout(connect, delay);
    };
  }
  window.addEventListener('online', () => { if (!S.ws && S.token) connect(); });

  function send(frame) {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN || !S.connected) return false;
    S.ws.send(JSON.stringify(frame));
    return true;
  }

  function setConn(text, cls) {
    el.conn.textContent = text;
    el.conn.className = 'conn ' + cls;
  }

  const HANDLERS = {
    ready(f) {
      S.connected = true;
      S.retry = 0;
      S.agent = f.agent;
      localStorage.setItem(AGENT_KEY, JSON.stringify(f.agent));
      for (const t of f.agent.teams || []) S.teams.add(t);
      setConn('Connected', 'ok');
      // The server starts every new connection online; keep what the agent chose.
      if (S.presence === 'away') send({ type: 'presence', status: 'away' });
      renderMe();
      resync();
    },
    // The queue: a snapshot when the socket connects (the first entries, and how many wait),
    // then only what changed.
    queue(f) { applyQueue(f.entries, [], f.total, true); },
    queue_changed(f) { applyQueue(f.upserted, f.removed, f.total, false); },
    assigned(f) {
      const c = fromContext(f.context);
      c.mine = true;
      c.by = f.by;
      if (f.note) c.extra.push({ kind: 'transfer_note', text: f.note, at: Date.now() });
      if (S.preview && S.preview.id === c.id) S.preview = null;
      if (f.by === 'claim' || !S.selected) select(c.id);
      if (f.by !== 'claim') announce((f.by === 'transfer' ? 'Transferred to you: ' : 'Assigned to you: ') + customerName(c.context.customer));
      renderMine();
      if (S.selected === c.id) renderCentre();
    },
    event(f) {
      const c = chat(f.conversation_id);
      const fr = f.frame;
      if (fr.type === 'typing') {
        if (fr.from === 'customer') setCustomerTyping(c, fr.on);
        return;
      }
      if (typeof fr.seq !== 'number') return;
      if (c.events.has(fr.seq)) return; // already drawn (from a context packet)
      c.events.set(fr.seq, fr);
      c.times.set(fr.seq, Date.now());
      if (fr.client_id) S.settled.add(fr.client_id);
      if (fr.client_id && c.pending.delete(fr.client_id)) savePending();
      if (fr.type === 'status') c.state = fr.state;
      if (fr.type === 'message' && fr.from === 'customer') {
        setCustomerTyping(c, false);
        if (S.selected !== c.id || document.hidden) { c.unread++; announce('New message from ' + customerName(c.context.customer), true); }
        refreshContextSoon(c);
      }
      renderMine();
      if (S.selected === c.id) { appendOrRender(c, fr); renderHead(); }
    },
    note(f) {
      const c = chat(f.conversation_id);
      c.notes.push({ agent: f.agent, text: f.text, at: f.at });
      if (S.selected === c.id) renderTranscript();
    },
    unassigned(f) {
      const c = S.chats.get(f.conversation_id);
      if (!c) return;
      dropUnsent(c, f.reason === 'resolved' ? 'the chat is resolved' : 'the chat is no longer yours');
      if (f.reason === 'resolved') {
        c.state = 'resolved';
        c.mine = false;
      } else {
        S.chats.delete(c.id);
        if (S.selected === c.id) S.selected = null;
        const who = customerName(c.context.customer);
        toast(f.reason === 'no_reply' ? who + '’s chat went back to the queue: no reply in time.'
          : f.reason === 'disconnected' ? who + '’s chat went back to the queue while you were away.'
            : 'Transferred ' + who + '’s chat.');
      }
      renderMine();
      renderCentre();
    },
    claim_failed(f) {
      toast(f.message, true);
      if (S.preview && S.preview.id === f.conversation_id && f.code !== 'at_capacity') S.preview = null;
      renderCentre();
    },
    alert(f) {
      // The server's `message` repeats the time in seconds; say who is waiting instead.
      const entry = S.queue.find((e) => e.conversation_id === f.conversation_id);
      const who = (entry && entry.customer) || 'A customer';
      toast(who + ' has waited ' + ago(f.waiting_seconds) + ' and nobody has picked it up; priority raised.', true);
      announce('A customer is still waiting');
    },
    rated(f) {
      const c = S.chats.get(f.conversation_id);
      toast('Rated ' + f.score + '/5' + (f.comment ? ': “' + f.comment + '”' : ''));
      if (!c) return;
      c.rating = { score: f.score, comment: f.comment };
      if (S.selected === c.id) renderTranscript();
    },
    error(f) {
      if (f.code === 'unauthorized') return logout('Your session has ended. Please sign in again.');
      // An error names the chat (and the message) it refuses: frames for different chats are
      // handled at once, so it may arrive after later frames. A refused message is not stored:
      // it leaves "sending…" (else every reconnect would send it again) and goes back to the
      // box if that chat is open and the box is empty, so nothing typed is lost.
      const c = f.conversation_id ? S.chats.get(f.conversation_id) : null;
      const p = c && f.client_id ? c.pending.get(f.client_id) : null;
      if (p) {
        S.settled.add(f.client_id);
        c.pending.delete(f.client_id);
        savePending();
        if (S.selected === c.id) {
          if (!el.input.value.trim()) el.input.value = p.text;
          renderTranscript();
        } else if (!c.draft) {
          c.draft = p.text;
        }
      }
      const whose = c ? 'To ' + customerName(c.context && c.context.customer) + ': ' : '';
      toast(whose + (p ? 'not sent. ' : '') + f.message, true);
    },
  };

  /** Merges queue entries (each with the time it was sent, so waits count up without trusting the
   * browser's clock) and removals into the queue, kept in the server's order. */
  function applyQueue(upserted, removed, total, replace) {
    const now = Date.now();
    const byId = new Map(replace ? [] : S.queue.map((e) => [e.conversation_id, e]));
    for (const id of removed || []) byId.delete(id);
    const fresh = [];
    for (const e of upserted || []) {
      S.teams.add(e.team);
      e.since = now - e.waiting_seconds * 1000;
      if (S.seenQueue && !S.seenQueue.has(e.conversation_id)) {
        fresh.push(e.conversation_id);
        S.fresh.set(e.conversation_id, now + 5000);
      }
      byId.set(e.conversation_id, e);
    }
    S.seenQueue = new Set([...(S.seenQueue || []), ...byId.keys()]);
    S.queue = [...byId.values()].sort((a, b) => (b.priority - a.priority) || (a.escalated_at - b.escalated_at)
      || (a.conversation_id < b.conversation_id ? -1 : 1));
    S.queueTotal = Math.max(typeof total === 'number' ? total : 0, S.queue.length);
    const previewGone = S.preview && !byId.has(S.preview.id);
    if (previewGone) S.preview = null; // someone took it
    renderQueue();
    if (fresh.length) announce(fresh.length === 1 ? 'New conversation waiting' : fresh.length + ' new conversations waiting');
    if (previewGone) renderCentre();
  }

  /** This agent's kept replies (see PENDING_KEY), by chat, as [[client_id, text, seen?], …]. */
  function keptReplies() {
    const saved = safeJson(localStorage.getItem(PENDING_KEY));
    const chats = saved && S.agent && saved.agent === S.agent.id && saved.chats && typeof saved.chats === 'object' ? saved.chats : {};
    const out = new Map();
    for (const [id, list] of Object.entries(chats)) {
      const ok = Array.isArray(list) ? list.filter((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string')
        .map(([cid, text, seen]) => [cid, text, typeof seen === 'number' ? seen : 0]) : [];
      if (ok.length) out.set(id, ok);
    }
    return out;
  }

  /** Keeps the replies not stored yet (see PENDING_KEY). The agent's console tabs share the list:
   * each adds its own and takes out only those it saw stored or refused, so chats another tab (or
   * this one before a reload) has not loaded yet keep theirs. `held`, when given, are the chats
   * the agent holds: the others' are dropped. */
  function savePending(held) {
    const chats = new Map();
    const add = (id, cid, text, seen) => {
      if (S.settled.has(cid) || (held && !held.has(id))) return;
      if (!chats.has(id)) chats.set(id, new Map());
      chats.get(id).set(cid, [text, seen]);
    };
    for (const [id, list] of keptReplies()) for (const [cid, text, seen] of list) add(id, cid, text, seen);
    for (const [id, c] of S.chats) for (const [cid, p] of c.pending) add(id, cid, p.text, p.seen);
    const out = {};
    for (const [id, m] of chats) out[id] = [...m].map(([cid, [text, seen]]) => [cid, text, seen]);
    try {
      if (chats.size) localStorage.setItem(PENDING_KEY, JSON.stringify({ agent: S.agent && S.agent.id, chats: out }));
      else localStorage.removeItem(PENDING_KEY);
    } catch (e) { /* storage full or unavailable: kept in memory only */ }
  }

  /** Loads the conversations this agent holds (after a reconnect some frames may have been missed). */
  async function resync() {
    const session = S.token; // a logout meanwhile leaves the chats it cleared cleared
    try {
      const { conversations } = await api('/api/conversations?state=agent&limit=200');
      if (S.token !== session) return;
      const mine = conversations.filter((c) => c.agent_id === S.agent.id).map((c) => c.id);
      for (const [id, c] of S.chats) if (c.mine && !mine.includes(id)) S.chats.delete(id);
      const kept = keptReplies();
      await Promise.all(mine.map(async (id) => {
        const context = await api('/api/conversations/' + encodeURIComponent(id) + '/context');
        if (S.token !== session) return;
        // Replies kept from before a reload (or by another tab): those seen stored, live or in
        // the transcript (fromContext), are not sent again.
        for (const [cid, text, seen] of kept.get(id) || []) if (!S.settled.has(cid)) chat(id).pending.set(cid, { text, seen });
        const c = fromContext(context);
        c.mine = true;
        // Messages typed while offline and not stored yet go out now.
        for (const [cid, p] of c.pending) send({ type: 'message', conversation_id: id, text: p.text, client_id: cid, seen: p.seen });
      }));
      if (S.token !== session) return;
      // Kept for chats the agent no longer holds: they cannot be sent; the agent is told.
      const held = new Set(mine);
      for (const [id, list] of kept) {
        if (held.has(id)) continue;
        for (const [cid, text] of list) if (!S.settled.has(cid)) toast('Not sent (the chat is no longer yours): ' + text, true, true);
      }
      savePending(held);
      if (S.selected && !S.chats.has(S.selected)) S.selected = null;
      if (!S.selected && mine.length) S.selected = mine[0];
      renderAll();
    } catch (e) {
      if (S.token) toast('Could not load your chats: ' + e.message, true);
    }
  }

  // ---- chats ---------------------------------------------------------------------------------
  function chat(id) {
    let c = S.chats.get(id);
    if (!c) {
      c = {
        id, mine: true, state: 'agent', context: { customer: {}, turns: [], articles: [], reasons: [], notes: [] },
        events: new Map(), times: new Map(), notes: [], extra: [], pending: new Map(), unread: 0,
        typing: false, typingTimer: 0, typingSentAt: 0, typingStop: 0, rating: null, draft: '', refresh: 0,
      };
      S.chats.set(id, c);
    }
    return c;
  }

  /** Merges a context packet into the chat (keeping what arrived live). */
  function fromContext(ctx) {
    const c = chat(ctx.conversation_id);
    c.context = ctx;
    c.state = ctx.state;
    for (const fr of ctx.transcript || []) {
      if (typeof fr.seq !== 'number') continue;
      c.events.set(fr.seq, fr);
      if (fr.at) c.times.set(fr.seq, fr.at);
      if (fr.client_id) { S.settled.add(fr.client_id); c.pending.delete(fr.client_id); }
    }
    c.notes = (ctx.notes || []).map((n) => ({ agent: n.agent, text: n.text, at: n.at }));
    if (ctx.team) S.teams.add(ctx.team);
    return c;
  }

  function refreshContextSoon(c) {
    clearTimeout(c.refresh);
    c.refresh = setTimeout(async () => {
      try {
        const ctx = await api('/api/conversations/' + encodeURIComponent(c.id) + '/context');
        if (!S.chats.has(c.id)) return;
        fromContext(ctx);
        if (S.selected === c.id) renderContext();
      } catch (e) { /* the next message tries again */ }
    }, 1200);
  }

  function setCustomerTyping(c, on) {
    const changed = c.typing !== on;
    c.typing = on;
    clearTimeout(c.typingTimer);
    if (on) c.typingTimer = setTimeout(() => setCustomerTyping(c, false), TYPING_HIDE_MS);
    if (S.selected === c.id) renderTyping();
    if (changed) renderMine(); // "typing…" in the chat's row of My chats, open or not
  }

  function select(id) {
    const prev = S.chats.get(S.selected);
    if (prev) prev.draft = el.input.value;
    S.selected = id;
    sessionStorage.setItem(SELECTED_KEY, id);
    S.preview = null;
    const c = S.chats.get(id);
    if (c) { c.unread = 0; el.input.value = c.draft || ''; }
    closePopovers();
    renderAll();
    if (c && c.mine) el.input.focus();
  }

  async function previewQueued(id) {
    const prev = S.chats.get(S.selected);
    if (prev) prev.draft = el.input.value;
    S.selected = null;
    S.preview = { id, context: null };
    renderAll();
    try {
      const context = await api('/api/conversations/' + encodeURIComponent(id) + '/context');
      if (S.preview && S.preview.id === id) { S.preview.context = context; renderCentre(); renderContext(); }
    } catch (e) { toast('Could not load the conversation: ' + e.message, true); }
  }

  function claim(id) {
    unlockAudio();
    if (!send({ type: 'claim', conversation_id: id })) toast('Not connected; try again in a moment.', true);
  }

  // ---- rendering: header and lists ------------------------------------------------------------
  function renderMe() {
    if (!S.agent) return;
    el.meName.textContent = S.agent.name;
    el.meAvatar.textContent = initials(S.agent.name);
    el.presence.setAttribute('aria-checked', String(S.presence === 'online'));
    el.presence.querySelector('.plabel').textContent = S.presence === 'online' ? 'Online' : 'Away';
    el.presence.title = S.presence === 'online' ? 'You take new conversations. Click to go away.' : 'Away: no new conversations are assigned to you. Click to go online.';
    el.sound.setAttribute('aria-pressed', String(S.sound));
  }

  function renderAll() {
    renderQueue();
    renderMine();
    renderCentre();
  }

  function reasonBadges(reasons) {
    const kinds = [...new Set((reasons || []).map((r) => r.kind))];
    return h('div.badges', null, kinds.map((k) => h('span.badge.' + k.replace(/[^a-z_]/g, ''), { title: k }, k.replace(/_/g, ' '))));
  }

  function prio(p) {
    const n = Math.max(0, Math.min(5, Number(p) || 0));
    return h('span.prio.p' + n, { title: 'Priority ' + p }, 'P' + (Number(p) || 0));
  }

  function renderQueue() {
    el.queueCount.textContent = S.queueTotal;
    el.viewQueueCount.textContent = S.queueTotal || '';
    const items = S.queue.map((e) => {
      const sel = S.preview && S.preview.id === e.conversation_id;
      const isNew = (S.fresh.get(e.conversation_id) || 0) > Date.now();
      const li = h('li.item' + (sel ? '.sel' : '') + (isNew ? '.fresh' : ''), {
        dataset: { id: e.conversation_id }, tabindex: 0, 'aria-label': 'Waiting: ' + (e.customer || 'Visitor'),
        onclick: () => previewQueued(e.conversation_id),
        onkeydown: (ev) => { if (ev.key === 'Enter') previewQueued(e.conversation_id); },
      },
      h('div.row', null, prio(e.priority), h('span.cname', null, e.customer || 'Visitor'),
        h('span.wait', { dataset: { since: String(e.since) } }, ago(e.waiting_seconds))),
      h('div.preview', null, e.preview || '…'),
      h('div.row', null, h('span.team', null, e.team), reasonBadges(e.reasons), h('span.spacer'),
        h('button.btn.primary.claim', { type: 'button', onclick: (ev) => { ev.stopPropagation(); claim(e.conversation_id); } }, 'Claim')));
      return li;
    });
    const more = S.queueTotal - S.queue.length;
    if (more > 0) items.push(h('li.none', null, more + ' more waiting: the oldest and most urgent are listed.'));
    el.queue.replaceChildren(...(items.length ? items : [h('li.none', null, 'Nobody is waiting.')]));
    tickWaits();
    updateTitle();
  }

  function renderMine() {
    const chats = [...S.chats.values()];
    el.mineCount.textContent = chats.filter((c) => c.mine).length;
    const items = chats.map((c) => {
      const last = lastMessage(c);
      return h('li.item' + (S.selected === c.id ? '.sel' : ''), {
        dataset: { id: c.id }, tabindex: 0, onclick: () => select(c.id),
        onkeydown: (ev) => { if (ev.key === 'Enter') select(c.id); },
      },
      h('div.row', null, h('span.avatar', null, initials(customerName(c.context.customer))),
        h('span.cname', null, customerName(c.context.customer)),
        c.unread ? h('span.unread', { title: c.unread + ' unread' }, c.unread) : null,
        h('span.state.' + c.state, null, c.state === 'agent' ? 'open' : c.state)),
      h('div.preview', null, c.typing ? 'typing…' : last ? (last.from === 'agent' ? 'You: ' : '') + last.text : '…'));
    });
    el.mine.replaceChildren(...(items.length ? items : [h('li.none', null, 'Claim a conversation from the queue.')]));
    updateTitle();
  }

  function lastMessage(c) {
    const seqs = [...c.events.keys()].sort((a, b) => b - a);
    for (const s of seqs) { const f = c.events.get(s); if (f.type === 'message' && f.from !== 'system') return f; }
    return null;
  }

  function tickWaits() {
    const now = Date.now();
    for (const w of el.queue.querySelectorAll('.wait')) {
      const secs = (now - Number(w.dataset.since)) / 1000;
      w.textContent = ago(secs);
      w.classList.toggle('long', secs > 120);
    }
  }
  setInterval(tickWaits, 1000);

  // ---- rendering: the conversation -------------------------------------------------------------
  function current() {
    if (S.preview) return { id: S.preview.id, preview: true, context: S.preview.context };
    const c = S.chats.get(S.selected);
    return c ? { id: c.id, chat: c, context: c.context } : null;
  }

  function renderCentre() {
    const cur = current();
    el.empty.hidden = !!cur;
    el.chat.hidden = !cur;
    if (!cur) {
      // Hidden is not enough: the last conversation's words leave the page (e.g. after logging out).
      el.transcript.replaceChildren();
      delete el.transcript.dataset.id;
      el.chatName.textContent = '';
      el.chatAvatar.textContent = '';
      el.chatSub.replaceChildren();
      renderTyping();
      renderContext();
      return;
    }
    renderHead();
    renderTranscript();
    renderTyping();
    renderContext();
  }

  function renderHead() {
    const cur = current();
    if (!cur) return;
    const ctx = cur.context || {};
    const cust = ctx.customer || {};
    const state = cur.chat ? cur.chat.state : 'queued';
    el.chatName.textContent = customerName(cust);
    el.chatAvatar.textContent = initials(customerName(cust));
    el.chatSub.replaceChildren(h('span.state.' + state, null, state === 'agent' ? 'with you' : state),
      ' ', [cust.email && (cust.verified ? cust.email : cust.email + ' (unverified)'), ctx.team && 'team ' + ctx.team, cust.locale].filter(Boolean).join(' · '));
    const mine = !!(cur.chat && cur.chat.mine && cur.chat.state === 'agent');
    el.claim.hidden = !cur.preview;
    el.claim.onclick = () => claim(cur.id);
    el.transfer.hidden = !mine;
    el.resolve.hidden = !mine;
    el.closeChat.hidden = !(cur.chat && !mine);
    el.composer.hidden = !mine;
  }

  function renderTranscript() {
    const cur = current();
    if (!cur) return;
    const nodes = [];
    if (cur.preview && !cur.context) nodes.push(h('div.sys', null, 'Loading…'));
    let frames, times, notes, extra, pending, rating;
    if (cur.chat) {
      const c = cur.chat;
      frames = [...c.events.values()].sort((a, b) => a.seq - b.seq);
      times = c.times; notes = c.notes; extra = c.extra; pending = [...c.pending.entries()]; rating = c.rating;
    } else {
      frames = (cur.context && cur.context.transcript) || [];
      times = new Map(frames.filter((f) => f.at).map((f) => [f.seq, f.at]));
      notes = (cur.context && cur.context.notes) || []; extra = []; pending = []; rating = null;
    }
    const articles = new Map(((cur.context && cur.context.articles) || []).map((a) => [a.seq, a]));
    // Notes have times; frames have them when the server gave them (or when they arrived live).
    const timeline = frames.map((f) => ({ at: times.get(f.seq) || 0, node: frameNode(f, times.get(f.seq), articles) }));
    const placed = (list, make) => {
      for (const n of list) {
        const at = n.at || Date.now();
        let i = timeline.length;
        while (i > 0 && timeline[i - 1].at > at) i--;
        timeline.splice(i, 0, { at, node: make(n) });
      }
    };
    placed(notes, noteNode);
    placed(extra, (x) => noteNode({ agent: 'Transfer note', text: x.text, at: x.at }));
    for (const t of timeline) if (t.node) nodes.push(t.node);
    for (const [cid, p] of pending) {
      nodes.push(h('div.msg.agent.pending', { dataset: { clientId: cid } },
        h('div.meta', null, h('b', null, 'You'), h('span', null, 'sending…')), h('div.bubble', null, p.text)));
    }
    if (rating) {
      nodes.push(h('div.sys.rated', null, 'Rated ' + rating.score + '/5' + (rating.comment ? ' — “' + rating.comment + '”' : '')));
    }
    const log = el.transcript;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
    const switched = log.dataset.id !== cur.id;
    log.dataset.id = cur.id;
    // What appendOrRender needs to know to add a frame after these without drawing them again.
    log.dataset.lastSeq = String(frames.reduce((m, f) => Math.max(m, f.seq), 0));
    log.dataset.lastAt = String(timeline.reduce((m, t) => Math.max(m, t.at), 0));
    log.dataset.appendable = cur.chat && !rating ? '1' : '';
    log.replaceChildren(...nodes);
    if (atBottom || switched) log.scrollTop = log.scrollHeight;
  }

  // A new frame of the open chat: when it comes after everything drawn (the usual case, a live
  // message), add its node alone, before any "sending…" bubbles; else draw the whole transcript.
  // Redrawing for every frame made a long chat's backlog (hundreds of frames after a reconnect)
  // take minutes of the agent's browser.
  function appendOrRender(c, fr) {
    const log = el.transcript;
    const at = c.times.get(fr.seq) || 0;
    if (log.dataset.id !== c.id || !log.dataset.appendable || !(fr.seq > Number(log.dataset.lastSeq)) ||
        at < Number(log.dataset.lastAt)) {
      return renderTranscript();
    }
    const articles = new Map(((c.context && c.context.articles) || []).map((a) => [a.seq, a]));
    const node = frameNode(fr, at, articles);
    log.dataset.lastSeq = String(fr.seq);
    log.dataset.lastAt = String(at);
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
    if (fr.client_id) {
      for (const p of log.querySelectorAll('.msg.pending')) if (p.dataset.clientId === fr.client_id) p.remove();
    }
    if (node) log.insertBefore(node, log.querySelector('.msg.pending'));
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function frameNode(f, at, articles) {
    if (f.type === 'message') {
      if (f.from === 'system') return h('div.sys', { dataset: { seq: f.seq } }, f.text);
      const who = f.from === 'customer' ? 'Customer' : f.from === 'bot' ? 'Bot' : (f.author || 'Agent');
      const node = h('div.msg.' + f.from, { dataset: { seq: f.seq } },
        h('div.meta', null, h('b', null, who), at ? h('span', null, clock(at)) : null),
        h('div.bubble', null, f.text));
      if (f.from === 'customer' && f.choice && typeof f.choice === 'object') {
        node.append(h('div.chose', null, f.choice.passage ? 'Picked from the bot’s choices' : 'None of the bot’s choices fit'));
      }
      if (f.sources && f.sources.length) {
        const a = articles.get(f.seq);
        node.append(h('div.sources', null, f.sources.map((s) => {
          const href = safeUrl(s.url);
          return href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, icon('doc'), s.title) : h('span', null, icon('doc'), s.title);
        }), a ? feedback(a.helpful) : null));
      }
      return node;
    }
    if (f.type === 'status') {
      const text = {
        queued: 'Waiting in the queue' + (f.queue_position ? ' (position ' + f.queue_position + ')' : '') + (f.agents_available === false ? ' — nobody available' : ''),
        agent: (f.agent || 'An agent') + ' joined the chat',
        resolved: 'Resolved',
        bot: 'Back with the bot',
      }[f.state] || f.state;
      return h('div.sys', { dataset: { seq: f.seq } }, text);
    }
    if (f.type === 'csat_request') return h('div.sys', { dataset: { seq: f.seq } }, 'Rating requested');
    return null;
  }

  function noteNode(n) {
    return h('div.msg.note', null,
      h('div.meta', null, icon('lock'), h('b', null, 'Private note'), h('span', null, '· ' + n.agent), n.at ? h('span', null, clock(n.at)) : null),
      h('div.bubble', null, n.text));
  }

  function feedback(helpful) {
    if (helpful === true) return h('span.fbk.yes', null, '👍 helpful');
    if (helpful === false) return h('span.fbk.no', null, '👎 not helpful');
    return h('span.fbk.none', null, 'no feedback');
  }

  function renderTyping() {
    const cur = current();
    const on = !!(cur && cur.chat && cur.chat.typing);
    el.typing.hidden = !on;
    el.typing.textContent = on ? firstName(customerName(cur.context.customer)) + ' is typing…' : '';
  }

  // ---- rendering: the context packet -----------------------------------------------------------
  function section(title, ...kids) {
    return h('section', null, h('h3', null, title), ...kids);
  }

  function renderContext() {
    const cur = current();
    const ctx = cur && cur.context;
    if (!ctx) {
      el.ctx.replaceChildren(h('p.placeholder', null, cur ? 'Loading context…' : 'The customer’s story shows here: what they want, why the bot handed over, how they feel, what they read.'));
      return;
    }
    const parts = [];
    parts.push(section('Summary', h('p.summary', null, ctx.summary || 'No summary yet.')));

    const reasons = ctx.reasons || [];
    parts.push(section('Why it’s here', reasons.length ? reasons.map((r) => h('div.reason', null,
      h('span.badge.' + String(r.kind).replace(/[^a-z_]/g, ''), null, String(r.kind).replace(/_/g, ' ')),
      h('span.detail', null, r.detail || ''),
      typeof r.value === 'number' && typeof r.threshold === 'number' ? meter(r.value, r.threshold) : null))
      : h('p.muted.small', null, 'No reasons recorded.'),
    h('dl.kv', null, h('dt', null, 'Priority'), h('dd', null, prio(ctx.priority || 0)),
      h('dt', null, 'Team'), h('dd', null, ctx.team || '—'),
      h('dt', null, 'Waited'), h('dd', null, ctx.waiting_seconds != null ? ago(ctx.waiting_seconds) : '—'))));

    const turns = ctx.turns || [];
    if (turns.length) {
      const intents = [...new Set(turns.map((t) => t.intent).filter(Boolean))];
      // Each turn against its own bar (lower when a cue backs the reading); the line is the bar
      // without a cue, which most messages meet.
      const upset = typeof ctx.upset_threshold_without_cue === 'number' ? ctx.upset_threshold_without_cue
        : typeof ctx.upset_threshold === 'number' ? ctx.upset_threshold : 0.55;
      parts.push(section('Sentiment over turns', sparkline(turns, upset),
        h('ul.turns', null, turns.slice(-6).map((t) => h('li', { title: t.text },
          h('span.u' + (t.upset >= barOf(t, upset) ? '.hi' : ''), null, typeof t.upset === 'number' ? t.upset.toFixed(2) : ' – '),
          h('span.tt', null, t.text),
          t.intent ? h('span.intent', null, t.intent) : null))),
        intents.length ? h('div.intents', null, intents.map((i) => h('span.intent', null, i))) : null));
    }

    const arts = ctx.articles || [];
    parts.push(section('Articles the bot showed', arts.length ? h('ul.articles', null, arts.map((a) => {
      const href = safeUrl(a.url);
      return h('li', null, href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, a.title || a.article) : h('span', null, a.title || a.article), feedback(a.helpful));
    })) : h('p.muted.small', null, 'None.')));

    const cust = ctx.customer || {};
    const page = safeUrl(cust.page);
    parts.push(section('Customer', h('dl.kv', null,
      h('dt', null, 'Name'), h('dd', null, cust.name || '—'),
      h('dt', null, 'Identity'), h('dd', null, cust.verified ? 'verified by your site' + (cust.user_id ? ' (id ' + cust.user_id + ')' : '')
        : 'unverified: the name and email are what the visitor typed'),
      h('dt', null, 'Email'), h('dd', null, cust.email || '—'),
      h('dt', null, 'Page'), h('dd', null, page ? h('a', { href: page, target: '_blank', rel: 'noopener noreferrer' }, cust.page) : (cust.page || '—')),
      h('dt', null, 'Locale'), h('dd', null, cust.locale || '—'))));

    const prev = ctx.previous_conversations || [];
    parts.push(section('Previous conversations', prev.length ? h('ul.prev', null, prev.map((p) => h('li', null,
      h('div.muted.small', null, day(p.created_at) + ' · ' + p.state), h('div', null, p.summary || '…'))))
      : h('p.muted.small', null, cust.verified ? 'First conversation.' : 'Only a verified customer is linked to earlier conversations.')));
    el.ctx.replaceChildren(...parts);
  }

  function meter(value, threshold) {
    const m = h('div.meter', { title: value.toFixed(2) + ' (threshold ' + threshold.toFixed(2) + ')' }, h('i'), h('b'));
    m.firstChild.style.width = Math.min(100, value * 100) + '%';
    m.lastChild.style.left = Math.min(100, threshold * 100) + '%';
    return m;
  }

  /** `upset` is the escalation policy's threshold, from the context packet. */
  function barOf(t, fallback) {
    return typeof t.upset_bar === 'number' ? t.upset_bar : fallback;
  }

  function sparkline(turns, upset) {
    const box = h('div.spark', { role: 'img', 'aria-label': 'Upset score per customer turn: ' + turns.map((t) => (typeof t.upset === 'number' ? t.upset.toFixed(2) : '?')).join(', ') });
    const thr = h('div.thr');
    thr.style.bottom = Math.round(upset * 100) + '%';
    box.append(thr);
    for (const t of turns) {
      const u = typeof t.upset === 'number' ? t.upset : 0;
      const own = barOf(t, upset);
      const bar = h('div.bar' + (u >= own ? '.hi' : u >= own * 0.6 ? '.mid' : ''), {
        title: '#' + t.seq + ' ' + (t.intent || '?') + (typeof t.confidence === 'number' ? ' ' + t.confidence.toFixed(2) : '') + ' · upset ' + u.toFixed(2) + ': ' + t.text,
      });
      bar.style.height = Math.max(3, u * 100) + '%';
      box.append(bar);
    }
    return box;
  }

  // ---- composer ------------------------------------------------------------------------------
  function setMode(mode) {
    S.mode = mode;
    el.modeReply.setAttribute('aria-selected', String(mode === 'reply'));
    el.modeNote.setAttribute('aria-selected', String(mode === 'note'));
    el.composer.classList.toggle('note', mode === 'note');
    el.input.placeholder = mode === 'note' ? 'Private note: only agents see this…' : 'Reply to the customer…';
    el.input.setAttribute('aria-label', mode === 'note' ? 'Private note' : 'Reply to the customer');
    el.send.textContent = mode === 'note' ? 'Add note' : 'Send';
    if (mode === 'note') stopTyping();
    el.input.focus();
  }
  el.modeReply.addEventListener('click', () => setMode('reply'));
  el.modeNote.addEventListener('click', () => setMode('note'));

  el.composer.addEventListener('submit', (e) => { e.preventDefault(); submit(); });

  function submit() {
    const c = S.chats.get(S.selected);
    const text = el.input.value.trim();
    if (!c || !text) return;
    if (S.mode === 'note') {
      if (!send({ type: 'note', conversation_id: c.id, text })) return toast('Not connected; the note was not saved. Try again in a moment.', true);
    } else {
      const cid = 'c-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 8);
      // `seen`: the newest frame of the chat shown now. The reply is stored after it, so when it
      // is sent again the server looks for an earlier copy among the frames after it only.
      let seen = 0;
      for (const seq of c.events.keys()) if (seq > seen) seen = seq;
      c.pending.set(cid, { text, seen });
      savePending();
      send({ type: 'message', conversation_id: c.id, text, client_id: cid, seen }); // sent again on reconnect if not stored
      stopTyping();
    }
    el.input.value = '';
    c.draft = '';
    closePopovers();
    renderTranscript();
    el.transcript.scrollTop = el.transcript.scrollHeight;
  }

  el.input.addEventListener('keydown', (e) => {
    if (!el.cannedMenu.hidden && cannedKeys(e)) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    if (e.key === 'Escape') closePopovers();
  });

  el.input.addEventListener('input', () => {
    const v = el.input.value;
    if (v.startsWith('/') && !v.includes('\n')) openCanned(v.slice(1));
    else if (!el.cannedMenu.hidden && el.cannedMenu.dataset.slash) closePopovers();
    const c = S.chats.get(S.selected);
    if (!c || S.mode !== 'reply' || v.startsWith('/')) return;
    const now = Date.now();
    if (v.trim() && now - c.typingSentAt > TYPING_EVERY_MS && send({ type: 'typing', conversation_id: c.id, on: true })) c.typingSentAt = now;
    clearTimeout(c.typingStop);
    c.typingStop = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  function stopTyping() {
    const c = S.chats.get(S.selected);
    if (!c) return;
    clearTimeout(c.typingStop);
    if (c.typingSentAt) send({ type: 'typing', conversation_id: c.id, on: false });
    c.typingSentAt = 0;
  }

  // Canned replies: the menu, or "/" then a few letters, arrows and Enter.
  function openCanned(filter, fromButton) {
    el.kbPop.hidden = true;
    const f = (filter || '').toLowerCase();
    // Shortcuts that start with what was typed first, then replies that mention it.
    const list = [...CANNED.filter((r) => r.key.startsWith(f)),
      ...CANNED.filter((r) => !r.key.startsWith(f) && r.text.toLowerCase().includes(f))];
    el.cannedMenu.dataset.slash = fromButton ? '' : '1';
    el.cannedMenu.replaceChildren(...(list.length ? list.map((r, i) => h('div.opt', {
      role: 'option', 'aria-selected': String(i === 0), dataset: { key: r.key },
      onmousedown: (e) => { e.preventDefault(); insertCanned(r); },
    }, h('b', null, '/' + r.key), h('span', null, fill(r.text)))) : [h('div.opt', null, h('span', null, 'No canned reply matches.'))]));
    el.cannedMenu.hidden = false;
  }

  function fill(text) {
    const c = S.chats.get(S.selected);
    return text.replace(/\{name\}/g, firstName(c && c.context.customer && c.context.customer.name));
  }

  function insertCanned(r) {
    const slash = el.cannedMenu.dataset.slash;
    const text = fill(r.text);
    el.input.value = slash ? text : (el.input.value ? el.input.value.replace(/\s*$/, ' ') : '') + text;
    closePopovers();
    el.input.focus();
    el.input.dispatchEvent(new Event('input'));
  }

  function cannedKeys(e) {
    const opts = [...el.cannedMenu.querySelectorAll('.opt[data-key]')];
    let i = opts.findIndex((o) => o.getAttribute('aria-selected') === 'true');
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      i = (i + (e.key === 'ArrowDown' ? 1 : opts.length - 1)) % Math.max(1, opts.length);
      opts.forEach((o, j) => o.setAttribute('aria-selected', String(j === i)));
      return true;
    }
    if ((e.key === 'Enter' || e.key === 'Tab') && opts[i]) {
      e.preventDefault();
      insertCanned(CANNED.find((r) => r.key === opts[i].dataset.key));
      return true;
    }
    if (e.key === 'Escape') { e.preventDefault(); closePopovers(); return true; }
    return false;
  }

  el.cannedBtn.addEventListener('click', () => (el.cannedMenu.hidden ? openCanned('', true) : closePopovers()));

  // Knowledge-base search: insert a passage and its link into the reply.
  el.kbBtn.addEventListener('click', () => {
    el.cannedMenu.hidden = true;
    el.kbPop.hidden = !el.kbPop.hidden;
    if (!el.kbPop.hidden) {
      const c = S.chats.get(S.selected);
      const last = c && [...c.events.values()].filter((f) => f.type === 'message' && f.from === 'customer').pop();
      if (!el.kbQ.value && last) el.kbQ.value = last.text.slice(0, 200);
      el.kbQ.focus();
      el.kbQ.select();
      if (el.kbQ.value) kbSearch();
    }
  });
  let kbTimer = 0;
  el.kbQ.addEventListener('input', () => { clearTimeout(kbTimer); kbTimer = setTimeout(kbSearch, 250); });
  el.kbQ.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { closePopovers(); el.input.focus(); }
    if (e.key === 'Enter') { e.preventDefault(); clearTimeout(kbTimer); kbSearch(); }
  });

  async function kbSearch() {
    const q = el.kbQ.value.trim();
    if (!q) { el.kbResults.replaceChildren(); return; }
    el.kbResults.replaceChildren(h('li.muted', null, 'Searching…'));
    try {
      const { passages } = await api('/api/kb/search?limit=5&q=' + encodeURIComponent(q));
      if (el.kbQ.value.trim() !== q) return;
      el.kbResults.replaceChildren(...(passages.length ? passages.map((p) => h('li', { dataset: { path: p.path } },
        h('div.t', null, h('span', null, p.title), h('button.btn.primary.insert', { type: 'button', onclick: () => insertPassage(p) }, 'Insert')),
        (p.heading_path || []).length ? h('div.h', null, p.heading_path.join(' › ')) : null,
        h('div.x', null, p.text))) : [h('li.muted', null, 'Nothing found.')]));
    } catch (e) {
      el.kbResults.replaceChildren(h('li.error', null, 'Search failed: ' + e.message));
    }
  }

  function insertPassage(p) {
    let text = String(p.text || '').trim();
    if (text.length > 700) text = text.slice(0, 700).replace(/\s+\S*$/, '') + '…';
    const link = safeUrl(p.link);
    const insert = text + (link ? '\n\nMore here: ' + link : '');
    el.input.value = el.input.value.trim() ? el.input.value.replace(/\s*$/, '\n\n') + insert : insert;
    closePopovers();
    el.input.focus();
    el.input.dispatchEvent(new Event('input'));
  }

  function closePopovers() {
    el.cannedMenu.hidden = true;
    el.kbPop.hidden = true;
  }
  document.addEventListener('mousedown', (e) => {
    if (!el.composer.contains(e.target)) closePopovers();
  });

  // ---- actions -------------------------------------------------------------------------------
  el.resolve.addEventListener('click', () => {
    const c = S.chats.get(S.selected);
    if (c && !send({ type: 'resolve', conversation_id: c.id })) toast('Not connected; try again in a moment.', true);
  });

  el.closeChat.addEventListener('click', () => {
    S.chats.delete(S.selected);
    S.selected = null;
    renderAll();
  });

  el.transfer.addEventListener('click', async () => {
    el.teams.replaceChildren(...[...S.teams].sort().map((t) => h('option', { value: t })));
    el.transferTeam.value = '';
    el.transferNote.value = '';
    el.transferAgent.replaceChildren(h('option', { value: '' }, 'Loading…'));
    el.transferDialog.showModal();
    try {
      const { agents } = await api('/api/agents');
      const others = agents.filter((a) => a.id !== S.agent.id && a.status === 'online');
      el.transferAgent.replaceChildren(...(others.length ? others.map((a) => h('option', { value: a.id },
        a.name + ' (' + a.chats + '/' + a.max_chats + ' chats' + ((a.teams || []).length ? ', ' + a.teams.join(', ') : '') + ')'))
        : [h('option', { value: '' }, 'Nobody else is online')]));
    } catch (e) {
      el.transferAgent.replaceChildren(h('option', { value: '' }, 'Could not list agents'));
    }
  });

  el.transferDialog.addEventListener('close', () => {
    if (el.transferDialog.returnValue !== 'go') return;
    const c = S.chats.get(S.selected);
    if (!c) return;
    const kind = el.transferForm.elements.kind.value;
    const frame = { type: 'transfer', conversation_id: c.id };
    if (kind === 'agent') {
      if (!el.transferAgent.value) return toast('Pick an agent to transfer to.', true);
      frame.to_agent = el.transferAgent.value;
    } else if (el.transferTeam.value.trim()) {
      frame.to_team = el.transferTeam.value.trim();
    }
    if (el.transferNote.value.trim()) frame.note = el.transferNote.value.trim();
    if (!send(frame)) toast('Not connected; try again in a moment.', true);
  });

  el.presence.addEventListener('click', () => {
    S.presence = S.presence === 'online' ? 'away' : 'online';
    send({ type: 'presence', status: S.presence });
    renderMe();
  });

  el.sound.addEventListener('click', () => {
    unlockAudio();
    S.sound = !S.sound;
    localStorage.setItem(SOUND_KEY, S.sound ? 'on' : 'off');
    renderMe();
    if (S.sound) beep();
  });

  // ---- attention: a beep and a blinking title ---------------------------------------------------
  let audio = null;
  function unlockAudio() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === 'suspended') audio.resume();
    } catch (e) { audio = null; }
  }
  // Browsers start sound only from a user's gesture. After a reload with a stored token there is no
  // sign-in click, so the first click or key press anywhere unlocks it; the listeners go once it is.
  const GESTURES = ['pointerdown', 'keydown'];
  function unlockOnGesture() {
    unlockAudio();
    if (audio && audio.state === 'running') for (const type of GESTURES) document.removeEventListener(type, unlockOnGesture, true);
  }
  for (const type of GESTURES) document.addEventListener(type, unlockOnGesture, true);
  function beep() {
    if (!S.sound || !audio) return;
    try {
      const now = audio.currentTime;
      for (const [i, freq] of [880, 1175].entries()) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = 'sine';
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, now + i * 0.14);
        gain.gain.exponentialRampToValueAtTime(0.15, now + i * 0.14 + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.14 + 0.13);
        osc.connect(gain).connect(audio.destination);
        osc.start(now + i * 0.14);
        osc.stop(now + i * 0.14 + 0.14);
      }
    } catch (e) { /* no sound, still the title */ }
  }

  /** A new conversation or message: beep (not for messages in the open chat) and blink the title until focused. */
  function announce(text, quiet) {
    if (!quiet) beep();
    document.documentElement.dataset.attention = text;
    if (document.hasFocus() && !document.hidden) { if (!quiet) flashTitle(text); return; }
    clearInterval(S.blink);
    let on = false;
    S.blink = setInterval(() => {
      on = !on;
      document.title = on ? '🔔 ' + text : titleBase();
    }, 1000);
  }
  function flashTitle(text) {
    document.title = '🔔 ' + text;
    setTimeout(updateTitle, 2500);
  }
  function stopBlink() {
    clearInterval(S.blink);
    S.blink = 0;
    updateTitle();
  }
  function titleBase() {
    const unread = [...S.chats.values()].reduce((n, c) => n + c.unread, 0);
    const waiting = S.queueTotal;
    const parts = [];
    if (unread) parts.push(unread + ' unread');
    if (waiting) parts.push(waiting + ' waiting');
    return (parts.length ? '(' + parts.join(', ') + ') ' : '') + TITLE;
  }
  function updateTitle() { if (!S.blink) document.title = titleBase(); }
  window.addEventListener('focus', stopBlink);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      stopBlink();
      const c = S.chats.get(S.selected);
      if (c && c.unread) { c.unread = 0; renderMine(); }
    }
  });

  el.sound.replaceChildren(icon('bell'));
  el.kbBtn.prepend(icon('book'));
  el.modeNote.prepend(icon('lock'));

  // ---- go ------------------------------------------------------------------------------------
  /** For the console's other views (console-editors.js): the same helpers, the same session. */
  window.FrontdeskConsole = Object.freeze({ h, api, icon, toast, safeUrl, meter, day, clock });

  if (S.token && S.agent) start();
  else { el.login.hidden = false; el.loginEmail.focus(); }
})();
