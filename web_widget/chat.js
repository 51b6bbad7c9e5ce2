// frontdesk demo chat: customer side of the /ws/chat protocol (JSON text frames).
// All server-provided text is rendered with textContent, never innerHTML.
(function () {
  'use strict';

  var KEY_SESSION = 'frontdesk.session', KEY_SEQ = 'frontdesk.last_seq', KEY_PENDING = 'frontdesk.pending';
  var KEY_HISTORY = 'frontdesk.history'; // rendered frames, so a reload can redraw the transcript
  var HISTORY_MAX = 200, TYPING_EVERY_MS = 3000, TYPING_IDLE_MS = 2000;
  var BACKOFF_MIN_MS = 500, BACKOFF_MAX_MS = 15000;
  var NAMES = { customer: 'You', bot: 'Tidewater assistant', agent: 'Support agent' };

  var el = {};                 // DOM references, filled in init()
  var ws = null;               // current WebSocket (open or connecting), or null
  var ready = false;           // true once the server sent `welcome` on this socket
  var everConnected = false, attempt = 0, retryTimer = null;
  var lastSeq = readNumber(KEY_SEQ);
  var pending = readPending(); // client_id -> {text, failed}: messages not yet acknowledged
  var history = readJSON(KEY_HISTORY, []);
  var seen = new Set();        // seqs already rendered
  var bubbles = new Map();     // client_id -> customer bubble element
  var typingSentAt = 0, typingStopTimer = null, typingHideTimer = null;

  // ---- Storage (localStorage may be unavailable, e.g. in some private modes) ----
  function load(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }
  function store(key, value) { try { localStorage.setItem(key, value); } catch (e) { /* works without persistence */ } }
  function readJSON(key, fallback) {
    try { var v = JSON.parse(load(key)); return v && typeof v === 'object' ? v : fallback; } catch (e) { return fallback; }
  }
  function readNumber(key) { var n = Number(load(key)); return Number.isFinite(n) && n > 0 ? n : 0; }
  function readPending() {
    var raw = readJSON(KEY_PENDING, {}), clean = {};
    Object.keys(raw).forEach(function (id) {
      if (raw[id] && typeof raw[id].text === 'string') clean[id] = { text: raw[id].text, failed: !!raw[id].failed };
    });
    return clean;
  }
  function savePending() { store(KEY_PENDING, JSON.stringify(pending)); }
  function saveHistory() { history = history.slice(-HISTORY_MAX); store(KEY_HISTORY, JSON.stringify(history)); }
  function remember(f) { history.push(f); saveHistory(); }
  function setLastSeq(seq) { lastSeq = seq; store(KEY_SEQ, String(seq)); }
  function newId() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    return 'c-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 12);
  }

  // ---- DOM helpers ----
  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }
  function button(label, onClick, className) {
    var b = make('button', className || 'chat-chip', label);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }
  function append(node) { el.log.appendChild(node); el.log.scrollTop = el.log.scrollHeight; }
  function systemLine(text, isError) { append(make('p', 'chat-system' + (isError ? ' chat-system--error' : ''), text)); }
  function bubble(kind, author, text) {
    var wrap = make('div', 'chat-msg chat-msg--' + kind);
    wrap.appendChild(make('span', 'chat-author', author || NAMES[kind]));
    wrap.appendChild(make('p', 'chat-text', typeof text === 'string' ? text : ''));
    append(wrap);
    return wrap;
  }
  function setConn(text, state) { el.conn.textContent = text; el.conn.dataset.state = state; }

  // Only http(s) or relative URLs become links; returns the absolute URL or null.
  function safeUrl(url) {
    if (typeof url !== 'string' || !url.trim()) return null;
    try {
      var u = new URL(url, location.href);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) { return null; }
  }

  // ---- Outgoing ----
  function sendFrame(obj) {
    if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }
  function notConnected() { systemLine('Not connected right now. Please try again in a moment.', true); }
  function requestHuman() { if (!sendFrame({ type: 'request_human' })) notConnected(); }

  function renderPending(id) {
    bubbles.set(id, bubble('customer', null, pending[id].text));
    setBubbleState(id, pending[id].failed ? 'failed' : 'pending');
  }
  function setBubbleState(id, state) {
    var b = bubbles.get(id);
    if (!b) return;
    b.classList.toggle('is-pending', state === 'pending');
    b.classList.toggle('is-failed', state === 'failed');
    var old = b.querySelector('.chat-meta');
    if (old) old.remove();
    if (state === 'pending') b.appendChild(make('span', 'chat-meta', 'Sending…'));
    if (state === 'failed') {
      var meta = make('span', 'chat-meta', 'Not sent. ');
      meta.appendChild(button('Retry', function () { retry(id); }, 'chat-link-btn'));
      b.appendChild(meta);
    }
  }
  function sendMessage(text) {
    text = String(text || '').trim();
    if (!text) return;
    var id = newId();
    pending[id] = { text: text, failed: false };
    savePending();
    renderPending(id);
    transmit(id); // when not connected it goes out after the next welcome
  }
  function transmit(id) { if (pending[id]) sendFrame({ type: 'message', client_id: id, text: pending[id].text }); }
  function retry(id) {
    if (!pending[id]) return;
    pending[id].failed = false;
    savePending();
    setBubbleState(id, 'pending');
    transmit(id);
  }
  function confirmSent(id, seq) {
    delete pending[id];
    savePending();
    setBubbleState(id, 'sent');
    if (typeof seq === 'number') seen.add(seq);
  }

  // Typing: "on" at most every 3 s while typing, "off" 2 s after the last keystroke.
  function onInput() {
    var now = Date.now();
    if (now - typingSentAt > TYPING_EVERY_MS && sendFrame({ type: 'typing', on: true })) typingSentAt = now;
    clearTimeout(typingStopTimer);
    typingStopTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }
  function stopTyping() {
    clearTimeout(typingStopTimer);
    if (typingSentAt) sendFrame({ type: 'typing', on: false });
    typingSentAt = 0;
  }

  // ---- Rendering server messages ----
  function renderSources(b, sources) {
    var list = make('ul', 'chat-sources');
    sources.forEach(function (s) {
      if (!s || typeof s !== 'object') return;
      var label = 'Source: ' + (s.title || 'Untitled') + (s.section ? ' › ' + s.section : '');
      var li = make('li', null, label), href = safeUrl(s.url);
      if (href) {
        var a = make('a', null, label);
        a.href = href; a.target = '_blank'; a.rel = 'noopener noreferrer';
        li.replaceChildren(a);
      }
      list.appendChild(li);
    });
    b.appendChild(list);
  }
  function isFeedback(r) { return r.action === 'helpful' || r.action === 'not_helpful'; }
  function buttonRow(replies, seq, prompt) {
    var row = make('div', 'chat-replies');
    if (prompt) row.appendChild(make('span', null, prompt));
    replies.forEach(function (r) {
      var b = button(r.label || r.text || r.action, function () { quickReply(r, seq, row); });
      if (r.ariaLabel) b.setAttribute('aria-label', r.ariaLabel);
      row.appendChild(b);
    });
    return row;
  }
  // Quick replies go in one row; feedback buttons get their own row, replaced by a thank-you.
  function renderReplies(b, f, hasSources) {
    var replies = (Array.isArray(f.quick_replies) ? f.quick_replies : []).filter(function (r) { return r && typeof r === 'object'; });
    var others = replies.filter(function (r) { return !isFeedback(r); }), feedback = replies.filter(isFeedback);
    if (others.length) b.appendChild(buttonRow(others, f.seq));
    if (typeof f.seq !== 'number') return; // feedback refers to the message seq
    if (f.feedback_given) {
      b.appendChild(make('p', 'chat-thanks', 'Thanks for the feedback'));
    } else if (feedback.length) {
      b.appendChild(buttonRow(feedback, f.seq));
    } else if (hasSources) {
      b.appendChild(buttonRow([{ label: '👍', action: 'helpful', ariaLabel: 'Helpful' },
        { label: '👎', action: 'not_helpful', ariaLabel: 'Not helpful' }], f.seq, 'Helpful?'));
    }
  }
  function quickReply(r, seq, row) {
    if (isFeedback(r)) {
      if (!sendFrame({ type: 'feedback', seq: seq, helpful: r.action === 'helpful' })) return notConnected();
      row.replaceWith(make('p', 'chat-thanks', 'Thanks for the feedback'));
      history.forEach(function (f) { if (f.seq === seq) f.feedback_given = true; }); // survives reloads
      saveHistory();
      el.input.focus(); // the clicked button is gone; keep focus somewhere useful
    } else if (r.action === 'request_human') {
      requestHuman();
    } else if (r.action === 'send') {
      sendMessage(r.text || r.label);
    }
  }

  // ---- Server frames ----
  function onMessage(f, fromCache) {
    if (typeof f.seq === 'number' && seen.has(f.seq)) return;
    if (f.from === 'customer' && f.client_id && bubbles.has(f.client_id)) {
      confirmSent(f.client_id, f.seq); // our own message coming back: reuse the local bubble
    } else if (f.from === 'customer' || f.from === 'bot' || f.from === 'agent') {
      var b = bubble(f.from, f.author, f.text);
      if (f.from === 'customer' && f.client_id) bubbles.set(f.client_id, b);
      if (f.from !== 'customer') {
        var hasSources = Array.isArray(f.sources) && f.sources.length > 0;
        if (hasSources) renderSources(b, f.sources);
        renderReplies(b, f, hasSources && f.from === 'bot');
        hideTyping();
      }
    } else {
      systemLine(f.text);
    }
    accept(f, fromCache);
  }
  // Mark a rendered message/status frame as seen and cache it for reloads.
  function accept(f, fromCache) {
    if (typeof f.seq === 'number') seen.add(f.seq);
    if (!fromCache) remember(f);
  }
  function statusText(f) {
    if (f.state === 'queued') {
      var bits = [];
      if (typeof f.queue_position === 'number') bits.push('position ' + f.queue_position);
      if (typeof f.eta_seconds === 'number') bits.push('about ' + Math.max(1, Math.round(f.eta_seconds / 60)) + ' min');
      return 'Waiting for a person' + (bits.length ? ' (' + bits.join(', ') + ')' : '');
    }
    return { agent: 'A person joined', bot: 'You are chatting with the assistant',
      resolved: 'Conversation resolved' }[f.state] || 'Status: ' + String(f.state);
  }
  function onStatus(f, fromCache) {
    if (typeof f.seq === 'number' && seen.has(f.seq)) return;
    systemLine(statusText(f));
    accept(f, fromCache);
  }
  function onAck(f) {
    var p = pending[f.client_id];
    if (!p) return;
    if (typeof f.seq === 'number' && !seen.has(f.seq)) { // cache it so a reload still shows it
      remember({ type: 'message', seq: f.seq, from: 'customer', text: p.text, client_id: f.client_id });
    }
    confirmSent(f.client_id, f.seq);
  }
  function onTyping(f) {
    if (f.from !== 'bot' && f.from !== 'agent') return;
    if (!f.on) return hideTyping();
    clearTimeout(typingHideTimer);
    el.typing.textContent = (f.from === 'bot' ? 'The assistant' : 'A person') + ' is typing…';
    el.typing.hidden = false;
    typingHideTimer = setTimeout(hideTyping, 15000); // in case "off" never arrives
  }
  function hideTyping() { clearTimeout(typingHideTimer); el.typing.hidden = true; el.typing.textContent = ''; }
  function onError(f) {
    systemLine(f.message || f.code || 'Something went wrong', true);
    if (f.client_id && pending[f.client_id]) {
      pending[f.client_id].failed = true; // not re-sent automatically; the user can Retry
      savePending();
      setBubbleState(f.client_id, 'failed');
    }
  }
  function onWelcome(f) {
    if (typeof f.session === 'string' && f.session) store(KEY_SESSION, f.session);
    if (f.resumed === false) { // new conversation: start from an empty transcript
      el.log.textContent = '';
      seen.clear(); bubbles.clear();
      history = []; saveHistory();
      setLastSeq(0);
      Object.keys(pending).forEach(renderPending);
    }
    (Array.isArray(f.missed) ? f.missed : []).forEach(function (m) {
      if (m && (m.type === 'message' || m.type === 'status')) handleFrame(m, false);
    });
    ready = everConnected = true;
    attempt = 0;
    setConn('Connected', 'ok');
    Object.keys(pending).forEach(function (id) { if (!pending[id].failed) transmit(id); });
  }

  var handlers = { welcome: onWelcome, ack: onAck, message: onMessage, status: onStatus,
    typing: onTyping, error: onError, feedback_ack: function () {} };
  function handleFrame(f, fromCache) {
    if (!f || typeof f !== 'object' || !Object.prototype.hasOwnProperty.call(handlers, f.type)) return;
    handlers[f.type](f, fromCache);
    if (typeof f.seq === 'number' && f.seq > lastSeq) setLastSeq(f.seq);
  }

  // ---- Connection ----
  function connect() {
    clearTimeout(retryTimer); retryTimer = null;
    if (ws) return; // already open or connecting
    setConn(everConnected ? 'Reconnecting…' : 'Connecting…', 'wait');
    var sock;
    try {
      sock = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/chat');
    } catch (e) {
      return scheduleReconnect();
    }
    ws = sock;
    sock.onopen = function () {
      sock.send(JSON.stringify({ type: 'hello', protocol: 1, session: load(KEY_SESSION) || undefined, // omitted if unknown
        last_seq: lastSeq, visitor: { page: location.href, locale: navigator.language } }));
    };
    sock.onmessage = function (ev) {
      try { var f = JSON.parse(ev.data); } catch (e) { return; } // ignore non-JSON frames
      handleFrame(f, false);
    };
    sock.onclose = function () {
      if (ws !== sock) return;
      ws = null; ready = false;
      hideTyping();
      scheduleReconnect();
    };
  }
  // Exponential backoff 0.5 s doubling to 15 s, with jitter (50-100 % of each step).
  function scheduleReconnect() {
    if (retryTimer) return;
    var step = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt));
    attempt++;
    setConn(navigator.onLine === false ? 'Offline, waiting for the network…' : 'Reconnecting…', 'wait');
    retryTimer = setTimeout(connect, step / 2 + Math.random() * step / 2);
  }
  function reconnectNow() { if (!ws) { attempt = 0; connect(); } }

  // ---- UI wiring ----
  function onSubmit(ev) {
    ev.preventDefault();
    var text = el.input.value;
    if (!text.trim()) return;
    el.input.value = '';
    stopTyping();
    sendMessage(text);
  }
  function onKeyDown(ev) { if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) onSubmit(ev); }
  function toggleChat() {
    var open = el.toggle.getAttribute('aria-expanded') !== 'true';
    el.toggle.setAttribute('aria-expanded', String(open));
    el.toggle.textContent = open ? 'Minimize' : 'Open chat';
    el.body.hidden = !open;
  }

  function init() {
    ['log', 'form', 'input', 'human', 'conn', 'typing', 'toggle', 'body'].forEach(function (name) {
      el[name] = document.getElementById('chat-' + name);
    });
    if (!el.log || !el.form || !el.input || !el.conn || !el.typing) return;
    if (!Array.isArray(history)) history = [];
    history.forEach(function (f) { handleFrame(f, true); }); // redraw the transcript after a reload
    Object.keys(pending).forEach(renderPending);
    el.form.addEventListener('submit', onSubmit);
    el.input.addEventListener('keydown', onKeyDown);
    el.input.addEventListener('input', onInput);
    if (el.human) el.human.addEventListener('click', requestHuman);
    if (el.toggle && el.body) el.toggle.addEventListener('click', toggleChat);
    window.addEventListener('online', reconnectNow);
    window.addEventListener('offline', function () { if (!ready) setConn('Offline, waiting for the network…', 'wait'); });
    document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'visible') reconnectNow(); });
    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
