// The widget in headless Chromium against the real server (started by scripts/e2e.sh).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import {
  SERVER, connText, consoleLogin, customerMessages, isOnline, launch, newPage, openChat, screenshot, send, shownSeqs, waitFor, widget,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a customer asks a question and gets the article, quick replies and "was this helpful?"', async () => {
  const { page, frames, errors, context } = await newPage(browser);
  const w = await openChat(page);
  await send(page, 'I was charged twice for one order');

  const answer = w.bot.last();
  await answer.waitFor();
  const source = answer.locator('.sources a');
  assert.match(await source.textContent(), /Why was I charged twice\?/);
  assert.equal(await source.getAttribute('href'), 'https://help.tidewater.example/billing/charged-twice');
  assert.equal(await source.getAttribute('target'), '_blank');
  assert.match(await answer.locator('.bubble').textContent(), /charge|hold/i);
  assert.ok(await answer.locator('.chip[data-action=request_human]').isVisible(), 'the "Talk to a person" quick reply shows');
  assert.equal(await answer.locator('.chip', { hasText: 'Talk to a person' }).count(), 1);
  const [sent] = await customerMessages(page);
  assert.deepEqual([sent.text, sent.state], ['I was charged twice for one order', 'sent']);

  await screenshot(page, 'widget-desktop.png');

  await answer.locator('.fb [data-action=helpful]').click();
  await answer.locator('.fb', { hasText: 'Thanks for your feedback!' }).waitFor();
  const seq = Number(await answer.getAttribute('data-seq'));
  await waitFor(page, () => frames.some((f) => f.type === 'feedback_ack' && f.seq === seq), 'the server stores the feedback');
  assert.deepEqual(errors, []);
  await context.close();
});

test('"Talk to a person" puts the customer in the queue and says so', async () => {
  const agent = await newPage(browser); // someone is online (else the widget offers the email form)
  await consoleLogin(agent.page);
  const { page, errors, context } = await newPage(browser);
  const w = await openChat(page);
  assert.ok(await w.human.isVisible(), 'the action is visible without asking the bot first');
  await w.human.click();
  await w.banner.waitFor();
  assert.match(await w.banner.textContent(), /Waiting for a person/);
  await w.log.locator('.note', { hasText: 'Waiting for a person' }).waitFor();
  await w.log.locator('.note', { hasText: 'passed your conversation to our team' }).waitFor();
  assert.equal(await w.human.isVisible(), false, 'no second request while queued');
  // Still queued after a reload: the state comes back with the conversation.
  await page.reload();
  await w.banner.waitFor({ state: 'attached' });
  await waitFor(page, () => isOnline(page), 'the widget reconnects');
  assert.match(await w.banner.textContent(), /Waiting for a person/);
  assert.deepEqual(errors, []);
  await context.close();
  await agent.context.close();
});

test('markup in a message is shown as text, never run', async () => {
  const { page, errors, context } = await newPage(browser);
  const w = await openChat(page);
  const evil = '<img src=x onerror="window.__xss=1">hello <b>bold</b><script>window.__xss=2</script>';
  await send(page, evil);
  await waitFor(page, async () => (await customerMessages(page))[0]?.state === 'sent', 'the message is acknowledged');
  assert.equal((await customerMessages(page))[0].text, evil);
  await w.bot.last().waitFor(); // the bot's reply is in too
  await page.reload(); // and again when drawn from the cache after a reload
  await w.customer.first().waitFor();
  assert.equal((await customerMessages(page))[0].text, evil);
  const found = await page.evaluate(() => {
    const root = document.querySelector('frontdesk-chat').shadowRoot;
    return { xss: window.__xss, img: root.querySelectorAll('.log img, .log script, .log b').length };
  });
  assert.deepEqual(found, { xss: undefined, img: 0 });
  assert.deepEqual(errors, []);
  await context.close();
});

test('offline: messages wait, then arrive exactly once and in order; a reload restores the conversation', async () => {
  const { page, context, errors } = await newPage(browser);
  const w = await openChat(page);
  await send(page, 'hello there');
  await waitFor(page, async () => (await customerMessages(page))[0]?.state === 'sent', 'the first message is acknowledged');
  await w.bot.first().waitFor();

  await context.setOffline(true);
  await waitFor(page, () => connText(page).then((t) => /offline/i.test(t)), 'the widget shows it is offline');
  for (const text of ['first while offline', 'second while offline', 'third while offline']) await send(page, text);
  await page.waitForTimeout(1500);
  const waiting = await customerMessages(page);
  assert.deepEqual(waiting.map((m) => m.state), ['sent', 'pending', 'pending', 'pending']);
  assert.match(await w.customer.nth(1).locator('.meta').textContent(), /Waiting for the network/);

  await context.setOffline(false);
  await waitFor(page, async () => (await customerMessages(page)).every((m) => m.state === 'sent'), 'every message is acknowledged');
  const expected = ['hello there', 'first while offline', 'second while offline', 'third while offline'];
  const check = async (when) => {
    const shown = await customerMessages(page);
    assert.deepEqual(shown.map((m) => m.text), expected, when);
    const seqs = await shownSeqs(page);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), `${when}: each frame once, in sequence order`);
  };
  await waitFor(page, async () => (await w.bot.count()) === 4, 'the bot answers each message once');
  await check('after reconnecting');

  await page.reload(); // drawn from localStorage, then resumed from the last seq
  await w.customer.nth(3).waitFor();
  await waitFor(page, () => isOnline(page), 'the widget reconnects');
  await check('after a reload');

  // Forget the local copy but keep the session: the server replays the whole conversation.
  await page.evaluate(() => {
    for (const k of Object.keys(localStorage)) if (/:(history|seq)$/.test(k)) localStorage.removeItem(k);
  });
  await page.reload();
  await w.customer.nth(3).waitFor();
  await check('replayed by the server');
  assert.deepEqual(errors, []);
  await context.close();
});

test('keyboard: Enter sends, Shift+Enter makes a new line, Escape closes', async () => {
  const { page, context, errors } = await newPage(browser);
  await page.goto(SERVER + '/');
  const w = widget(page);
  await w.launcher.focus();
  await page.keyboard.press('Enter');
  await w.input.waitFor();
  const active = () => page.evaluate(() => document.querySelector('frontdesk-chat').shadowRoot.activeElement?.className);
  assert.equal(await active(), '', 'the text box has focus once the chat opens'); // the textarea has no class
  assert.equal(await w.launcher.getAttribute('aria-expanded'), 'true');
  await waitFor(page, () => isOnline(page), 'the widget connects');
  await page.keyboard.type('how do i descale');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('my brewer');
  assert.equal(await w.input.inputValue(), 'how do i descale\nmy brewer');
  assert.equal(await w.customer.count(), 0);
  await page.keyboard.press('Enter');
  await waitFor(page, async () => (await customerMessages(page))[0]?.state === 'sent', 'the message is sent');
  assert.equal((await customerMessages(page))[0].text, 'how do i descale\nmy brewer');
  assert.equal(await w.input.inputValue(), '');
  await w.bot.first().waitFor(); // the answer is in before the chat closes (else it counts as unread)
  await page.keyboard.press('Escape');
  await w.panel.waitFor({ state: 'hidden' });
  assert.equal(await active(), 'launcher', 'focus goes back to the launcher');
  assert.equal(await w.launcher.getAttribute('aria-label'), 'Open chat');
  assert.deepEqual(errors, []);
  await context.close();
});

test('at 360 px the widget fills the screen without sideways scrolling', async () => {
  const { page, context, errors } = await newPage(browser, {
    viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  });
  const w = await openChat(page);
  await send(page, 'I was charged twice for one order');
  await w.bot.last().waitFor();
  await send(page, 'where is my order averyveryveryveryveryveryverylongwordwithoutanyspacesatalltotestwrapping');
  await waitFor(page, async () => (await customerMessages(page))[1]?.state === 'sent', 'the second message is sent');
  await w.bot.nth(1).waitFor();
  const box = await w.panel.boundingBox();
  assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 360, 740], 'the chat fills the screen');
  const input = await w.input.boundingBox();
  assert.ok(input.x >= 0 && input.x + input.width <= 360 && input.y + input.height <= 740, 'the text box is on screen');
  assert.ok(input.height >= 40, 'the text box is big enough to tap');
  const overflow = await page.evaluate(() => {
    const root = document.querySelector('frontdesk-chat').shadowRoot;
    const log = root.querySelector('.log');
    return { page: document.documentElement.scrollWidth, log: log.scrollWidth - log.clientWidth };
  });
  assert.deepEqual(overflow, { page: 360, log: 0 });
  await w.log.evaluate((log) => { log.scrollTop = 0; });
  await screenshot(page, 'widget-mobile.png');
  assert.deepEqual(errors, []);
  await context.close();
});

test('embedded on another site with hostile CSS and a strict CSP, the widget still works', async (t) => {
  const { page, context, errors } = await newPage(browser);
  // Another origin (a second port), serving a page whose styles would wreck an unprotected widget,
  // under a strict Content-Security-Policy (no inline styles or scripts but its own).
  const hostile = `<!doctype html><html><head><style nonce="n0nce">
      * { font-size: 40px !important; color: red !important; display: block !important; }
      div, button, textarea, p, section, form { display: none !important; background: black !important; }
      html { font-size: 5px; }
    </style></head><body><h1>Another shop</h1>
    <script src="${SERVER}/widget.js" data-color="#ffd400" data-position="left" data-lang="es" async></script>
    </body></html>`;
  const server = new URL(SERVER);
  const csp = `default-src 'none'; style-src 'nonce-n0nce'; script-src ${server.origin}; connect-src ws://${server.host}`;
  const shop = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html', 'content-security-policy': csp }).end(hostile));
  await new Promise((ok) => shop.listen(0, '127.0.0.1', ok));
  t.after(() => shop.close());
  await openChat(page, `http://127.0.0.1:${shop.address().port}/`);
  const w = widget(page);
  assert.match(await w.human.textContent(), /Hablar con una persona/);
  const launcher = await w.launcher.boundingBox();
  assert.ok(launcher.x < 100, 'data-position="left" puts the launcher on the left');
  await send(page, 'I was charged twice for one order');
  await w.bot.last().locator('.sources a').waitFor();
  const styles = await page.evaluate(() => {
    const root = document.querySelector('frontdesk-chat').shadowRoot;
    const bubble = getComputedStyle(root.querySelector('.msg.customer .bubble'));
    return { display: getComputedStyle(root.querySelector('.panel')).display, size: bubble.fontSize, fg: bubble.color };
  });
  assert.equal(styles.display, 'flex');
  assert.equal(styles.size, '15px');
  // The host page cannot recolour it either (a light brand colour gets dark text).
  assert.notEqual(styles.fg, 'rgb(255, 0, 0)');
  assert.deepEqual(errors, []);
  await context.close();
});

// The real server sends all of these frames (console.test.js drives a real hand-off end to end).
// Here the test answers the widget's socket itself, with the frames docs/PROTOCOL.md describes,
// so that it can show on cue what is slow or awkward to reach with the real server: a given place
// in line and wait, an agent's markup and the bot's markdown, the rating card, the email form when
// nobody is available, and the unread badge.
test('a connection that died without a word is noticed when the page comes back into view (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const hellos = [];
  let answers = true; // the first connection answers pings; the second goes silent, as a dead one does
  await page.routeWebSocket(/\/ws\/chat$/, (ws) => {
    const mine = hellos.length;
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      if (f.type === 'hello') {
        hellos.push(f);
        ws.send(JSON.stringify({ type: 'welcome', protocol: 1, session: 's-1', conversation_id: 'c-1', resumed: mine > 0, state: 'queued', last_seq: 2, missed: mine > 0 ? [] : [{ type: 'status', seq: 2, state: 'queued' }] }));
      } else if (f.type === 'ping' && answers) {
        ws.send(JSON.stringify({ type: 'pong' }));
      }
    });
  });
  await openChat(page);
  const backInView = () => page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
  await backInView();
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(hellos.length, 1, 'a connection that answers is kept');
  answers = false;
  await backInView();
  await waitFor(page, async () => hellos.length === 2, 'a new connection after the silence', 20000);
  assert.equal(hellos[1].session, 's-1');
  assert.equal(hellos[1].last_seq, 2, 'it resumes where it was');
  await waitFor(page, () => isOnline(page), 'online again');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a site whose identity signature is refused still gets a chat, as an unverified visitor; a long URL is not sent whole (scripted server)', async (t) => {
  const { page, context, errors } = await newPage(browser);
  const shopPage = `<!doctype html><html><body><h1>Shop</h1>
    <script src="${SERVER}/widget.js" data-user-id="ann-42" data-user-hash="not-the-signature" async></script></body></html>`;
  const shop = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(shopPage));
  await new Promise((ok) => shop.listen(0, '127.0.0.1', ok));
  t.after(() => shop.close());
  const hellos = [];
  await page.routeWebSocket(/\/ws\/chat$/, (ws) => {
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      if (f.type !== 'hello') return;
      hellos.push(f);
      if (f.user_hash) ws.send(JSON.stringify({ type: 'error', code: 'identity_refused', message: 'user_hash does not sign user_id' }));
      else ws.send(JSON.stringify({ type: 'welcome', protocol: 1, session: 's-1', conversation_id: 'c-1', resumed: false, state: 'bot', last_seq: 0, missed: [] }));
    });
  });
  const warnings = [];
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  const start = Date.now();
  await openChat(page, `http://127.0.0.1:${shop.address().port}/shop?q=1#${'x'.repeat(20000)}`);
  assert.ok(Date.now() - start < 10000, 'connected without waiting for a watchdog');
  assert.equal(hellos.length, 2);
  assert.equal(hellos[0].user_hash, 'not-the-signature');
  assert.equal(hellos[1].user_hash, undefined, 'the second hello goes without the refused identity');
  assert.equal(hellos[0].visitor.page, `http://127.0.0.1:${shop.address().port}/shop?q=1`);
  assert.ok(warnings.some((w) => /user_hash does not sign/.test(w)), warnings.join('\n'));
  assert.deepEqual(errors, []);
  await context.close();
});

test('a choice pressed but not yet acknowledged keeps its choice through a reload (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const offer = {
    type: 'message', seq: 1, from: 'bot', text: 'Which of these is it?',
    quick_replies: [{ label: 'Descale your brewer: steps', action: 'send', choice: { passage: 'p-1', line: 'Run the descaling cycle.' } }],
    sources: [{ title: 'Descale your brewer', section: 'steps' }],
  };
  const messages = [];
  let acks = false; // the first connection never acknowledges: the press stays unacknowledged
  await page.routeWebSocket(/\/ws\/chat$/, (ws) => {
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      if (f.type === 'hello') {
        ws.send(JSON.stringify({ type: 'welcome', protocol: 1, session: 's-1', conversation_id: 'c-1', resumed: !!f.session, state: 'bot', last_seq: 1, missed: f.session ? [] : [offer] }));
      } else if (f.type === 'message') {
        messages.push(f);
        if (acks) ws.send(JSON.stringify({ type: 'ack', client_id: f.client_id, seq: 2, duplicate: false }));
      }
    });
  });
  const w = await openChat(page);
  await w.w('.choice[data-passage="p-1"]').click();
  await waitFor(page, async () => messages.length === 1, 'the press is sent');
  assert.deepEqual(messages[0].choice, { seq: 1, passage: 'p-1' });
  acks = true;
  await page.reload();
  await waitFor(page, async () => messages.length === 2, 'sent again after the reload');
  assert.equal(messages[1].client_id, messages[0].client_id);
  assert.deepEqual(messages[1].choice, { seq: 1, passage: 'p-1' }, 'still the choice, not a new question');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a rating and an email written into a dying connection are sent again once it is back (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const got = [];
  let connections = 0;
  const missed = [
    { type: 'status', seq: 1, state: 'resolved' },
    { type: 'csat_request', seq: 2, text: 'How did we do?' },
    { type: 'message', seq: 3, from: 'system', text: 'Leave your email and we will write.', quick_replies: [{ label: 'Leave your email', action: 'leave_email' }] },
  ];
  await page.routeWebSocket(/\/ws\/chat$/, (ws) => {
    const first = connections++ === 0;
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      got.push(f);
      const times = got.filter((g) => g.type === f.type).length;
      if (f.type === 'hello') {
        ws.send(JSON.stringify({ type: 'welcome', protocol: 1, session: 's-1', conversation_id: 'c-1', resumed: !first, state: 'resolved', last_seq: 3, missed: first ? missed : [] }));
      } else if ((f.type === 'rate' || f.type === 'leave_email') && times === 1) {
        ws.close(); // the first one goes into a connection that dies: no answer
      } else if (f.type === 'rate') {
        ws.send(JSON.stringify({ type: 'rate_ack', score: f.score }));
      } else if (f.type === 'leave_email') {
        ws.send(JSON.stringify({ type: 'email_ack', ticket_id: 7 }));
      }
    });
  });
  const w = await openChat(page);
  const card = w.w('form.card', { hasText: 'How did we do?' });
  await card.waitFor();
  await card.getByRole('button', { name: '4 out of 5' }).click();
  await card.getByRole('button', { name: 'Submit' }).click();
  await w.log.getByText('You rated this chat 4 out of 5').waitFor();
  assert.equal(got.filter((f) => f.type === 'rate').length, 2, 'sent again on the new connection');

  await w.log.locator('.chip[data-action=leave_email]').click();
  const form = w.w('form.card', { has: page.locator('input[type=email]') });
  await form.locator('input').fill('ana@example.com');
  await form.getByRole('button', { name: 'Send' }).click();
  await w.log.getByText("Thanks! We'll reply to ana@example.com.").waitFor();
  assert.deepEqual(got.filter((f) => f.type === 'leave_email').map((f) => f.email), ['ana@example.com', 'ana@example.com']);
  assert.equal(connections, 3);
  assert.deepEqual(errors, []);
  await context.close();
});

test('handoff as the customer sees it: queue, agent joined, typing, rating, email form (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const got = [];
  let sock;
  const push = (f) => sock.send(JSON.stringify(f));
  await page.routeWebSocket(/\/ws\/chat$/, (ws) => {
    sock = ws;
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      got.push(f);
      if (f.type === 'hello') {
        push({ type: 'welcome', protocol: 1, session: 's-1', conversation_id: 'c-1', resumed: false, state: 'bot', last_seq: 0, missed: [] });
      } else if (f.type === 'request_human') {
        push({ type: 'status', seq: 1, state: 'queued', queue_position: 3, eta_seconds: 240 });
      } else if (f.type === 'rate') {
        push({ type: 'rate_ack', score: f.score });
      } else if (f.type === 'leave_email') {
        push({ type: 'email_ack', ticket_id: 't-1' });
      }
    });
  });
  const w = await openChat(page);
  const note = (text) => w.log.locator('.note', { hasText: text });

  await w.human.click();
  await w.banner.waitFor();
  assert.match(await w.banner.textContent(), /Waiting for a person.*number 3 in line · about 4 minutes/);
  push({ type: 'queue', queue_position: 1, eta_seconds: 30 });
  await w.banner.filter({ hasText: 'number 1 in line · about a minute' }).waitFor();

  push({ type: 'status', seq: 2, state: 'agent', agent: 'Sam' });
  await note('Sam joined the chat').waitFor();
  await w.banner.filter({ hasText: "You're chatting with Sam" }).waitFor();
  push({ type: 'typing', from: 'agent', on: true });
  await w.w('.typing').filter({ hasText: 'Sam is typing' }).waitFor();
  push({ type: 'message', seq: 3, from: 'agent', author: 'Sam', text: '<b>Hi</b>, **this stays as typed**' });
  const agent = w.w('.msg.agent');
  await agent.waitFor();
  assert.equal(await agent.locator('.bubble').textContent(), '<b>Hi</b>, **this stays as typed**');
  assert.equal(await agent.locator('.who').textContent(), 'Sam');
  assert.ok(await w.w('.typing').isHidden(), 'the typing indicator goes once the message is in');

  // The knowledge base's markdown: a safe subset, built as DOM nodes.
  push({ type: 'message', seq: 4, from: 'bot', text: '**Bold** and *soft* `code`\n\n1. one\n2. [two](javascript:alert(1))\n3. [three](/kb/x.md)\n\n<img src=x onerror="window.__xss=1">' });
  const md = w.w('.msg.bot[data-seq="4"] .bubble');
  await md.waitFor();
  const shape = await md.evaluate((b) => ({
    strong: b.querySelector('strong')?.textContent, em: b.querySelector('em')?.textContent, code: b.querySelector('code')?.textContent,
    items: [...b.querySelectorAll('ol > li')].map((li) => li.textContent),
    links: [...b.querySelectorAll('a')].map((a) => a.href), img: b.querySelectorAll('img').length, xss: window.__xss,
  }));
  assert.deepEqual(shape, {
    strong: 'Bold', em: 'soft', code: 'code', items: ['one', 'two', 'three'],
    links: [new URL('/kb/x.md', SERVER).href], img: 0, xss: undefined,
  });

  push({ type: 'status', seq: 5, state: 'resolved' });
  push({ type: 'csat_request', seq: 6, text: 'How did Sam do?' });
  const card = w.w('form.card', { hasText: 'How did Sam do?' });
  await card.waitFor();
  await card.getByRole('button', { name: '4 out of 5' }).click();
  await card.locator('textarea').fill('Quick and kind');
  await card.getByRole('button', { name: 'Submit' }).click();
  await w.log.getByText('You rated this chat 4 out of 5').waitFor();
  assert.deepEqual(got.find((f) => f.type === 'rate'), { type: 'rate', score: 4, comment: 'Quick and kind' });

  // Nobody available: the banner and the system message offer the email form.
  push({ type: 'status', seq: 7, state: 'queued', agents_available: false });
  push({ type: 'message', seq: 8, from: 'system', text: 'Our team is offline right now.', quick_replies: [{ label: 'Leave your email', action: 'leave_email' }] });
  await w.banner.filter({ hasText: "Nobody's available right now" }).waitFor();
  await w.log.locator('.chip[data-action=leave_email]').click();
  const form = w.w('form.card', { has: page.locator('input[type=email]') });
  await form.locator('input').fill('not an email');
  await form.getByRole('button', { name: 'Send' }).click();
  await form.getByText('Please enter a valid email address.').waitFor();
  await form.locator('input').fill('ana@example.com');
  await form.locator('textarea').fill('About my double charge');
  await form.getByRole('button', { name: 'Send' }).click();
  await w.log.getByText("Thanks! We'll reply to ana@example.com.").waitFor();
  assert.deepEqual(got.find((f) => f.type === 'leave_email'), { type: 'leave_email', email: 'ana@example.com', message: 'About my double charge' });

  // Unread badge while the chat is closed.
  await w.launcher.click();
  await w.panel.waitFor({ state: 'hidden' });
  push({ type: 'message', seq: 9, from: 'agent', author: 'Sam', text: 'Anything else?' });
  await w.w('.badge').filter({ hasText: '1' }).waitFor();
  assert.equal(await w.launcher.getAttribute('aria-label'), 'Open chat, 1 unread message');
  await w.launcher.click();
  assert.ok(await w.w('.badge').isHidden());
  assert.deepEqual(errors, []);
  await context.close();
});

test('two tabs that open before either has a conversation join one conversation (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const second = await context.newPage();
  second.on('pageerror', (e) => errors.push(e.message));
  const hellos = [];
  const messages = [];
  const held = []; // the first two welcomes wait until both tabs have said hello
  let conversations = 0;
  await context.routeWebSocket(/\/ws\/chat$/, (ws) => {
    let session;
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      if (f.type === 'hello') {
        hellos.push(f);
        session = f.session || `s-${++conversations}`;
        const welcome = { type: 'welcome', protocol: 1, session, conversation_id: 'c' + session, resumed: !!f.session, state: 'bot', last_seq: 0, missed: [] };
        held.push(() => ws.send(JSON.stringify(welcome)));
        if (hellos.length === 2) {
          held[0]();
          setTimeout(held[1], 300); // as a second welcome comes over another network path
        } else if (hellos.length > 2) held[hellos.length - 1]();
      } else if (f.type === 'message') {
        messages.push({ session, text: f.text });
        ws.send(JSON.stringify({ type: 'ack', client_id: f.client_id, seq: messages.length, duplicate: false }));
      }
    });
  });
  await Promise.all([openChat(page), openChat(second)]);
  assert.deepEqual(hellos.slice(0, 2).map((h) => h.session), [undefined, undefined], 'both tabs asked for a new conversation');
  await waitFor(page, async () => hellos.length === 3, 'the tab whose welcome came second joins the first');
  assert.equal(hellos[2].session, 's-1');
  await waitFor(page, async () => (await isOnline(page)) && (await isOnline(second)), 'both tabs online');
  await send(page, 'from the first tab');
  await send(second, 'from the second tab');
  await waitFor(page, async () => messages.length === 2, 'both messages arrive');
  assert.deepEqual(messages.map((m) => m.session), ['s-1', 's-1'], 'one conversation');
  assert.deepEqual(errors, []);
  await context.close();
});

/** Opens the demo page in another tab of a site whose chat is open in one already (so it opens open). */
async function openAnotherTab(context, errors) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(SERVER + '/');
  await widget(page).input.waitFor({ state: 'visible' });
  await waitFor(page, () => isOnline(page), 'the widget connects');
  return page;
}

/** A scripted server: each hello gets a welcome to conversation c-1 (session s-1), each message goes to `onMessage(frame, ws)`. */
async function scriptedChat(context, onMessage) {
  await context.routeWebSocket(/\/ws\/chat$/, (ws) => {
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      if (f.type === 'hello') {
        ws.send(JSON.stringify({ type: 'welcome', protocol: 1, session: 's-1', conversation_id: 'c-1', resumed: !!f.session, state: 'bot', last_seq: 0, missed: [] }));
      } else if (f.type === 'message') {
        onMessage(f, ws);
      }
    });
  });
}

test('a message written in a tab closed before it was acknowledged is sent by the next tab that opens (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const messages = [];
  let acks = false; // nothing is acknowledged until both tabs wrote and the first was closed
  await scriptedChat(context, (f, ws) => {
    messages.push(f);
    if (acks) ws.send(JSON.stringify({ type: 'ack', client_id: f.client_id, seq: messages.length, duplicate: false }));
  });
  await openChat(page);
  const second = await openAnotherTab(context, errors);
  await send(page, 'written in the first tab');
  await send(second, 'written in the second tab');
  await waitFor(page, async () => messages.length === 2, 'both tabs sent');
  await page.close(); // closed (or discarded by the phone) before its message was acknowledged
  await second.close();
  acks = true;
  messages.length = 0;
  const third = await openAnotherTab(context, errors);
  await waitFor(third, async () => messages.length >= 2, 'both unacknowledged messages are sent again');
  assert.deepEqual(messages.map((m) => m.text).sort(), ['written in the first tab', 'written in the second tab']);
  await waitFor(third, async () => (await customerMessages(third)).every((m) => m.state === 'sent'), 'acknowledged');
  assert.equal((await customerMessages(third)).length, 2, 'each shown once');
  const left = await third.evaluate(() => Object.entries(localStorage).find(([k]) => k.endsWith(':pending'))?.[1]);
  assert.equal(left, '[]', 'the shared list is empty once both were acknowledged');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a phone too slow to get its welcome within the usual 15 s is given longer on the next try (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const sockets = []; // the hellos are not answered until the end: as if the welcome were still arriving
  await context.routeWebSocket(/\/ws\/chat$/, (ws) => {
    ws.onMessage((text) => { if (JSON.parse(String(text)).type === 'hello') sockets.push(ws); });
  });
  await page.clock.install();
  await page.goto(SERVER + '/');
  await waitFor(page, async () => sockets.length === 1, 'the first hello');
  await page.clock.runFor(15500); // no welcome in 15 s: a new connection
  await page.clock.runFor(1000); // its backoff
  await waitFor(page, async () => sockets.length === 2, 'the second hello');
  await page.clock.runFor(16000); // the second gets longer than the first did
  await page.clock.runFor(1000);
  await page.waitForTimeout(500);
  assert.equal(sockets.length, 2, 'the second connection is given more than 15 s for its welcome');
  sockets[1].send(JSON.stringify({ type: 'welcome', protocol: 1, session: 's-1', conversation_id: 'c-1', resumed: false, state: 'bot', last_seq: 0, missed: [] }));
  await widget(page).launcher.click();
  await waitFor(page, () => isOnline(page), 'online once the welcome came');
  await page.clock.runFor(40000); // past the 30 s it was given: the welcome came
  await page.waitForTimeout(500);
  assert.equal(sockets.length, 2, 'a connection that brought its welcome is kept');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a message the server refuses for good can be taken back into the composer, and does not come back after a reload (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const messages = [];
  await scriptedChat(context, (f, ws) => {
    messages.push(f);
    ws.send(JSON.stringify({ type: 'error', code: 'message_too_long', client_id: f.client_id, message: 'messages are limited to 20 characters; this one has 41. Split it up and send again' }));
  });
  const w = await openChat(page);
  const long = 'my order never came and I want it today';
  await send(page, long);
  await waitFor(page, async () => (await customerMessages(page))[0]?.state === 'failed', 'the message is refused');
  await w.input.fill('order TW-1');
  await w.customer.first().locator('button', { hasText: 'Edit' }).click();
  assert.equal(await w.input.inputValue(), 'order TW-1\n' + long, 'its text is back in the composer, after what was being typed');
  assert.equal((await customerMessages(page)).length, 0, 'the refused bubble is gone');
  await page.reload();
  await w.input.waitFor({ state: 'visible' });
  await waitFor(page, () => isOnline(page), 'reconnected');
  await page.waitForTimeout(500);
  assert.equal((await customerMessages(page)).length, 0, 'not drawn again after a reload');
  assert.equal(messages.length, 1, 'not sent again either');
  assert.deepEqual(errors, []);
  await context.close();
});

test("a tab whose unacknowledged message another tab's write dropped from the shared list puts it back (scripted server)", async () => {
  const { page, errors, context } = await newPage(browser);
  await scriptedChat(context, () => {}); // nothing is acknowledged
  await openChat(page);
  const second = await openAnotherTab(context, errors);
  await send(page, 'written in the first tab');
  const list = (tab) => tab.evaluate(() => JSON.parse(Object.entries(localStorage).find(([k]) => k.endsWith(':pending'))?.[1] || '[]'));
  await waitFor(page, async () => (await list(second)).length === 1, 'the message is in the shared list');
  // The second tab's save lands just after the first tab's, from a list read before it.
  await second.evaluate(() => { const k = Object.keys(localStorage).find((x) => x.endsWith(':pending')); localStorage.setItem(k, '[]'); });
  await waitFor(page, async () => (await list(second)).map((p) => p.text).join() === 'written in the first tab', 'the first tab puts it back');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a message sent again after a reconnect carries the seen it was first sent with, and none in another conversation (scripted server)', async () => {
  const { page, errors, context } = await newPage(browser);
  const messages = [];
  const welcomes = [
    // The first connection: two frames already, then an agent's reply arrives before the ack
    // and the connection drops.
    { conversation_id: 'c-1', resumed: false, last_seq: 2, missed: [
      { type: 'message', seq: 1, from: 'customer', text: 'hello', client_id: 'old-1' },
      { type: 'message', seq: 2, from: 'bot', text: 'Hi! How can I help?' }] },
    // The second: the same conversation; the re-send is not acknowledged either.
    { conversation_id: 'c-1', resumed: true, last_seq: 3, missed: [] },
    // The third: the server has another conversation for this session.
    { conversation_id: 'c-2', resumed: false, last_seq: 0, missed: [] },
  ];
  let connection = 0;
  await context.routeWebSocket(/\/ws\/chat$/, (ws) => {
    const mine = connection++;
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      if (f.type === 'hello') {
        ws.send(JSON.stringify({ type: 'welcome', protocol: 1, session: 's-1', state: 'bot', ...welcomes[Math.min(mine, 2)] }));
      } else if (f.type === 'message') {
        messages.push(f);
        if (mine === 0) {
          ws.send(JSON.stringify({ type: 'message', seq: 3, from: 'agent', author: 'Ana', text: 'On it.' }));
          setTimeout(() => ws.close(), 200);
        } else if (mine === 1) {
          setTimeout(() => ws.close(), 200);
        } else {
          ws.send(JSON.stringify({ type: 'ack', client_id: f.client_id, seq: 1, duplicate: false }));
        }
      }
    });
  });
  await openChat(page);
  await send(page, 'is my order on its way?');
  await waitFor(page, async () => messages.length >= 3, 'sent in three connections');
  assert.deepEqual(messages.slice(0, 3).map((m) => [m.text, m.seen]), [
    ['is my order on its way?', 2], // the newest frame shown when it was written
    ['is my order on its way?', 2], // not 3: the agent's reply came after it was first sent
    ['is my order on its way?', 0], // another conversation's numbers say nothing about this one
  ]);
  assert.equal(new Set(messages.map((m) => m.client_id)).size, 1, 'one client_id throughout');
  assert.deepEqual(errors, []);
  await context.close();
});

test("a message's seen that one tab lowered (the server's log went back) is not raised again by another tab (scripted server)", async () => {
  const { page, errors, context } = await newPage(browser);
  const sent = []; // [tab, frame] of every message frame
  const sockets = { 1: [], 2: [] };
  const lines = (n) => Array.from({ length: n }, (_, i) => ({ type: 'message', seq: i + 1, from: 'bot', text: 'line ' + (i + 1) }));
  let last = 10; // the server's last seq
  const route = (tab) => (ws) => {
    sockets[tab].push(ws);
    ws.onMessage((text) => {
      const f = JSON.parse(String(text));
      if (f.type === 'hello') {
        const missed = lines(last).slice(f.last_seq || 0);
        ws.send(JSON.stringify({ type: 'welcome', protocol: 1, session: 's-1', conversation_id: 'c-1', resumed: !!f.session, state: 'bot', last_seq: last, missed }));
      } else if (f.type === 'message') {
        sent.push([tab, f]);
      }
    });
  };
  const from = (tab) => sent.filter(([t]) => t === tab).map(([, f]) => f);
  await page.routeWebSocket(/\/ws\/chat$/, route(1));
  await openChat(page);
  await send(page, 'where is my refund?'); // never acknowledged
  await waitFor(page, async () => from(1).length === 1, 'sent by the first tab');
  assert.equal(from(1)[0].seen, 10);
  const second = await context.newPage();
  second.on('pageerror', (e) => errors.push(e.message));
  await second.routeWebSocket(/\/ws\/chat$/, route(2));
  await second.goto(SERVER + '/');
  await waitFor(second, async () => from(2).length === 1, 'the second tab sends it too');
  assert.equal(from(2)[0].seen, 10);
  // The server comes back with its log at 7 (a restore): the first tab finds out and sends the
  // message with seen 0, as it may now be stored below 10.
  last = 7;
  sockets[1].at(-1).close();
  await waitFor(page, async () => from(1).length >= 2, 'the first tab sends it again');
  assert.equal(from(1).at(-1).seen, 0);
  // The log grows past 10; the second tab, which showed 10 frames, cannot see that it went back.
  last = 12;
  sockets[2].at(-1).close();
  await waitFor(second, async () => from(2).length >= 2, 'the second tab sends it again');
  assert.equal(from(2).at(-1).seen, 0, 'not the 10 it had loaded before the first tab lowered it');
  const list = await second.evaluate(() => JSON.parse(Object.entries(localStorage).find(([k]) => k.endsWith(':pending'))?.[1] || '[]'));
  assert.deepEqual(list.map((p) => p.seenSeq), [0]);
  assert.deepEqual(errors, []);
  await context.close();
});
