/*! frontdesk console, the editors' view: what the bot could not answer, what it would answer now,
 * and knowledge-base files that failed to load (docs/PROTOCOL.md, "Editors").
 *
 * Plain JS, no dependencies; loaded after console.js and built on its helpers and session
 * (`window.FrontdeskConsole`). State lives in `E`; `render*` functions rebuild a part of the view
 * from it. Customers' questions, the bot's answers and file names are set as text only (the `h`
 * helper), never as markup.
 */
(function () {
  'use strict';

  const C = window.FrontdeskConsole;
  if (!C) return;
  const { h, api, icon, safeUrl, meter } = C;

  const VIEW_KEY = 'frontdesk.console.view';
  const RANGE_KEY = 'frontdesk.console.gaps-range';
  const PROBLEMS_EVERY_MS = 5000; // an editor who just saved a file wants to know soon
  const GAPS_EVERY_MS = 30000;
  const DAY_MS = 86400000;

  /** What happened to a question, in an editor's words. */
  const OUTCOMES = {
    dont_know: { label: 'Didn’t know', hint: 'No article was close enough to answer.' },
    clarify: { label: 'Asked which article', hint: 'Two articles fit about equally; the bot asked which one was meant.' },
    unhelpful: { label: 'Marked not helpful', hint: 'The bot answered, and the customer said it did not help.' },
    handed_off: { label: 'Handed to a person', hint: 'The bot looked, then gave the chat to a person instead of answering.' },
  };

  // ---- state ---------------------------------------------------------------------------------
  const E = {
    view: sessionStorage.getItem(VIEW_KEY) === 'editors' ? 'editors' : 'conversations',
    range: localStorage.getItem(RANGE_KEY) || '30', // days; '0' = all time
    sort: 'recent',
    report: null, reportShown: '', gapsError: '',
    kb: null, kbError: '',
    tried: null, // {question, answer} or {question, error}
    tryingSeq: 0,
    timers: [],
    loaded: { gaps: 0 }, // when the report last arrived (ms)
  };

  const $ = (id) => document.getElementById(id);
  const el = {};
  for (const id of ['app', 'view-conversations', 'view-editors', 'editors', 'ed-problems', 'ed-problem-count',
    'ed-kb-status', 'ed-problem-list', 'ed-range', 'ed-sort', 'ed-refresh', 'ed-gaps-status', 'ed-gaps',
    'ed-gaps-body', 'ed-choices-body', 'ed-try-form', 'ed-try-q', 'ed-try-result', 'ed-try-status']) el[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = $(id);

  el.edRange.value = E.range;
  if (el.edRange.value !== E.range) el.edRange.value = E.range = '30';

  // ---- switching views -----------------------------------------------------------------------
  function setView(view, focus) {
    E.view = view;
    sessionStorage.setItem(VIEW_KEY, view);
    const editors = view === 'editors';
    el.app.dataset.view = view;
    el.editors.hidden = !editors;
    (editors ? el.viewConversations : el.viewEditors).removeAttribute('aria-current');
    (editors ? el.viewEditors : el.viewConversations).setAttribute('aria-current', 'page');
    schedule();
    if (editors) {
      refresh();
      if (focus) $('ed-title').focus();
    }
  }
  $('ed-title').tabIndex = -1;
  el.viewConversations.addEventListener('click', () => setView('conversations'));
  el.viewEditors.addEventListener('click', () => setView('editors', true));

  /**
   * The view a session opens on. An editor's account has only this one; anyone else gets the view
   * last chosen in this tab. Read from the role console.js sets on `#app` at start, because after a
   * reload console.js may have started (and sent `frontdesk:start`) before this script ran.
   */
  const startView = () => (el.app.dataset.role === 'editor' ? 'editors' : E.view);
  document.addEventListener('frontdesk:start', () => setView(startView()));
  document.addEventListener('frontdesk:logout', () => {
    // Customers' questions do not outlive the session on screen, and the next account to sign in on
    // this tab starts on its own default view, not on the one the last account chose.
    E.report = null; E.reportShown = ''; E.kb = null; E.tried = null; E.gapsError = ''; E.kbError = '';
    E.loaded = { gaps: 0 };
    E.view = 'conversations';
    sessionStorage.removeItem(VIEW_KEY);
    el.edTryQ.value = '';
    clearTimers();
    renderAll();
  });

  // While the view is shown and the tab visible, problems are checked often and the report now and then.
  function schedule() {
    clearTimers();
    if (E.view !== 'editors' || el.app.hidden) return;
    E.timers.push(setInterval(() => { if (!document.hidden) loadKb(); }, PROBLEMS_EVERY_MS));
    E.timers.push(setInterval(() => { if (!document.hidden) loadGaps(); }, GAPS_EVERY_MS));
  }
  function clearTimers() {
    for (const t of E.timers) clearInterval(t);
    E.timers = [];
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && E.view === 'editors' && !el.app.hidden && Date.now() - E.loaded.gaps > GAPS_EVERY_MS) refresh();
  });

  function refresh() {
    loadKb();
    loadGaps();
  }
  el.edRefresh.addEventListener('click', refresh);
  el.edRange.addEventListener('change', () => {
    E.range = el.edRange.value;
    localStorage.setItem(RANGE_KEY, E.range);
    E.report = null;
    loadGaps();
  });
  el.edSort.addEventListener('change', () => { E.sort = el.edSort.value; E.reportShown = ''; renderGaps(); });

  // ---- loading -------------------------------------------------------------------------------
  async function loadKb() {
    try {
      E.kb = await api('/api/kb/articles');
      E.kbError = '';
    } catch (e) {
      E.kbError = e.message;
    }
    renderProblems();
  }

  async function loadGaps() {
    const days = Number(E.range);
    const since = days ? Date.now() - days * DAY_MS : 0;
    const range = E.range;
    if (!E.report) el.edGapsStatus.textContent = 'Loading…';
    try {
      const report = await api('/api/reports/gaps?limit=500&since=' + since);
      if (range !== E.range) return; // the range changed meanwhile
      E.report = report;
      E.gapsError = '';
      E.loaded.gaps = Date.now();
    } catch (e) {
      E.gapsError = e.message;
    }
    renderGaps();
  }

  // ---- rendering: problems -------------------------------------------------------------------
  function renderAll() {
    renderProblems();
    renderGaps();
    renderTry();
  }

  function renderProblems() {
    const kb = E.kb;
    const problems = (kb && kb.problems) || [];
    el.edProblems.classList.toggle('bad', problems.length > 0);
    el.edProblemCount.textContent = problems.length ? problems.length + ' not loading' : '';
    if (E.kbError) {
      el.edKbStatus.textContent = 'Could not check the knowledge base: ' + E.kbError;
    } else if (!kb) {
      el.edKbStatus.textContent = 'Checking the knowledge base…';
    } else {
      const n = kb.articles.length;
      el.edKbStatus.textContent = n + (n === 1 ? ' article' : ' articles') + ' loaded. ' + (problems.length
        ? (problems.length === 1 ? 'One file does' : problems.length + ' files do') + ' not load; fix ' + (problems.length === 1 ? 'it' : 'them') + ' and this updates by itself.'
        : 'Every file loads.');
    }
    el.edProblemList.replaceChildren(...problems.map((p) => h('li', { dataset: { path: p.path } },
      h('div.file', null, icon('doc'), h('code', null, p.path)),
      h('p.msg', null, p.message),
      h('p.muted.small', null, p.serving_previous
        ? 'Customers still get the last version that loaded, until this is fixed.'
        : 'This file is not used until it loads.'))));
  }

  // ---- rendering: unanswered questions ---------------------------------------------------------
  function renderGaps() {
    const report = E.report;
    if (E.gapsError) el.edGapsStatus.textContent = 'Could not load the report: ' + E.gapsError;
    if (!report) {
      if (!E.gapsError) el.edGapsBody.replaceChildren(row('Loading…'));
      return;
    }
    if (!E.gapsError) el.edGapsStatus.textContent = summary(report);
    const questions = report.questions.slice();
    if (E.sort === 'count') questions.sort((a, b) => b.count - a.count || b.last_at - a.last_at);
    // Rebuilt only when something changed, so a poll does not move the keyboard focus.
    const shown = E.sort + JSON.stringify(questions) + JSON.stringify(report.choices || []);
    if (shown === E.reportShown) { tickTimes(); return; }
    E.reportShown = shown;
    renderChoices();
    const focused = document.activeElement && el.edGapsBody.contains(document.activeElement)
      ? document.activeElement.closest('tr').dataset.question : null;
    el.edGapsBody.replaceChildren(...(questions.length ? questions.map(gapRow)
      : [row(E.range === '0' ? 'Nothing unanswered yet.' : 'Nothing unanswered in this period.')]));
    if (focused != null) {
      const again = [...el.edGapsBody.querySelectorAll('tr')].find((tr) => tr.dataset.question === focused);
      if (again) again.querySelector('button').focus();
    }
  }

  // ---- rendering: questions that needed a choice ----------------------------------------------
  function renderChoices() {
    const report = E.report;
    if (!report) return;
    const choices = (report.choices || []).slice();
    if (E.sort === 'count') choices.sort((a, b) => b.count - a.count || b.last_at - a.last_at);
    el.edChoicesBody.replaceChildren(...(choices.length ? choices.map(choiceRow)
      : [h('tr.none', null, h('td', { colspan: 5 }, 'No question needed a choice' + (E.range === '0' ? ' yet.' : ' in this period.')))]));
  }

  function choiceRow(c) {
    const href = (article) => safeUrl('/kb/' + article.split('/').map(encodeURIComponent).join('/'));
    const section = (o) => { const i = o.label.indexOf(': '); return i < 0 ? '' : o.label.slice(i + 2); };
    const notPicked = [c.none ? 'None of these ' + times(c.none) : null, c.unanswered ? 'no button ' + times(c.unanswered) : null]
      .filter(Boolean).join(', ');
    return h('tr', { dataset: { question: c.question } },
      h('td.q', { 'data-label': 'Question' }, h('span.qtext', null, c.question)),
      h('td', { 'data-label': 'Articles offered' }, h('ul.picks', null, c.options.map((o) => {
        const link = href(o.article);
        const name = (o.article_title || o.article) + (section(o) ? ' › ' + section(o) : '');
        const learned = c.learned && c.learned.passage === o.passage;
        return h('li', { dataset: { passage: o.passage } },
          h('span.badge.picked' + (o.picked ? '' : '.zero'), { title: 'Offered ' + times(o.offered) }, 'picked ' + o.picked + '×'),
          learned ? h('span.badge.learned', { title: 'Customers in ' + c.learned.conversations + ' chats picked it: the bot now answers this question (and ones that mean the same) with this article straight away. A "not helpful" from customers takes it back.' }, 'now answered with this') : null,
          link ? h('a', { href: link, target: '_blank', rel: 'noopener noreferrer' }, name) : name,
          o.article_title ? null : h('span.muted.small', null, '(no longer in the knowledge base)'));
      }))),
      h('td', { 'data-label': 'Not picked' }, notPicked ? notPicked : h('span.muted', null, '–')),
      h('td.num', { 'data-label': 'Asked' }, times(c.count)),
      h('td', { 'data-label': 'Last asked' }, h('time.when', { datetime: new Date(c.last_at).toISOString(), title: new Date(c.last_at).toLocaleString(), dataset: { at: String(c.last_at) } }, relative(c.last_at))));
  }

  function summary(report) {
    const n = report.questions.length;
    const period = { 1: ' in the last 24 hours', 7: ' in the last 7 days', 30: ' in the last 30 days', 0: '' }[E.range] || '';
    if (!n) return '';
    return (n === 1 ? '1 question' : n + ' questions') + ', asked ' + times(report.asked) + period + '.' +
      (report.truncated ? ' Only the most recent are counted.' : '') +
      ' Updated ' + C.clock(E.loaded.gaps) + '.';
  }

  function row(text) {
    return h('tr.none', null, h('td', { colspan: 6 }, text));
  }

  function gapRow(q) {
    const outcomes = Object.entries(q.outcomes || {}).sort((a, b) => b[1] - a[1]);
    const href = q.article ? safeUrl('/kb/' + q.article.split('/').map(encodeURIComponent).join('/')) : null;
    return h('tr', { dataset: { question: q.question } },
      h('td.q', { 'data-label': 'Question' }, h('span.qtext', null, q.question)),
      h('td', { 'data-label': 'What happened' }, h('div.badges', null, outcomes.map(([kind, n]) => {
        const o = OUTCOMES[kind] || { label: kind.replace(/_/g, ' '), hint: '' };
        return h('span.badge.gap-' + kind.replace(/[^a-z_]/g, ''), { title: o.hint }, o.label + (outcomes.length > 1 || n > 1 ? ' ×' + n : ''));
      }))),
      h('td', { 'data-label': 'Article shown' }, q.article
        ? h('div.art', null, href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, q.article_title || q.article) : (q.article_title || q.article),
          h('code.path', null, q.article))
        : h('span.muted', null, 'none')),
      h('td.num', { 'data-label': 'Asked' }, times(q.count),
        q.count > 1 ? h('div.muted.small', null, q.conversations === 1 ? 'in 1 chat' : 'in ' + q.conversations + ' chats') : null),
      h('td', { 'data-label': 'Last asked' }, h('time.when', { datetime: new Date(q.last_at).toISOString(), title: new Date(q.last_at).toLocaleString(), dataset: { at: String(q.last_at) } }, relative(q.last_at))),
      h('td.act', null, h('button.btn.try', { type: 'button', 'aria-label': 'Try it: ' + q.question, onclick: () => tryQuestion(q.question) }, 'Try it')));
  }

  const times = (n) => (n === 1 ? 'once' : n === 2 ? 'twice' : n + ' times');

  function relative(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 60) return 'just now';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < DAY_MS / 1000) return Math.floor(s / 3600) + ' h ago';
    if (s < 7 * DAY_MS / 1000) { const d = Math.floor(s / 86400); return d === 1 ? 'yesterday' : d + ' days ago'; }
    return C.day(ms);
  }
  function tickTimes() {
    for (const body of [el.edGapsBody, el.edChoicesBody]) {
      for (const t of body.querySelectorAll('time.when')) t.textContent = relative(Number(t.dataset.at));
    }
  }

  // ---- trying a question ---------------------------------------------------------------------
  function tryQuestion(question) {
    el.edTryQ.value = question;
    explain(true);
  }

  el.edTryForm.addEventListener('submit', (e) => { e.preventDefault(); explain(false); });

  /** Asks the bot; from a row's button the focus moves to the verdict, from the box it stays there. */
  async function explain(focusVerdict) {
    const question = el.edTryQ.value.trim();
    if (!question) { el.edTryQ.focus(); return; }
    const seq = ++E.tryingSeq;
    E.tried = { question, busy: true };
    renderTry();
    el.edTryResult.scrollIntoView({ block: 'nearest' });
    try {
      const answer = await api('/api/explain?q=' + encodeURIComponent(question));
      if (seq !== E.tryingSeq) return;
      E.tried = { question, answer };
    } catch (e) {
      if (seq !== E.tryingSeq) return;
      E.tried = { question, error: e.message };
    }
    renderTry();
    const verdict = el.edTryResult.querySelector('.verdict h3');
    if (verdict && focusVerdict) { verdict.tabIndex = -1; verdict.focus({ preventScroll: true }); }
    el.edTryResult.scrollIntoView({ block: 'nearest' });
  }

  function renderTry() {
    const t = E.tried;
    el.edTryResult.setAttribute('aria-busy', String(!!(t && t.busy)));
    if (!t) { el.edTryResult.replaceChildren(); el.edTryStatus.textContent = ''; return; }
    if (t.busy) { el.edTryResult.replaceChildren(h('p.muted', null, 'Asking the bot…')); return; }
    if (t.error) { el.edTryResult.replaceChildren(h('p.error', { role: 'alert' }, 'Could not try it: ' + t.error)); return; }
    const x = t.answer;
    const reply = x.reply || {};
    const decision = x.decision || {};
    const thresholds = x.thresholds || {};
    const handoff = !!decision.escalate;
    const parts = [verdict(x.question, reply, decision)];

    // How sure it is, against the bar for answering.
    if (reply.outcome !== 'small_talk' && typeof reply.confidence === 'number') {
      const bar = typeof thresholds.answer === 'number' ? thresholds.answer : null;
      parts.push(h('div.ed-conf' + (bar != null && reply.confidence >= bar ? '.ok' : ''), null,
        h('span', null, 'Confidence ', h('b', null, reply.confidence.toFixed(2)),
          bar != null ? ' · it answers from ' + bar.toFixed(2) : ''),
        bar != null ? meter(Math.max(0, reply.confidence), bar) : null));
    }

    const said = h('div.ed-said', null,
      h('div.bubble', null, reply.text || ''),
      (reply.sources || []).length ? h('div.sources', null, reply.sources.map((s) => {
        const href = safeUrl(s.url);
        const label = s.title + (s.section ? ' › ' + s.section : '');
        return href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, icon('doc'), label) : h('span', null, icon('doc'), label);
      })) : null);
    parts.push(handoff
      ? h('details.ed-more', null, h('summary', null, 'What the bot would have answered otherwise'), said)
      : h('div', null, h('h4', null, 'What the customer would see'), said));

    if (reply.reason) parts.push(h('p.ed-why', null, h('b', null, 'Why: '), reply.reason));

    // The hand-off.
    const reasons = decision.reasons || [];
    parts.push(h('div.ed-handoff', null, h('h4', null, 'Hand-off to a person'),
      handoff
        ? h('ul.ed-reasons', null, reasons.map((r) => h('li', null,
          h('span.badge.' + String(r.kind).replace(/[^a-z_]/g, ''), null, String(r.kind).replace(/_/g, ' ')),
          ' ', r.detail || '')))
        : h('p', null, reply.outcome === 'dont_know'
          ? 'Not for this message alone. The customer is offered a person, and if the bot cannot answer again, it hands the chat over by itself.'
          : 'No: the bot keeps the conversation.'),
      handoff && decision.team ? h('p.muted.small', null, 'It would go to the ' + decision.team + ' team.') : null));

    // What it understood, and what else came close.
    const u = x.understanding || {};
    const facts = [];
    if (u.intent) facts.push(['Topic', u.intent.name.replace(/_/g, ' ') + ' (' + Math.round(u.intent.confidence * 100) + ' % sure)' + (u.intent.always_human ? ', always handled by a person' : '')]);
    else facts.push(['Topic', u.out_of_scope ? 'none of the known topics (out of scope)' : 'not recognised']);
    if (typeof u.upset === 'number') facts.push(['Upset', u.upset.toFixed(2) + ((u.upset_cues || []).length ? ' (' + u.upset_cues.join(', ') + ')' : '')]);
    parts.push(h('dl.kv.ed-facts', null, facts.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])));

    const others = (reply.candidates || []).slice(0, 3);
    if (others.length) {
      parts.push(h('details.ed-more', null, h('summary', null, 'Closest passages in the knowledge base'),
        h('ol.ed-candidates', null, others.map((p) => {
          const href = safeUrl(p.link);
          const label = p.title + ((p.heading_path || []).length ? ' › ' + p.heading_path.join(' › ') : '');
          return h('li', null, href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, label) : label,
            h('span.muted.small', null, ' ' + p.similarity.toFixed(2) + ' · ' + p.path));
        }))));
    }
    if ((decision.checked || []).length) {
      parts.push(h('details.ed-more', null, h('summary', null, 'Every check the hand-off rules made'),
        h('ul.ed-checks', null, decision.checked.map((c) => h('li', null, c)))));
    }
    el.edTryResult.replaceChildren(...parts);
    // Screen readers hear the verdict, not the whole explanation (which follows it in the page).
    el.edTryStatus.textContent = parts[0].querySelector('h3').textContent;
  }

  function verdict(question, reply, decision) {
    let kind, title, sub;
    const first = (reply.sources || [])[0];
    if (decision.escalate) {
      kind = 'handoff';
      title = 'A person would take over';
      sub = 'The bot would not answer: the chat goes to the queue for a person.';
    } else if (reply.outcome === 'answered') {
      kind = 'answered';
      title = 'The bot would answer from “' + (first ? first.title : 'an article') + '”';
      sub = first && first.section ? 'Section: ' + first.section : '';
    } else if (reply.outcome === 'clarify') {
      kind = 'clarify';
      title = 'The bot would ask which article they mean';
      sub = 'Two articles fit about equally: ' + (reply.sources || []).map((s) => '“' + s.title + '”').join(' or ') + '. Making one of them clearer helps.';
    } else if (reply.outcome === 'small_talk') {
      kind = 'small-talk';
      title = 'The bot would reply in kind';
      sub = 'It reads this as a greeting or thanks, not a question.';
    } else {
      kind = 'dont-know';
      title = 'The bot would say it doesn’t know';
      sub = 'No article is close enough. Add or edit one so it covers this question, then try again.';
    }
    return h('div.verdict.' + kind, null,
      h('h3', null, title),
      sub ? h('p', null, sub) : null,
      h('p.muted.small', null, 'For: “', h('span.asked', null, question), '”'));
  }

  // ---- go ------------------------------------------------------------------------------------
  renderAll();
  if (!el.app.hidden) setView(startView()); // console.js had a session and started before this ran
})();
