/*! frontdesk chat widget: the customer side of /ws/chat (docs/PROTOCOL.md). No dependencies.
 *
 * Embed with one tag (every data- attribute is optional):
 *   <script src="https://support.example.com/widget.js" async
 *     data-server="https://support.example.com"  (default: where widget.js came from)
 *     data-color="#0b4f5c" data-position="right|left" data-lang="en|es|fr|de"
 *     data-title="Support" data-greeting="Hi! How can we help?" data-open="false"
 *     data-name="Ana" data-email="ana@example.com"></script>
 *
 * Everything lives in a shadow root with its own styles. Text from people is set with textContent;
 * the bot's markdown is turned into DOM nodes by a small safe subset (see `markdown`), never innerHTML.
 */
(function () {
  'use strict';
  if (window.Frontdesk && window.Frontdesk.version) return; // included twice

  const VERSION = '1';
  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  const data = (script && script.dataset) || {};

  // ---- Settings ------------------------------------------------------------------------------
  const base = (() => {
    try {
      if (data.server) return new URL(data.server.replace(/\/*$/, '/'), location.href);
      if (script && script.src) return new URL('.', script.src);
    } catch (e) { /* fall through */ }
    return new URL('/', location.href);
  })();
  const lang = (data.lang || document.documentElement.lang || navigator.language || 'en').slice(0, 2).toLowerCase();

  const STRINGS = {
    en: {
      title: 'Support', greeting: 'Hi! Ask me anything. You can talk to a person at any time.',
      open: 'Open chat', close: 'Close chat', unread: (n) => (n === 1 ? '1 unread message' : n + ' unread messages'),
      label: 'Message', placeholder: 'Type your message…', send: 'Send', hint: 'Enter to send, Shift+Enter for a new line',
      human: 'Talk to a person', you: 'You', bot: 'Assistant', agent: 'Support agent',
      sending: 'Sending…', failed: 'Not sent.', retry: 'Retry', edit: 'Edit', waitingNet: 'Waiting for the network…',
      online: 'Online', connecting: 'Connecting…', offline: "You're offline. Messages will be sent when you're back.",
      helpful: 'Was this helpful?', yes: 'Yes', no: 'No', thanks: 'Thanks for your feedback!',
      queued: 'Waiting for a person', position: (n) => "You're number " + n + ' in line',
      eta: (m) => (m <= 1 ? 'about a minute' : 'about ' + m + ' minutes'),
      joined: (n) => n + ' joined the chat', chatting: (n) => "You're chatting with " + n, person: 'A person',
      resolved: 'Conversation resolved', backToBot: "You're chatting with the assistant",
      nobody: "Nobody's available right now. Leave your email and we'll get back to you.",
      leaveEmail: 'Leave your email', email: 'Your email', emailMsg: 'Anything to add? (optional)', emailSend: 'Send',
      emailThanks: (e) => "Thanks! We'll reply to " + e + '.', badEmail: 'Please enter a valid email address.',
      rate: 'How did we do?', stars: (n) => n + ' out of 5', comment: 'Comment (optional)', submit: 'Submit',
      rated: (n) => 'Thanks! You rated this chat ' + n + ' out of 5.', typing: (w) => w + ' is typing',
      notConnected: "Not connected right now; we'll send it as soon as we're back.", newTab: '(opens in a new tab)',
      humanLater: "We'll ask for a person as soon as we're back online.",
    },
    es: {
      title: 'Soporte', greeting: '¡Hola! Pregúntame lo que quieras. Puedes hablar con una persona cuando quieras.',
      open: 'Abrir chat', close: 'Cerrar chat', unread: (n) => n + (n === 1 ? ' mensaje sin leer' : ' mensajes sin leer'),
      label: 'Mensaje', placeholder: 'Escribe tu mensaje…', send: 'Enviar', hint: 'Intro para enviar, Mayús+Intro para una nueva línea',
      human: 'Hablar con una persona', you: 'Tú', bot: 'Asistente', agent: 'Agente',
      sending: 'Enviando…', failed: 'No enviado.', retry: 'Reintentar', edit: 'Editar', waitingNet: 'Esperando la red…',
      online: 'En línea', connecting: 'Conectando…', offline: 'Sin conexión. Tus mensajes se enviarán al volver.',
      helpful: '¿Te ha sido útil?', yes: 'Sí', no: 'No', thanks: '¡Gracias por tu opinión!',
      queued: 'Esperando a una persona', position: (n) => 'Eres el número ' + n + ' en la cola',
      eta: (m) => (m <= 1 ? 'alrededor de un minuto' : 'unos ' + m + ' minutos'),
      joined: (n) => n + ' se ha unido al chat', chatting: (n) => 'Estás hablando con ' + n, person: 'Una persona',
      resolved: 'Conversación resuelta', backToBot: 'Estás hablando con el asistente',
      nobody: 'No hay nadie disponible ahora. Déjanos tu correo y te responderemos.',
      leaveEmail: 'Dejar mi correo', email: 'Tu correo', emailMsg: '¿Algo más? (opcional)', emailSend: 'Enviar',
      emailThanks: (e) => '¡Gracias! Te responderemos en ' + e + '.', badEmail: 'Introduce un correo válido.',
      rate: '¿Qué tal lo hicimos?', stars: (n) => n + ' de 5', comment: 'Comentario (opcional)', submit: 'Enviar',
      rated: (n) => '¡Gracias! Has valorado este chat con ' + n + ' de 5.', typing: (w) => w + ' está escribiendo',
      notConnected: 'Sin conexión; lo enviaremos en cuanto volvamos.', newTab: '(se abre en una pestaña nueva)',
      humanLater: 'Pediremos una persona en cuanto haya conexión.',
    },
    fr: {
      title: 'Assistance', greeting: 'Bonjour ! Posez-moi vos questions. Vous pouvez parler à une personne à tout moment.',
      open: 'Ouvrir le chat', close: 'Fermer le chat', unread: (n) => n + (n === 1 ? ' message non lu' : ' messages non lus'),
      label: 'Message', placeholder: 'Écrivez votre message…', send: 'Envoyer', hint: 'Entrée pour envoyer, Maj+Entrée pour un saut de ligne',
      human: 'Parler à une personne', you: 'Vous', bot: 'Assistant', agent: 'Conseiller',
      sending: 'Envoi…', failed: 'Non envoyé.', retry: 'Réessayer', edit: 'Modifier', waitingNet: 'En attente du réseau…',
      online: 'En ligne', connecting: 'Connexion…', offline: 'Hors ligne. Vos messages partiront au retour du réseau.',
      helpful: 'Cette réponse vous a-t-elle aidé ?', yes: 'Oui', no: 'Non', thanks: 'Merci pour votre avis !',
      queued: 'En attente d’une personne', position: (n) => 'Vous êtes numéro ' + n + ' dans la file',
      eta: (m) => (m <= 1 ? 'environ une minute' : 'environ ' + m + ' minutes'),
      joined: (n) => n + ' a rejoint la conversation', chatting: (n) => 'Vous discutez avec ' + n, person: 'Une personne',
      resolved: 'Conversation résolue', backToBot: 'Vous discutez avec l’assistant',
      nobody: 'Personne n’est disponible. Laissez votre e-mail, nous vous répondrons.',
      leaveEmail: 'Laisser mon e-mail', email: 'Votre e-mail', emailMsg: 'Autre chose ? (facultatif)', emailSend: 'Envoyer',
      emailThanks: (e) => 'Merci ! Nous répondrons à ' + e + '.', badEmail: 'Saisissez une adresse e-mail valide.',
      rate: 'Comment était notre aide ?', stars: (n) => n + ' sur 5', comment: 'Commentaire (facultatif)', submit: 'Envoyer',
      rated: (n) => 'Merci ! Vous avez noté ce chat ' + n + ' sur 5.', typing: (w) => w + ' écrit',
      notConnected: 'Pas de connexion ; ce sera envoyé dès le retour du réseau.', newTab: '(nouvel onglet)',
      humanLater: 'Nous demanderons une personne dès le retour du réseau.',
    },
    de: {
      title: 'Support', greeting: 'Hallo! Fragen Sie mich etwas. Sie können jederzeit mit einem Menschen sprechen.',
      open: 'Chat öffnen', close: 'Chat schließen', unread: (n) => n + (n === 1 ? ' ungelesene Nachricht' : ' ungelesene Nachrichten'),
      label: 'Nachricht', placeholder: 'Nachricht eingeben…', send: 'Senden', hint: 'Enter zum Senden, Umschalt+Enter für eine neue Zeile',
      human: 'Mit einem Menschen sprechen', you: 'Sie', bot: 'Assistent', agent: 'Support',
      sending: 'Wird gesendet…', failed: 'Nicht gesendet.', retry: 'Erneut senden', edit: 'Bearbeiten', waitingNet: 'Warte auf das Netz…',
      online: 'Online', connecting: 'Verbinde…', offline: 'Offline. Nachrichten werden gesendet, sobald Sie wieder online sind.',
      helpful: 'War das hilfreich?', yes: 'Ja', no: 'Nein', thanks: 'Danke für Ihr Feedback!',
      queued: 'Warten auf einen Menschen', position: (n) => 'Sie sind Nummer ' + n + ' in der Warteschlange',
      eta: (m) => (m <= 1 ? 'etwa eine Minute' : 'etwa ' + m + ' Minuten'),
      joined: (n) => n + ' ist dem Chat beigetreten', chatting: (n) => 'Sie chatten mit ' + n, person: 'Ein Mensch',
      resolved: 'Gespräch abgeschlossen', backToBot: 'Sie chatten mit dem Assistenten',
      nobody: 'Gerade ist niemand erreichbar. Hinterlassen Sie Ihre E-Mail, wir melden uns.',
      leaveEmail: 'E-Mail hinterlassen', email: 'Ihre E-Mail', emailMsg: 'Noch etwas? (optional)', emailSend: 'Senden',
      emailThanks: (e) => 'Danke! Wir antworten an ' + e + '.', badEmail: 'Bitte eine gültige E-Mail-Adresse eingeben.',
      rate: 'Wie war unsere Hilfe?', stars: (n) => n + ' von 5', comment: 'Kommentar (optional)', submit: 'Absenden',
      rated: (n) => 'Danke! Sie haben diesen Chat mit ' + n + ' von 5 bewertet.', typing: (w) => w + ' schreibt',
      notConnected: 'Gerade keine Verbindung; wir senden es, sobald sie wieder da ist.', newTab: '(öffnet in neuem Tab)',
      humanLater: 'Wir fragen nach einem Menschen, sobald die Verbindung wieder da ist.',
    },
  };
  const T = STRINGS[lang] || STRINGS.en;
  const t = (key, arg) => {
    const v = key in T ? T[key] : STRINGS.en[key];
    return typeof v === 'function' ? v(arg) : v;
  };
  const cfg = {
    title: data.title || t('title'),
    greeting: data.greeting != null ? data.greeting : t('greeting'),
    position: data.position === 'left' ? 'left' : 'right',
    color: /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(data.color || '') ? data.color : '#0b4f5c',
  };

  // ---- Colours: readable text on the brand colour, and a brand "ink" readable on white ---------
  const rgb = (hex) => {
    let h = hex.slice(1);
    if (h.length === 3) h = h.replace(/./g, '$&$&');
    const n = parseInt(h, 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  };
  const luminance = (c) => {
    const [r, g, b] = c.map((v) => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (a, b) => {
    const x = luminance(a), y = luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const mix = (a, b, k) => a.map((v, i) => Math.round(v + (b[i] - v) * k));
  const css = (c) => 'rgb(' + c.join(',') + ')';
  const WHITE = [255, 255, 255], DARK = [24, 32, 36], BLACK = [0, 0, 0];
  const darken = (c, target) => {
    for (let i = 0; i < 12 && contrast(c, WHITE) < target; i++) c = mix(c, BLACK, 0.15);
    return c;
  };
  let brand = rgb(cfg.color);
  let onBrand = contrast(brand, WHITE) >= contrast(brand, DARK) ? WHITE : DARK;
  if (contrast(brand, onBrand) < 4.5) { brand = darken(brand, 4.5); onBrand = WHITE; }
  const ink = darken(rgb(cfg.color), 4.5);

  // ---- Storage (may be unavailable, e.g. some private modes: the widget then works without it) --
  const KEY = 'frontdesk:' + base.host + ':';
  const load = (k) => { try { return localStorage.getItem(KEY + k); } catch (e) { return null; } };
  const save = (k, v) => { try { localStorage.setItem(KEY + k, v); } catch (e) { /* no persistence */ } };
  const loadJSON = (k, fallback) => {
    try { const v = JSON.parse(load(k)); return v && typeof v === 'object' ? v : fallback; } catch (e) { return fallback; }
  };
  const loadNumber = (k) => { const n = Number(load(k)); return Number.isFinite(n) && n > 0 ? n : 0; };
  const newId = () => (crypto && crypto.randomUUID ? crypto.randomUUID()
    : 'c-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 12));

  const HISTORY_MAX = 300, TYPING_EVERY_MS = 3000, TYPING_IDLE_MS = 2000;
  const BACKOFF_MIN_MS = 500, BACKOFF_MAX_MS = 15000, SILENCE_MS = 15000, PROBE_EVERY_MS = 30000;
  const WELCOME_WAIT_MAX_MS = 120000;
  const AWAIT_SENDS = 5;

  // ---- State -------------------------------------------------------------------------------------
  let ws = null;             // the current socket (open or connecting), or null
  let ready = false;         // `welcome` received on the current socket
  let attempt = 0, retryTimer = 0, watchdog = 0;
  let probing = false;       // a `ping` went out on the current socket and nothing came back yet
  // How long an open connection may take to bring its welcome: doubled each time one did not come
  // in time (a page of missed frames takes a slow phone longer than SILENCE_MS), up to the max.
  let welcomeWait = SILENCE_MS;
  let identityRefused = false; // the server refused data-user-hash: connect without it
  let lastSeq = loadNumber('seq');
  // The conversation this tab was last welcomed into: a message records it with the `lastSeq` it
  // was written after (`conv`, `seenSeq`) and sends that number as `seen` while the tab is still
  // in that conversation (0 otherwise), so the server looks for an earlier copy of a re-sent
  // message only among the frames after it.
  let convId = null;
  const storedPending = loadJSON('pending', []);
  /** @type {{id: string, text: string, failed: boolean, tries: number, seenSeq: number, conv: string|null, choice?: object}[]} messages not yet acknowledged */
  let pending = (Array.isArray(storedPending) ? storedPending : [])
    .filter((p) => p && typeof p.id === 'string' && typeof p.text === 'string')
    .map((p) => {
      const kept = { id: p.id, text: p.text, failed: !!p.failed, tries: 0, seenSeq: 0, conv: null };
      if (typeof p.seenSeq === 'number' && typeof p.conv === 'string') Object.assign(kept, { seenSeq: p.seenSeq, conv: p.conv });
      if (p.choice && typeof p.choice === 'object' && typeof p.choice.seq === 'number') kept.choice = p.choice;
      return kept;
    });
  let history = loadJSON('history', []);
  if (!Array.isArray(history)) history = [];
  let unread = loadNumber('unread');
  let isOpen = load('open') === '1' || data.open === 'true';
  let convState = 'bot', agentName = '', queueInfo = {}, nobodyAvailable = false;
  // Frames other than messages that wait for their answer (`request_human`, `rate`, `leave_email`,
  // `feedback`), by what answers them: sent again after each `welcome` until it comes, so one
  // written into a connection that was dying is not lost. The server takes each twice safely.
  const awaiting = new Map();
  const seen = new Set();       // sequence numbers already shown
  const bubbles = new Map();    // client_id -> customer message node
  const announced = new Set();  // agents whose arrival was shown
  let typingSentAt = 0, typingStopTimer = 0, typingHideTimer = 0;

  // A choice button pressed offline keeps its choice through a reload: sent as plain text it would
  // be answered as a new question.
  //
  // Other tabs of the site share the list: each writes its own messages into it and leaves the
  // others' as they are, taking out only what it saw stored or took back (a tab that wrote the
  // list whole would drop another tab's unacknowledged messages, lost when that tab is closed or
  // discarded).
  const settled = new Set(); // client ids of messages this tab saw stored, or took back to edit: out of the shared list
  const written = new Set(); // client ids of the messages written in this tab (not loaded from the list)
  const sharedPending = () => { const l = loadJSON('pending', []); return Array.isArray(l) ? l : []; };
  // Messages taken back to edit in any tab (the last 50): no tab keeps or sends them again.
  const withdrawn = () => { const l = loadJSON('withdrawn', []); return new Set(Array.isArray(l) ? l : []); };
  // Two tabs' copies of one message: the lower `seen` wins, so a copy a tab zeroed (the server's
  // log went back) is not raised again by another tab's older copy. Lowers `to` (and this tab's
  // own entry of that message) from `from`.
  const lowerSeen = (to, from) => {
    const low = !to.conv || !from.conv || to.conv !== from.conv ? { seenSeq: 0, conv: null }
      : { seenSeq: Math.min(to.seenSeq, from.seenSeq), conv: to.conv };
    Object.assign(to, low);
    const held = pending.find((p) => p.id === to.id);
    if (held && held !== to) Object.assign(held, low);
  };
  const savePending = () => {
    const gone = withdrawn();
    const mine = new Map(pending.filter((p) => !gone.has(p.id))
      .map((p) => [p.id, { id: p.id, text: p.text, failed: p.failed, choice: p.choice, seenSeq: p.seenSeq, conv: p.conv }]));
    const list = [];
    for (const p of sharedPending()) {
      if (!p || typeof p.id !== 'string' || settled.has(p.id) || gone.has(p.id)) continue;
      const own = mine.get(p.id);
      if (own) lowerSeen(own, p);
      list.push(own || p);
      mine.delete(p.id);
    }
    save('pending', JSON.stringify([...list, ...mine.values()]));
  };
  const saveHistory = () => { history = history.slice(-HISTORY_MAX); save('history', JSON.stringify(history)); };
  // Saved once per batch of frames rather than once per frame: a resume can bring hundreds of
  // them, and writing the whole history each time made that quadratic. The microtask runs before
  // the page can do anything else (unload included), so nothing shown is left unsaved.
  let historySaveQueued = false;
  const remember = (f) => {
    history.push(f);
    if (historySaveQueued) return;
    historySaveQueued = true;
    queueMicrotask(() => { historySaveQueued = false; saveHistory(); });
  };
  const setLastSeq = (n) => { lastSeq = n; save('seq', String(n)); };
  const findPending = (id) => pending.find((p) => p.id === id);

  // ---- DOM helpers -----------------------------------------------------------------------------
  const h = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = String(text);
    return n;
  };
  const btn = (label, cls, onClick) => {
    const b = h('button', cls, label);
    b.type = 'button';
    if (onClick) b.addEventListener('click', onClick);
    return b;
  };
  const ICONS = {
    chat: 'M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.6.5-1.3.1-1.3-.6V16A2.5 2.5 0 0 1 4 13.5z',
    close: 'M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z',
    down: 'M7.4 8.6 12 13.2l4.6-4.6L18 10l-6 6-6-6z',
    send: 'M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z',
    doc: 'M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5zM8 13h8v-1.5H8zm0 4h8v-1.5H8z',
    person: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm0 2c-3.3 0-8 1.7-8 5v1h16v-1c0-3.3-4.7-5-8-5z',
    clock: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 10.4 3.5 2.1-.8 1.3L11.5 13V7h1.5z',
    up: 'M2 21h4V9H2zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6c-.4.4-.6.9-.6 1.4v10c0 1.1.9 2 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7z',
    star: 'M12 17.3 18.2 21l-1.6-7L22 9.2l-7.2-.6L12 2 9.2 8.6 2 9.2 7.5 14l-1.7 7z',
  };
  const icon = (name) => {
    const NS = 'http://www.w3.org/2000/svg';
    const s = document.createElementNS(NS, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('focusable', 'false');
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', ICONS[name]);
    p.setAttribute('fill', 'currentColor');
    s.appendChild(p);
    return s;
  };

  // Only http(s) URLs become links; relative ones resolve against `relativeTo` (the server, or the
  // article an answer came from). Returns the absolute URL or null.
  const safeUrl = (url, relativeTo) => {
    if (typeof url !== 'string' || !url.trim()) return null;
    try {
      const u = new URL(url.trim(), relativeTo || base);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) { return null; }
  };
  const link = (href) => {
    const a = h('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    return a;
  };

  // ---- Safe markdown subset: paragraphs, line breaks, **bold**, *italic*, `code`, lists, links ----
  const LIST_ITEM = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/;
  const HEADING = /^\s*#{1,6}\s+(.*)$/;
  const INLINE = /`([^`\n]+)`|\*\*(.+?)\*\*|\*([^*\s](?:[^*\n]*[^*\s])?)\*|\[([^\]\n]+)\]\(\s*((?:[^()\s]|\([^()\s]*\))+)(?:\s+"[^"\n]*")?\s*\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;
  function inline(parent, text, linkBase, inLink) {
    const re = new RegExp(INLINE.source, 'g');
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.append(text.slice(last, m.index));
      if (m[1] != null) {
        parent.append(h('code', null, m[1]));
      } else if (m[2] != null || m[3] != null) {
        const el = h(m[2] != null ? 'strong' : 'em');
        inline(el, m[2] != null ? m[2] : m[3], linkBase, inLink);
        parent.append(el);
      } else if (m[4] != null) {
        const href = !inLink && safeUrl(m[5], linkBase);
        if (href) {
          const a = link(href);
          inline(a, m[4], linkBase, true);
          parent.append(a);
        } else inline(parent, m[4], linkBase, inLink);
      } else {
        const href = !inLink && safeUrl(m[6]);
        if (href) {
          const a = link(href);
          a.textContent = m[6];
          parent.append(a);
        } else parent.append(m[6]);
      }
      last = re.lastIndex;
    }
    if (last < text.length) parent.append(text.slice(last));
  }
  function markdown(src, linkBase) {
    const frag = document.createDocumentFragment();
    const lines = String(src).replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) { i++; continue; }
      const item = LIST_ITEM.exec(line);
      if (item) {
        const ordered = /\d/.test(item[1]);
        const list = h(ordered ? 'ol' : 'ul');
        if (ordered && parseInt(item[1], 10) > 1) list.start = parseInt(item[1], 10);
        while (i < lines.length) {
          const m = LIST_ITEM.exec(lines[i]);
          if (m && /\d/.test(m[1]) === ordered) {
            const li = h('li');
            inline(li, m[2], linkBase);
            list.append(li);
          } else if (!m && lines[i].trim() && /^\s{2,}/.test(lines[i]) && list.lastChild) {
            list.lastChild.append(' ');
            inline(list.lastChild, lines[i].trim(), linkBase);
          } else break;
          i++;
        }
        frag.append(list);
        continue;
      }
      const p = h('p');
      const heading = HEADING.exec(line);
      if (heading) {
        const s = h('strong');
        inline(s, heading[1], linkBase);
        p.append(s);
        i++;
      } else {
        for (let first = true; i < lines.length && lines[i].trim() && !LIST_ITEM.test(lines[i]) && !HEADING.test(lines[i]); i++) {
          if (!first) p.append(h('br'));
          inline(p, lines[i].trim().replace(/^>\s?/, ''), linkBase);
          first = false;
        }
      }
      frag.append(p);
    }
    return frag;
  }

  // ---- Styles ------------------------------------------------------------------------------------
  const STYLE = `
:host{all:initial!important;display:block!important;position:static!important;visibility:visible!important;opacity:1!important}
*,*::before,*::after{box-sizing:border-box}
.fd{--b:${css(brand)};--bt:${css(onBrand)};--bi:${css(ink)};--bl:${css(mix(rgb(cfg.color), WHITE, 0.9))};--mu:#56626b;--ln:#e3e6e9;
position:fixed;bottom:20px;right:20px;z-index:2147483000;display:flex;flex-direction:column;align-items:flex-end;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1b2327;text-align:left;-webkit-font-smoothing:antialiased}
.fd.left{right:auto;left:20px;align-items:flex-start}
button,textarea,input{font:inherit;color:inherit;margin:0}
button{cursor:pointer}
svg{width:20px;height:20px;flex:none}
:focus-visible{outline:3px solid var(--bi);outline-offset:2px}
.vh{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;margin:-1px;padding:0;border:0}
.launcher{position:relative;width:60px;height:60px;border-radius:50%;border:0;background:var(--b);color:var(--bt);display:grid;place-items:center;
box-shadow:0 6px 18px rgba(0,0,0,.24);transition:transform .15s}
.launcher:hover{transform:scale(1.05)}
.launcher svg{width:28px;height:28px}
.badge{position:absolute;top:-3px;right:-3px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#c5221f;color:#fff;
font-size:12px;font-weight:700;line-height:18px;text-align:center;border:2px solid #fff}
.badge[hidden],.panel[hidden],[hidden]{display:none!important}
.panel{width:380px;height:min(640px,calc(100vh - 120px));margin-bottom:16px;display:flex;flex-direction:column;background:#fff;border-radius:18px;
overflow:hidden;box-shadow:0 16px 48px rgba(0,0,0,.22),0 2px 6px rgba(0,0,0,.08);animation:rise .18s ease-out}
@keyframes rise{from{opacity:0;transform:translateY(12px)}}
.head{background:var(--b);color:var(--bt);padding:14px 12px 14px 16px;display:flex;align-items:center;gap:12px}
.avatar{width:40px;height:40px;border-radius:50%;background:rgba(255,255,255,.18);display:grid;place-items:center;flex:none}
.avatar svg{width:22px;height:22px}
.hd{min-width:0;flex:1}
.title{margin:0;font-size:16px;font-weight:650;line-height:1.25}
.sub{margin:2px 0 0;font-size:12.5px;opacity:.92;display:flex;align-items:center;gap:6px}
.dot{width:8px;height:8px;border-radius:50%;background:#b0b6ba;flex:none;box-shadow:0 0 0 2px rgba(255,255,255,.35)}
.dot.ok{background:#3ccf6e}.dot.wait{background:#ffb020}
.icon{width:40px;height:40px;border-radius:50%;border:0;background:transparent;color:inherit;display:grid;place-items:center;flex:none}
.icon:hover{background:rgba(255,255,255,.16)}
.banner{display:flex;gap:10px;align-items:flex-start;padding:10px 16px;background:var(--bl);color:#1b2327;font-size:13.5px;border-bottom:1px solid var(--ln)}
.banner svg{color:var(--bi);margin-top:1px}
.banner b{display:block;font-weight:650}
.banner .chip{margin-top:6px}
.log{flex:1;overflow-y:auto;overscroll-behavior:contain;padding:16px 14px;display:flex;flex-direction:column;gap:12px;background:#f6f7f8}
.msg{display:flex;flex-direction:column;align-items:flex-start;gap:4px;max-width:88%}
.msg.customer{align-self:flex-end;align-items:flex-end}
.who{font-size:12px;color:var(--mu);padding:0 6px}
.bubble{padding:10px 14px;border-radius:18px;border-bottom-left-radius:6px;background:#fff;border:1px solid var(--ln);overflow-wrap:anywhere;max-width:100%}
.customer .bubble{background:var(--b);color:var(--bt);border-color:transparent;border-radius:18px;border-bottom-right-radius:6px;white-space:pre-wrap}
.agent .bubble{white-space:pre-wrap;background:#fffaf2;border-color:#f0e2c8}
.pending .bubble{opacity:.6}
.failed .bubble{background:#fdecea;color:#7a1b16;border-color:#f2b8b5}
.meta{font-size:11.5px;color:var(--mu);padding:0 6px;display:flex;gap:6px;align-items:center}
.meta svg{width:13px;height:13px}
.linkbtn{border:0;background:none;padding:0;color:#a3261f;font-weight:600;text-decoration:underline;font-size:inherit}
.linkbtn+.linkbtn{margin-left:8px}
.md p{margin:0 0 8px}.md p:last-child{margin-bottom:0}
.md ul,.md ol{margin:4px 0 8px;padding-left:22px}.md li{margin:2px 0}
.md a,.note a{color:var(--bi)}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef0f2;border-radius:4px;padding:1px 4px}
.bubble .sources{margin:10px 0 0;padding:8px 0 0;border-top:1px solid var(--ln);list-style:none;display:grid;gap:4px}
.sources a{display:flex;gap:6px;align-items:flex-start;color:var(--bi);font-weight:600;font-size:13.5px;text-decoration:none}
.sources a:hover{text-decoration:underline}
.sources svg{width:16px;height:16px;margin-top:2px}
.chips{display:flex;flex-wrap:wrap;gap:6px}
.chip{border:1.5px solid var(--bi);color:var(--bi);background:#fff;border-radius:999px;padding:6px 12px;font-size:13.5px;font-weight:600;line-height:1.2}
.chip:hover{background:var(--bl)}
.choices{display:grid;gap:6px;align-self:stretch;width:100%}
.choice{display:grid;gap:2px;text-align:left;border:1.5px solid var(--ln);background:#fff;border-radius:12px;padding:8px 12px;font-size:13.5px;color:#1b2327;line-height:1.3}
.choice b{color:var(--bi);font-weight:650}
.choice .sec{font-weight:600}
.choice .line{color:var(--mu);font-size:12.5px;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
.choice:hover,.choice[aria-pressed=true]{border-color:var(--bi);background:var(--bl)}
.choice.none{padding:6px 12px}
.choice.none b{color:#1b2327;font-weight:600}
.fd[data-state=queued] [data-action=request_human],.fd[data-state=agent] [data-action=request_human]{display:none}
.fb{display:flex;flex-wrap:wrap;align-items:center;gap:6px;font-size:12.5px;color:var(--mu);padding:0 4px}
.fb button{display:inline-flex;gap:4px;align-items:center;border:1px solid var(--ln);background:#fff;border-radius:999px;padding:3px 10px;font-size:12.5px;color:#1b2327}
.fb button:hover{border-color:var(--bi)}
.fb svg{width:14px;height:14px}
.fb .down svg{transform:rotate(180deg)}
.note{align-self:center;max-width:92%;text-align:center;font-size:12.5px;color:var(--mu);display:flex;flex-direction:column;align-items:center;gap:6px}
.note.err{color:#a3261f}
.note.line{flex-direction:row;gap:10px;width:92%}
.note.line::before,.note.line::after{content:"";flex:1;height:1px;background:var(--ln)}
.card{align-self:stretch;background:#fff;border:1px solid var(--ln);border-radius:14px;padding:14px;display:grid;gap:10px}
.card p{margin:0}
.card label{font-size:13px;font-weight:600;display:grid;gap:4px}
.card input,.card textarea{width:100%;border:1px solid #b9c0c5;border-radius:10px;padding:8px 10px;font-size:15px;background:#fff}
.stars{display:flex;gap:4px}
.stars button{border:0;background:none;padding:2px;color:#c3c8cc}
.stars svg{width:30px;height:30px}
.stars button.on{color:#f0a500}
.primary{border:0;border-radius:10px;background:var(--b);color:var(--bt);padding:9px 14px;font-weight:650}
.primary:disabled{opacity:.5;cursor:default}
.typing{display:flex;align-items:center;gap:8px;padding:0 16px 8px;font-size:12.5px;color:var(--mu);background:#f6f7f8}
.dots{display:inline-flex;gap:3px;background:#fff;border:1px solid var(--ln);border-radius:12px;padding:7px 9px}
.dots i{width:6px;height:6px;border-radius:50%;background:#8a949b;animation:blink 1.2s infinite}
.dots i:nth-child(2){animation-delay:.2s}.dots i:nth-child(3){animation-delay:.4s}
@keyframes blink{0%,80%,100%{opacity:.3}40%{opacity:1}}
.composer{display:flex;align-items:flex-end;gap:8px;padding:10px 12px 6px;border-top:1px solid var(--ln);background:#fff}
.composer textarea{flex:1;min-width:0;resize:none;border:1px solid #b9c0c5;border-radius:14px;padding:10px 12px;min-height:44px;max-height:120px;
font-size:16px;line-height:1.4;background:#fff;overflow-y:auto}
.composer textarea:focus{border-color:var(--bi);outline:none;box-shadow:0 0 0 3px var(--bl)}
.sendbtn{width:44px;height:44px;border-radius:50%;border:0;background:var(--b);color:var(--bt);display:grid;place-items:center;flex:none}
.foot{display:flex;align-items:center;justify-content:flex-start;gap:8px;padding:2px 14px 10px;background:#fff;font-size:12px;color:var(--mu)}
.human{display:inline-flex;align-items:center;gap:6px;border:0;background:none;color:var(--bi);font-weight:650;padding:6px 2px;font-size:13px}
.human svg{width:16px;height:16px}
.human:hover{text-decoration:underline}
@media (max-width:480px){
.fd{bottom:16px;right:16px}.fd.left{left:16px}
.panel{position:fixed;inset:0;width:auto;height:auto;margin:0;border-radius:0;animation:none}
.fd.open .launcher{display:none}
.msg{max-width:92%}
}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}
@media (forced-colors:active){.bubble,.chip,.launcher,.card{border:1px solid CanvasText}}
`;

  // ---- Building the widget -----------------------------------------------------------------------
  const el = {};
  function build() {
    const host = document.createElement('frontdesk-chat');
    const root = host.attachShadow({ mode: 'open' });
    try { // a constructed sheet is not an inline style, so a strict CSP on the host page allows it
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      const style = h('style');
      style.textContent = STYLE;
      root.append(style);
    }

    const fd = h('div', 'fd' + (cfg.position === 'left' ? ' left' : ''));
    fd.lang = lang;
    fd.dataset.state = convState;

    const panel = h('section', 'panel');
    panel.id = 'fd-panel';
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-labelledby', 'fd-title');
    panel.hidden = true;

    const head = h('div', 'head');
    const avatar = h('div', 'avatar');
    avatar.append(icon('chat'));
    const hd = h('div', 'hd');
    const title = h('h2', 'title', cfg.title);
    title.id = 'fd-title';
    const sub = h('p', 'sub');
    el.dot = h('span', 'dot');
    el.conn = h('span', null, t('connecting'));
    sub.append(el.dot, el.conn);
    sub.setAttribute('role', 'status');
    hd.append(title, sub);
    el.closeBtn = btn(null, 'icon', () => setOpen(false, true));
    el.closeBtn.setAttribute('aria-label', t('close'));
    el.closeBtn.append(icon('down'));
    head.append(avatar, hd, el.closeBtn);

    el.banner = h('div', 'banner');
    el.banner.setAttribute('role', 'status');
    el.banner.hidden = true;

    el.log = h('div', 'log');
    el.log.setAttribute('role', 'log');
    el.log.setAttribute('aria-live', 'polite');
    el.log.setAttribute('aria-label', cfg.title);
    el.log.tabIndex = 0;

    el.typing = h('div', 'typing');
    el.typing.hidden = true;
    el.typing.setAttribute('aria-live', 'polite');

    const form = h('form', 'composer');
    form.noValidate = true;
    el.input = h('textarea');
    el.input.rows = 1;
    el.input.placeholder = t('placeholder');
    el.input.setAttribute('aria-label', t('label'));
    el.input.setAttribute('aria-describedby', 'fd-hint');
    el.input.setAttribute('enterkeyhint', 'send');
    el.input.maxLength = 4000;
    const send = h('button', 'sendbtn');
    send.type = 'submit';
    send.setAttribute('aria-label', t('send'));
    send.append(icon('send'));
    form.append(el.input, send);

    const foot = h('div', 'foot');
    el.human = btn(null, 'human', requestHuman);
    el.human.dataset.action = 'request_human';
    el.human.append(icon('person'), t('human'));
    const hint = h('span', 'vh', t('hint')); // read with the text box; the placeholder says enough
    hint.id = 'fd-hint';
    foot.append(el.human, hint);

    panel.append(head, el.banner, el.log, el.typing, form, foot);

    el.launcher = btn(null, 'launcher', () => setOpen(!isOpen, true));
    el.launcher.setAttribute('aria-controls', 'fd-panel');
    el.launcherIcon = icon('chat');
    el.badge = h('span', 'badge');
    el.badge.setAttribute('aria-hidden', 'true');
    el.launcher.append(el.launcherIcon, el.badge);

    fd.append(panel, el.launcher);
    root.append(fd);
    Object.assign(el, { host, root, fd, panel, form });

    form.addEventListener('submit', onSubmit);
    el.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) onSubmit(ev);
    });
    el.input.addEventListener('input', onInput);
    panel.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') setOpen(false, true); });
    document.body.appendChild(host);
  }

  function setOpen(open, byUser) {
    isOpen = open;
    save('open', open ? '1' : '0');
    el.panel.hidden = !open;
    el.fd.classList.toggle('open', open);
    el.launcher.setAttribute('aria-expanded', String(open));
    el.launcherIcon.replaceWith((el.launcherIcon = icon(open ? 'close' : 'chat')));
    if (open) {
      unread = 0;
      save('unread', '0');
      scrollDown();
      if (byUser) el.input.focus();
    } else if (byUser) el.launcher.focus();
    updateBadge();
  }
  function updateBadge() {
    el.badge.textContent = unread > 9 ? '9+' : String(unread);
    el.badge.hidden = unread === 0 || isOpen;
    const label = isOpen ? t('close') : t('open') + (unread ? ', ' + t('unread', unread) : '');
    el.launcher.setAttribute('aria-label', label);
  }
  function setConn(text, kind) {
    el.conn.textContent = text;
    el.dot.className = 'dot ' + kind;
  }

  // Nodes in the log are kept in sequence order: `_seq` is the frame's seq, local notes sit after
  // the latest seq, and unacknowledged messages (Infinity) at the end.
  const nearBottom = () => el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 80;
  const scrollDown = () => { el.log.scrollTop = el.log.scrollHeight; };
  function place(node, seq) {
    node._seq = seq;
    if (Number.isFinite(seq) && seq >= 1 && Number.isInteger(seq)) node.dataset.seq = String(seq);
    let ref = null;
    for (let c = el.log.lastElementChild; c && c._seq > seq; c = c.previousElementSibling) ref = c;
    const stick = nearBottom();
    el.log.insertBefore(node, ref);
    if (stick || seq === Infinity) scrollDown();
    return node;
  }
  const note = (text, cls) => place(h('div', 'note' + (cls ? ' ' + cls : ''), text), lastSeq + 0.5);

  function messageNode(kind, author, text, linkBase) {
    const wrap = h('div', 'msg ' + kind);
    if (kind === 'customer') wrap.append(h('span', 'vh', t('you') + ':'));
    else wrap.append(h('span', 'who', author));
    const bubble = h('div', 'bubble');
    if (kind === 'bot') {
      bubble.classList.add('md');
      bubble.append(markdown(text, linkBase));
    } else bubble.textContent = text;
    wrap.append(bubble);
    wrap._bubble = bubble;
    return wrap;
  }
  function greet() {
    el.log.textContent = '';
    if (cfg.greeting) place(messageNode('bot', t('bot'), cfg.greeting), 0);
  }

  // ---- Outgoing ------------------------------------------------------------------------------------
  function sendFrame(obj) {
    if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }
  // Sends `frame` now or after the next `welcome`, and again after each one until `key` is answered
  // (at most AWAIT_SENDS times: one the server never answers must not keep the connection cycling);
  // false if it waits for a connection.
  function request(key, frame) {
    const entry = { frame, sends: 0 };
    awaiting.set(key, entry);
    return sendAwaited(key, entry);
  }
  function sendAwaited(key, entry) {
    if (entry.sends >= AWAIT_SENDS) return answered(key) && false;
    if (!sendFrame(entry.frame)) return false;
    entry.sends++;
    armWatchdog();
    return true;
  }
  const answered = (key) => awaiting.delete(key);
  function transmit(p) {
    if (p.failed) return;
    const seenThere = p.conv !== null && p.conv === convId ? p.seenSeq : 0;
    const frame = { type: 'message', client_id: p.id, seen: seenThere, text: p.text };
    if (p.choice) frame.choice = p.choice; // a choice button: answered with exactly that passage
    if (sendFrame(frame)) armWatchdog();
  }
  function sendMessage(text, choice) {
    text = String(text || '').trim();
    if (!text) return;
    const p = { id: newId(), text, failed: false, tries: 0, seenSeq: lastSeq, conv: convId };
    if (choice) p.choice = choice;
    written.add(p.id);
    pending.push(p);
    savePending();
    showPending(p);
    transmit(p); // when not connected, it goes out after the next `welcome`
  }
  function showPending(p) {
    const node = messageNode('customer', null, p.text);
    bubbles.set(p.id, node);
    place(node, Infinity);
    setBubbleState(p.id, p.failed ? 'failed' : 'pending');
  }
  function setBubbleState(id, st, seq) {
    const node = bubbles.get(id);
    if (!node) return;
    node.dataset.state = st;
    node.classList.toggle('pending', st === 'pending');
    node.classList.toggle('failed', st === 'failed');
    if (node._meta) node._meta.remove();
    node._meta = null;
    if (st === 'pending') {
      node._meta = h('span', 'meta');
      node._meta.append(icon('clock'), ready ? t('sending') : (navigator.onLine === false ? t('waitingNet') : t('sending')));
    } else if (st === 'failed') {
      node._meta = h('span', 'meta', t('failed'));
      node._meta.append(btn(t('retry'), 'linkbtn', () => retry(id)), btn(t('edit'), 'linkbtn', () => edit(id)));
    }
    if (node._meta) node.append(node._meta);
    if (seq != null && node._seq !== seq) {
      node.remove();
      place(node, seq);
    }
  }
  function retry(id) {
    const p = findPending(id);
    if (!p) return;
    p.failed = false;
    savePending();
    setBubbleState(id, 'pending');
    transmit(p);
  }
  // A message refused for good (too long for this server…) goes back into the composer to be
  // changed, and out of the list kept for the next page load: sent again as it was, it would only
  // be refused again.
  function edit(id) {
    const p = findPending(id);
    if (!p) return;
    forget(id);
    save('withdrawn', JSON.stringify([...withdrawn(), id].slice(-50)));
    savePending();
    const typed = el.input.value.trim(); // a message being typed is kept: the text goes after it
    el.input.value = typed ? typed + '\n' + p.text : p.text;
    autosize();
    el.input.focus();
  }
  function forget(id) {
    settled.add(id);
    pending = pending.filter((q) => q.id !== id);
    const node = bubbles.get(id);
    if (node) node.remove();
    bubbles.delete(id);
  }
  function confirmSent(id, seq) {
    settled.add(id);
    pending = pending.filter((p) => p.id !== id);
    savePending();
    setBubbleState(id, 'sent', typeof seq === 'number' ? seq : undefined);
    if (typeof seq === 'number') seen.add(seq);
  }
  function requestHuman() {
    if (!request('human', { type: 'request_human' })) note(t('humanLater')); // asked after the next `welcome`
  }
  function onSubmit(ev) {
    ev.preventDefault();
    const text = el.input.value;
    if (!text.trim()) return;
    el.input.value = '';
    autosize();
    stopTyping();
    sendMessage(text);
  }
  function autosize() {
    el.input.style.height = 'auto';
    el.input.style.height = Math.min(el.input.scrollHeight + 2, 120) + 'px';
  }
  // Typing: "on" at most every 3 s while typing, "off" 2 s after the last keystroke.
  function onInput() {
    autosize();
    const now = Date.now();
    if (now - typingSentAt > TYPING_EVERY_MS && sendFrame({ type: 'typing', on: true })) typingSentAt = now;
    clearTimeout(typingStopTimer);
    typingStopTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }
  function stopTyping() {
    clearTimeout(typingStopTimer);
    if (typingSentAt) sendFrame({ type: 'typing', on: false });
    typingSentAt = 0;
  }

  // ---- Rendering server messages ---------------------------------------------------------------
  function renderSources(bubble, sources) {
    const list = h('ul', 'sources');
    for (const s of sources) {
      if (!s || typeof s !== 'object') continue;
      const label = String(s.title || 'Article') + (s.section ? ' › ' + s.section : '');
      const href = safeUrl(s.url);
      const li = h('li');
      if (href) {
        const a = link(href);
        a.append(icon('doc'), h('span', null, label), h('span', 'vh', ' ' + t('newTab')));
        li.append(a);
      } else li.append(label);
      list.append(li);
    }
    bubble.append(list);
  }
  const isFeedback = (r) => r.action === 'helpful' || r.action === 'not_helpful';
  function feedbackRow(f) {
    const row = h('div', 'fb');
    row.append(h('span', null, t('helpful')));
    for (const [helpful, label, cls] of [[true, t('yes'), 'up'], [false, t('no'), 'down']]) {
      const b = btn(null, cls, () => {
        if (!request('feedback:' + f.seq, { type: 'feedback', seq: f.seq, helpful })) note(t('notConnected'));
        row.replaceWith(thanksRow());
        for (const x of history) if (x.seq === f.seq) x.feedback_given = true; // survives reloads
        saveHistory();
        el.input.focus(); // the clicked button is gone: keep focus somewhere useful
      });
      b.dataset.action = helpful ? 'helpful' : 'not_helpful';
      b.append(icon('up'), label);
      row.append(b);
    }
    return row;
  }
  const thanksRow = () => h('div', 'fb', t('thanks'));
  // "Which of these is it?": one button per article (its title and a line of it), then "None of
  // these". A press sends the label as the customer's message with the choice, which the server
  // answers with exactly that passage; the buttons stay, the pressed one marked.
  const isChoice = (r) => r.action === 'send' && r.choice && typeof r.choice === 'object';
  function choiceList(f, replies, sources) {
    const list = h('div', 'choices');
    list.setAttribute('role', 'group');
    list.setAttribute('aria-label', String(f.text || '').split('\n')[0]);
    let i = 0;
    for (const r of replies) {
      const passage = typeof r.choice.passage === 'string' ? r.choice.passage : null;
      const label = String(r.label || r.text || '');
      // The sources list the offered articles in the order of their buttons.
      const source = passage && sources[i] && typeof sources[i] === 'object' ? sources[i] : null;
      if (passage) i++;
      const b = btn(null, 'choice' + (passage ? '' : ' none'), () => {
        sendMessage(label, { seq: f.seq, passage });
        for (const x of list.children) x.setAttribute('aria-pressed', String(x === b));
        for (const x of history) if (x.seq === f.seq) x.chosen = passage || ''; // survives reloads
        saveHistory();
        el.input.focus();
      });
      b.dataset.action = 'choose';
      if (passage) b.dataset.passage = passage;
      const [title, section] = source && source.title ? [String(source.title), source.section ? String(source.section) : '']
        : label.split(/: (.*)/s);
      b.append(h('b', null, title));
      if (section && section !== title) b.append(h('span', 'sec', section));
      if (r.choice.line) b.append(h('span', 'line', String(r.choice.line)));
      if (typeof f.chosen === 'string') b.setAttribute('aria-pressed', String(f.chosen === (passage || '')));
      list.append(b);
    }
    return list;
  }
  function quickReplies(replies) {
    const row = h('div', 'chips');
    for (const r of replies) {
      if (!['send', 'request_human', 'leave_email'].includes(r.action)) continue; // unknown: skip
      const b = btn(String(r.label || r.text || r.action), 'chip', () => {
        if (r.action === 'request_human') requestHuman();
        else if (r.action === 'leave_email') emailForm();
        else sendMessage(r.text || r.label);
      });
      b.dataset.action = r.action;
      row.append(b);
    }
    return row.childElementCount ? row : null;
  }

  function onMessage(f, cached) {
    if (typeof f.seq === 'number' && seen.has(f.seq)) return;
    const seq = typeof f.seq === 'number' ? f.seq : lastSeq + 0.5;
    if (f.from === 'customer') {
      if (f.client_id && !settled.has(f.client_id)) {
        settled.add(f.client_id); // perhaps written in another tab: stored, out of the shared list
        if (!cached && !findPending(f.client_id) && sharedPending().some((p) => p && p.id === f.client_id)) savePending();
      }
      if (f.client_id && bubbles.has(f.client_id)) {
        confirmSent(f.client_id, f.seq); // our own message coming back (e.g. in `missed`)
      } else {
        const node = place(messageNode('customer', null, String(f.text || '')), seq);
        node.dataset.state = 'sent';
        if (f.client_id) bubbles.set(f.client_id, node);
      }
    } else if (f.from === 'bot' || f.from === 'agent') {
      if (f.from === 'agent' && f.author && !announced.has(f.author)) {
        announced.add(f.author); // the status frame naming the agent was not seen: say it here
        place(h('div', 'note line', t('joined', f.author)), seq - 0.25);
      }
      const sources = Array.isArray(f.sources) ? f.sources : [];
      const linkBase = sources.length ? safeUrl(sources[0].url) || base : base;
      const author = f.from === 'bot' ? t('bot') : String(f.author || t('agent'));
      const replies = (Array.isArray(f.quick_replies) ? f.quick_replies : []).filter((r) => r && typeof r === 'object');
      const choices = typeof f.seq === 'number' ? replies.filter(isChoice) : [];
      // With choice buttons the text's list of options is what the buttons show: its first line.
      const text = String(f.text || '');
      const node = messageNode(f.from, author, choices.length ? text.split('\n')[0] : text, linkBase);
      if (sources.length && !choices.length) renderSources(node._bubble, sources);
      const chips = quickReplies(replies.filter((r) => !isFeedback(r) && !(choices.length && isChoice(r))));
      if (f.from === 'bot' && typeof f.seq === 'number' && !choices.length && (sources.length || replies.some(isFeedback))) {
        node.append(f.feedback_given ? thanksRow() : feedbackRow(f));
      }
      if (choices.length) node.append(choiceList(f, choices, sources));
      if (chips) node.append(chips);
      place(node, seq);
      hideTyping();
    } else {
      const n = h('div', 'note');
      n.append(h('span', null, String(f.text || '')));
      const chips = quickReplies((Array.isArray(f.quick_replies) ? f.quick_replies : []).filter((r) => r && typeof r === 'object'));
      if (chips) n.append(chips);
      place(n, seq);
    }
    if (!cached && f.from !== 'customer') bump();
    accept(f, cached);
  }
  // Remembers a shown sequenced frame, and caches it so a reload can redraw the conversation.
  function accept(f, cached) {
    if (typeof f.seq === 'number') seen.add(f.seq);
    if (!cached) remember(f);
  }
  function bump() {
    if (isOpen && document.visibilityState === 'visible') return;
    unread++;
    save('unread', String(unread));
    updateBadge();
  }

  function onStatus(f, cached) {
    if (typeof f.seq === 'number' && seen.has(f.seq)) return;
    const seq = typeof f.seq === 'number' ? f.seq : lastSeq + 0.5;
    setState(f.state, f);
    if (f.state !== 'bot') answered('human');
    let text = null;
    if (f.state === 'queued') text = t('queued');
    else if (f.state === 'agent') {
      text = f.agent ? t('joined', f.agent) : t('joined', t('person'));
      if (f.agent) announced.add(f.agent);
    } else if (f.state === 'resolved') text = t('resolved');
    else if (f.state === 'bot' && history.some((x) => x.type === 'status' && x.state !== 'bot')) text = t('backToBot');
    if (text) place(h('div', 'note line', text), seq);
    accept(f, cached);
  }
  function setState(state, f) {
    if (typeof state !== 'string') return;
    convState = state;
    el.fd.dataset.state = state;
    if (state === 'queued') {
      if (f && typeof f.queue_position === 'number') queueInfo.position = f.queue_position;
      if (f && typeof f.eta_seconds === 'number') queueInfo.eta = f.eta_seconds;
      if (f && typeof f.agents_available === 'boolean') nobodyAvailable = !f.agents_available;
    } else {
      queueInfo = {};
      nobodyAvailable = false;
    }
    if (state === 'agent' && f && f.agent) agentName = String(f.agent);
    el.human.hidden = state === 'queued' || state === 'agent';
    renderBanner();
  }
  function renderBanner() {
    const b = el.banner;
    b.textContent = '';
    b.hidden = !(convState === 'queued' || (convState === 'agent' && agentName));
    if (b.hidden) return;
    const body = h('div');
    if (convState === 'agent') {
      b.append(icon('person'));
      body.append(h('b', null, t('chatting', agentName)));
    } else if (nobodyAvailable) {
      b.append(icon('clock'));
      body.append(h('b', null, t('nobody')));
      const chip = btn(t('leaveEmail'), 'chip', emailForm);
      body.append(chip);
    } else {
      b.append(icon('clock'));
      body.append(h('b', null, t('queued')));
      const bits = [];
      if (queueInfo.position) bits.push(t('position', queueInfo.position));
      if (typeof queueInfo.eta === 'number') bits.push(t('eta', Math.max(1, Math.round(queueInfo.eta / 60))));
      if (bits.length) body.append(h('span', null, bits.join(' · ')));
    }
    b.append(body);
  }
  function onQueue(f) {
    if (convState !== 'queued') return;
    if (typeof f.queue_position === 'number') queueInfo.position = f.queue_position;
    if (typeof f.eta_seconds === 'number') queueInfo.eta = f.eta_seconds;
    renderBanner();
  }

  // The rating card after an agent resolved the conversation.
  function onCsat(f, cached) {
    if (typeof f.seq === 'number' && seen.has(f.seq)) return;
    const card = h('form', 'card');
    card.noValidate = true;
    if (f.rated) {
      card.append(h('p', null, t('rated', f.rated)));
    } else {
      card.setAttribute('aria-label', t('rate'));
      card.append(h('p', null, String(f.text || t('rate'))));
      let score = 0;
      const stars = h('div', 'stars');
      stars.setAttribute('role', 'group');
      stars.setAttribute('aria-label', t('rate'));
      const submit = h('button', 'primary', t('submit'));
      submit.type = 'submit';
      submit.disabled = true;
      for (let n = 1; n <= 5; n++) {
        const s = btn(null, null, () => {
          score = n;
          [...stars.children].forEach((c, i) => {
            c.classList.toggle('on', i < n);
            c.setAttribute('aria-pressed', String(i === n - 1));
          });
          submit.disabled = false;
        });
        s.setAttribute('aria-label', t('stars', n));
        s.setAttribute('aria-pressed', 'false');
        s.append(icon('star'));
        stars.append(s);
      }
      const label = h('label', null, t('comment'));
      const comment = h('textarea');
      comment.rows = 2;
      comment.maxLength = 2000;
      label.append(comment);
      card.append(stars, label, submit);
      card.addEventListener('submit', (ev) => {
        ev.preventDefault();
        if (!score) return;
        const frame = { type: 'rate', score };
        if (comment.value.trim()) frame.comment = comment.value.trim();
        if (!request('rate', frame)) note(t('notConnected'));
        submit.disabled = true;
        pendingRating = { card, score, seq: f.seq };
      });
    }
    place(card, typeof f.seq === 'number' ? f.seq : lastSeq + 0.5);
    if (!cached) bump();
    accept(f, cached);
  }
  let pendingRating = null;
  function onRateAck(f) {
    answered('rate');
    if (!pendingRating) return;
    const score = typeof f.score === 'number' ? f.score : pendingRating.score;
    pendingRating.card.replaceChildren(h('p', null, t('rated', score)));
    for (const x of history) if (x.seq === pendingRating.seq) x.rated = score;
    saveHistory();
    pendingRating = null;
  }

  // The "leave your email" form, when nobody can take the chat now.
  let emailCard = null;
  function emailForm() {
    if (emailCard && emailCard.isConnected) {
      emailCard.querySelector('input').focus();
      return;
    }
    const card = (emailCard = h('form', 'card'));
    card.noValidate = true;
    card.append(h('p', null, t('nobody')));
    const l1 = h('label', null, t('email'));
    const email = h('input');
    email.type = 'email';
    email.required = true;
    email.autocomplete = 'email';
    l1.append(email);
    const l2 = h('label', null, t('emailMsg'));
    const msg = h('textarea');
    msg.rows = 2;
    l2.append(msg);
    const err = h('p', 'note err');
    err.setAttribute('role', 'alert');
    const submit = h('button', 'primary', t('emailSend'));
    submit.type = 'submit';
    card.append(l1, l2, err, submit);
    card.addEventListener('submit', (ev) => {
      ev.preventDefault();
      err.textContent = '';
      if (!email.value.trim() || !email.checkValidity()) {
        err.textContent = t('badEmail');
        return email.focus();
      }
      const frame = { type: 'leave_email', email: email.value.trim() };
      if (msg.value.trim()) frame.message = msg.value.trim();
      if (!request('email', frame)) err.textContent = t('notConnected');
      card._email = frame.email;
      submit.disabled = true;
    });
    place(card, lastSeq + 0.5);
    email.focus();
  }
  function onEmailAck() {
    answered('email');
    if (!emailCard) return;
    emailCard.replaceChildren(h('p', null, t('emailThanks', emailCard._email || '')));
    emailCard = null;
  }

  function onTyping(f) {
    if (f.from !== 'bot' && f.from !== 'agent') return;
    if (!f.on) return hideTyping();
    clearTimeout(typingHideTimer);
    const who = f.from === 'bot' ? t('bot') : agentName || t('agent');
    const dots = h('span', 'dots');
    dots.setAttribute('aria-hidden', 'true');
    dots.append(h('i'), h('i'), h('i'));
    el.typing.replaceChildren(dots, h('span', null, t('typing', who) + '…'));
    el.typing.hidden = false;
    const stick = nearBottom();
    if (stick) scrollDown();
    typingHideTimer = setTimeout(hideTyping, 15000); // in case "off" never comes
  }
  function hideTyping() {
    clearTimeout(typingHideTimer);
    el.typing.hidden = true;
    el.typing.textContent = '';
  }

  function onError(f) {
    if (f.code === 'identity_refused') {
      // The site's signature is wrong (its backend's secret differs from the server's): the
      // customer still gets a chat, as an unverified visitor, and the site's developer a warning.
      if (!identityRefused) console.warn('frontdesk: ' + (f.message || 'data-user-hash was refused') + '; chatting without the identity');
      identityRefused = true;
      attempt = 0;
      if (ws) drop(ws);
      return;
    }
    const p = f.client_id && findPending(f.client_id);
    if (p && (f.code === 'rate_limited' || f.code === 'unavailable')) {
      p.tries++; // the server asks to send it again later: do so, backing off
      setTimeout(() => { if (findPending(p.id)) transmit(p); }, Math.min(10000, 1000 * Math.pow(2, p.tries - 1)));
      return;
    }
    if (f.code === 'already_rated') return onRateAck({}); // the rating sent again had arrived
    if (f.code === 'not_resolved' || f.code === 'bad_rating') answered('rate');
    if (f.code === 'queue_full') answered('human');
    if (f.code === 'bad_email') answered('email');
    if (!f.client_id && awaiting.size) {
      // A refusal of one of them (a rate limit, the server unavailable…): sending it again on
      // the next connection would only be refused again, so it is not awaited any more; the
      // forms can be sent again by hand.
      for (const [key, entry] of [...awaiting]) if (entry.sends > 0) answered(key);
      if (emailCard) emailCard.querySelector('button[type=submit]').disabled = false;
      if (pendingRating) {
        const submit = pendingRating.card.querySelector('button[type=submit]');
        if (submit) submit.disabled = false;
        pendingRating = null;
      }
    }
    if (f.code === 'bad_email' && emailCard) {
      const err = emailCard.querySelector('[role=alert]');
      err.textContent = f.message || t('badEmail');
      emailCard.querySelector('button[type=submit]').disabled = false;
      return;
    }
    note(String(f.message || f.code || 'Something went wrong'), 'err');
    if (p) {
      p.failed = true; // refused for good (too long, empty…): the customer can edit or retry
      savePending();
      setBubbleState(p.id, 'failed');
    }
  }
  function onAck(f) {
    const p = findPending(f.client_id);
    if (!p) return;
    if (typeof f.seq === 'number' && !seen.has(f.seq)) {
      remember({ type: 'message', seq: f.seq, from: 'customer', text: p.text, client_id: p.id });
    }
    confirmSent(p.id, f.seq);
  }
  function onWelcome(f, sock) {
    const other = load('session');
    if (!sock.session && f.resumed === false && other && other !== f.session && lastSeq === 0 && !history.length) {
      // Another tab of the site started a conversation while this one waited for its welcome:
      // join that one (this new one stays empty), or the customer's tabs would each hold a
      // conversation of their own and a reload would show only the last one saved.
      attempt = 0;
      return drop(sock);
    }
    if (typeof f.session === 'string' && f.session) save('session', f.session);
    if (f.resumed === false || (typeof f.last_seq === 'number' && f.last_seq < lastSeq && f.resumed)) {
      resetTranscript();
      if (f.resumed) return drop(sock); // the server knows less than we showed: ask for everything
    }
    convId = typeof f.conversation_id === 'string' && f.conversation_id ? f.conversation_id : null;
    if (typeof f.state === 'string') setState(f.state, {});
    for (const m of Array.isArray(f.missed) ? f.missed : []) handleFrame(m, false);
    ready = true;
    attempt = 0;
    setConn(t('online'), 'ok');
    for (const p of pending) {
      setBubbleState(p.id, p.failed ? 'failed' : 'pending');
      transmit(p);
    }
    if (convState !== 'bot') answered('human'); // it reached the server before the drop
    for (const [key, entry] of [...awaiting]) sendAwaited(key, entry);
  }
  function resetTranscript() {
    seen.clear();
    bubbles.clear();
    announced.clear();
    history = [];
    saveHistory();
    setLastSeq(0);
    // The numbers they were written after are not this log's (a new conversation, or one the
    // server has fewer frames of): from now on they are sent with `seen` 0, by every tab.
    for (const p of pending) Object.assign(p, { seenSeq: 0, conv: null });
    if (pending.length) savePending();
    greet();
    pending.forEach(showPending);
  }

  const handlers = {
    message: onMessage, status: onStatus, csat_request: onCsat, ack: onAck, error: onError, typing: onTyping,
    queue: onQueue, rate_ack: onRateAck, email_ack: onEmailAck, feedback_ack: (f) => answered('feedback:' + f.seq), pong() {},
  };
  function handleFrame(f, cached) {
    if (!f || typeof f !== 'object' || !Object.prototype.hasOwnProperty.call(handlers, f.type)) return; // tolerate new frames
    handlers[f.type](f, cached);
    if (typeof f.seq === 'number' && f.seq > lastSeq) setLastSeq(f.seq);
  }

  // ---- Connection --------------------------------------------------------------------------------
  function wsUrl() {
    const u = new URL('ws/chat', base);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  }
  function connect() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (ws) return; // open or connecting already
    if (navigator.onLine === false) offline();
    else setConn(t('connecting'), 'wait');
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      return scheduleReconnect();
    }
    ws = sock;
    armWatchdog();
    sock.onopen = () => {
      // The page without its fragment, and not beyond what the server keeps: a hello over 16 KiB
      // would be cut off before it is read, on every attempt.
      const visitor = { page: location.href.split('#')[0].slice(0, 2000), locale: data.lang || navigator.language };
      if (data.name) visitor.name = data.name;
      if (data.email) visitor.email = data.email;
      // A logged-in customer's identity, signed by the operator's backend (data-user-id,
      // data-user-hash): the same history on every device, and earlier conversations linked.
      // With data-user-hash-expires (Unix seconds) the signature covers its expiry too.
      const expires = /^\d+$/.test(data.userHashExpires || '') ? Number(data.userHashExpires) : undefined;
      const identity = data.userHash && !identityRefused ? { user_id: data.userId || undefined, user_hash: data.userHash, user_hash_expires: expires } : {};
      if (ws === sock) { clearTimeout(watchdog); watchdog = 0; armWatchdog(); } // now the welcome's wait
      sock.session = load('session') || undefined;
      sock.send(JSON.stringify({ type: 'hello', protocol: 1, session: sock.session, last_seq: lastSeq, visitor, ...identity }));
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      let f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && f.type === 'welcome') onWelcome(f, sock);
      else handleFrame(f, false);
      if (ws === sock) { // alive: wait again only if something is still unanswered
        probing = false;
        clearTimeout(watchdog);
        watchdog = 0;
        if (unanswered()) armWatchdog();
      }
    };
    sock.onclose = () => { if (ws === sock) drop(sock); };
  }
  // No frame for a while although something is unanswered (no `welcome`, no `ack`): the connection
  // is probably dead without the browser noticing (a phone changing networks). Start a new one;
  // unacknowledged messages are re-sent with the same client ids, so nothing is stored twice.
  function armWatchdog() {
    if (watchdog) return;
    const sock = ws;
    const open = () => sock && sock.readyState === WebSocket.OPEN;
    watchdog = setTimeout(() => {
      watchdog = 0;
      if (ws !== sock || !sock || !unanswered()) return;
      if (!ready && open()) welcomeWait = Math.min(WELCOME_WAIT_MAX_MS, welcomeWait * 2);
      drop(sock);
    }, !ready && open() ? welcomeWait : SILENCE_MS);
  }
  function unanswered() {
    return !ready || probing || awaiting.size > 0 || pending.some((p) => !p.failed);
  }
  // With nothing unanswered a dead connection shows nothing either: a customer waiting for a
  // person would see "online" and never get the reply. So while the page is in view the widget
  // asks now and then (and whenever the page comes back into view or the network changes) with a
  // `ping`; no frame within SILENCE_MS and the watchdog starts a new connection, which resumes.
  function probe() {
    if (!ws || !ready || probing || document.visibilityState === 'hidden') return;
    if (!sendFrame({ type: 'ping', probe: true })) return;
    probing = true;
    armWatchdog();
  }
  function drop(sock) {
    if (ws === sock) {
      ws = null;
      ready = false;
      probing = false;
      clearTimeout(watchdog);
      watchdog = 0;
      hideTyping();
      for (const p of pending) setBubbleState(p.id, p.failed ? 'failed' : 'pending');
    }
    try { sock.close(); } catch (e) { /* already closed */ }
    scheduleReconnect();
  }
  // Exponential backoff from 0.5 s doubling to 15 s, with jitter (50–100 % of each step).
  function scheduleReconnect() {
    if (retryTimer) return;
    const step = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt++));
    if (navigator.onLine === false) offline();
    else setConn(t('connecting'), 'wait');
    retryTimer = setTimeout(connect, step / 2 + Math.random() * step / 2);
  }
  function offline() { setConn(t('offline'), ''); }
  function reconnectNow() {
    if (ws) return probe(); // it may be dead without the browser knowing: ask
    attempt = 0;
    connect();
  }
  // The socket will not carry anything now: drop it, so messages show as waiting and are re-sent on
  // the connection that `online` (or the backoff) starts.
  function goneOffline() {
    if (ws) drop(ws);
    offline();
  }

  // ---- Start -----------------------------------------------------------------------------------
  function init() {
    build();
    greet();
    for (const f of history) handleFrame(f, true); // redraw the conversation after a reload
    const gone = withdrawn(); // taken from the shared list, and stored or taken back since
    pending = pending.filter((p) => !settled.has(p.id) && !gone.has(p.id));
    pending.forEach(showPending);
    setOpen(isOpen, false);
    // Another tab wrote the shared list at the same moment as this one and its write won: put
    // back the unacknowledged messages written in this tab (only those, and only when some are
    // missing, so no two tabs answer each other's writes for ever). A message taken back to edit
    // in another tab leaves this one too.
    window.addEventListener('storage', (e) => {
      if (e.key === KEY + 'withdrawn') {
        for (const id of withdrawn()) if (findPending(id)) forget(id);
        return;
      }
      if (e.key !== KEY + 'pending') return;
      for (const p of sharedPending()) {
        const held = p && typeof p.id === 'string' && findPending(p.id);
        if (held) lowerSeen(held, p);
      }
      const shared = new Set(sharedPending().map((p) => p && p.id));
      if (pending.some((p) => written.has(p.id) && !shared.has(p.id))) savePending();
    });
    window.addEventListener('online', reconnectNow);
    window.addEventListener('offline', goneOffline);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        reconnectNow();
        if (isOpen) { unread = 0; save('unread', '0'); updateBadge(); }
      }
    });
    setInterval(probe, PROBE_EVERY_MS);
    connect();
  }
  window.Frontdesk = {
    version: VERSION,
    open: () => el.fd && setOpen(true, true),
    close: () => el.fd && setOpen(false, false),
    toggle: () => el.fd && setOpen(!isOpen, true),
  };
  if (document.body) init();
  else document.addEventListener('DOMContentLoaded', init);
})();
