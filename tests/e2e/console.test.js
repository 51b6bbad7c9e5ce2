// A customer in the widget and an agent in the console, each in their own browser context, against
// the real server (started by scripts/e2e.sh with the demo agent and without automatic assignment,
// so the agent claims).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  SERVER, connText, consoleLogin, consoleMessages, consoleToken, conversationId, editorLogin, isOnline, launch, newPage,
  openChat, screenshot, send, shopAs, shownSeqs, waitFor, widgetText,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const unique = () => Math.random().toString(36).slice(2, 8);

/** A customer in the shop's widget, and the agent console signed in (1440×900). */
async function customerAndAgent(name) {
  const customer = await newPage(browser);
  const email = `${name.split(' ')[0].toLowerCase()}.${unique()}@example.com`;
  const w = await openChat(customer.page, await shopAs(customer.page, { name, email }));
  const agent = await newPage(browser, { viewport: { width: 1440, height: 900 } });
  return { customer, w, agent, email };
}

/** The customer asks for a person; the agent claims the conversation from the queue. */
async function handOver({ customer, w, agent }) {
  // Signed in first: with nobody online the customer would be offered the email form instead.
  if (!(await agent.page.locator('#app').isVisible())) await consoleLogin(agent.page);
  await w.human.click();
  await w.banner.filter({ hasText: 'Waiting for a person' }).waitFor();
  const id = conversationId(customer.frames);
  assert.ok(id, 'the widget got its conversation id');
  const item = agent.page.locator(`#queue .item[data-id="${id}"]`);
  await item.waitFor();
  await item.locator('.claim').click();
  await agent.page.locator(`#mine .item[data-id="${id}"]`).waitFor();
  await agent.page.locator('#composer').waitFor();
  return id;
}

async function agentSends(page, text) {
  await page.locator('#input').fill(text);
  await page.locator('#input').press('Enter');
}

test('handoff: article answer, queue, claim with context, typing both ways, private note, resolve and rating', async () => {
  const { customer, w, agent } = await customerAndAgent('Ana Lima');
  const { page: cpage } = customer;
  const { page: apage } = agent;

  // The bot answers from the knowledge base.
  await send(cpage, 'I was charged twice for one order');
  const answer = w.bot.last();
  await answer.locator('.sources a', { hasText: 'Why was I charged twice?' }).waitFor();

  // The customer asks for a person and is told where they are in line.
  await consoleLogin(apage); // an agent is online, so the customer is told a place in line
  await w.human.click();
  await w.banner.filter({ hasText: 'Waiting for a person' }).waitFor();
  await waitFor(cpage, async () => /in line/.test(await w.banner.textContent()), 'the banner shows the place in line');
  const id = conversationId(customer.frames);

  // The agent sees it in the queue (reason, preview, a waiting time that counts up) and claims it.
  const item = apage.locator(`#queue .item[data-id="${id}"]`);
  await item.waitFor();
  assert.match(await item.locator('.badges').textContent(), /human request/);
  assert.equal(await item.locator('.cname').textContent(), 'Ana Lima');
  assert.match(await apage.title(), /waiting/);
  const wait1 = await item.locator('.wait').textContent();
  await waitFor(apage, async () => (await item.locator('.wait').textContent()) !== wait1, 'the waiting time counts up');
  await item.click(); // a look before claiming: transcript and context, and a Claim button
  await apage.locator('#ctx .summary').filter({ hasText: 'charged twice' }).waitFor();
  await apage.locator('#claim').click();
  await apage.locator(`#mine .item[data-id="${id}"]`).waitFor();
  await apage.locator('#composer').waitFor();
  assert.equal(await apage.locator('#claim').isVisible(), false);

  // The context packet tells the story.
  const ctx = apage.locator('#ctx');
  assert.match(await ctx.locator('.summary').textContent(), /charged twice/);
  assert.match(await ctx.textContent(), /human request/);
  assert.match(await ctx.locator('.articles').textContent(), /Why was I charged twice\?/);
  assert.match(await ctx.locator('.kv').last().textContent(), /Ana Lima.*@example\.com.*\/shop\/checkout/);
  assert.equal(await ctx.locator('.spark .bar').count(), 1, 'one customer turn so far');
  const shown = await consoleMessages(apage);
  assert.deepEqual(shown.slice(0, 2).map((m) => m.who), ['customer', 'bot']);
  assert.equal(shown[0].text, 'I was charged twice for one order');
  assert.ok((await answer.locator('.bubble').textContent()).startsWith(shown[1].text), 'the bot’s answer as the customer saw it');
  await apage.locator('#transcript .msg.bot .sources a', { hasText: 'Why was I charged twice?' }).waitFor();

  // The customer is told who joined.
  await w.log.locator('.note', { hasText: 'Demo joined the chat' }).waitFor();
  await w.banner.filter({ hasText: "You're chatting with Demo" }).waitFor();

  // Typing shows both ways.
  await apage.locator('#input').pressSequentially('Hi Ana', { delay: 20 });
  await w.w('.typing').filter({ hasText: 'Demo is typing' }).waitFor();
  await w.input.pressSequentially('It was order 1234', { delay: 20 });
  await apage.locator('#typing').filter({ hasText: 'Ana is typing' }).waitFor();

  // Messages both ways.
  await apage.locator('#input').press('Enter');
  await w.w('.msg.agent .bubble').filter({ hasText: 'Hi Ana' }).waitFor();
  assert.equal(await w.w('.msg.agent .who').first().textContent(), 'Demo');
  await w.input.press('Enter');
  await apage.locator('#transcript .msg.customer .bubble', { hasText: 'It was order 1234' }).waitFor();
  await waitFor(apage, async () => await apage.locator('#typing').isHidden(), 'the typing indicator goes once the message is in');

  // A private note: shown to agents, yellow, never to the customer.
  await apage.locator('#mode-note').click();
  await agentSends(apage, 'SECRET-NOTE: refund approved by finance');
  const note = apage.locator('#transcript .msg.note');
  await note.waitFor();
  assert.match(await note.textContent(), /Private note.*Demo.*SECRET-NOTE: refund approved by finance/);
  assert.equal(await note.locator('.bubble').evaluate((b) => getComputedStyle(b).backgroundColor), 'rgb(255, 247, 214)');
  await apage.locator('#mode-reply').click();

  // A knowledge-base passage goes into the reply, with its link.
  await apage.locator('#kb-btn').click();
  await apage.locator('#kb-q').fill('charged twice');
  await apage.locator('#kb-results li', { hasText: 'Why was I charged twice?' }).first().locator('.insert').click();
  const drafted = await apage.locator('#input').inputValue();
  assert.match(drafted, /More here: https?:\/\/\S+/);
  await apage.locator('#input').press('Enter');
  await w.w('.msg.agent .bubble').filter({ hasText: 'More here:' }).waitFor();

  // A canned reply with "/".
  await apage.locator('#input').pressSequentially('/anyth');
  await apage.locator('#canned-menu .opt[data-key=anything]').waitFor();
  await apage.locator('#input').press('Enter');
  assert.equal(await apage.locator('#input').inputValue(), 'Is there anything else I can help you with today?');
  await apage.locator('#input').press('Enter');
  await w.w('.msg.agent .bubble').filter({ hasText: 'anything else' }).waitFor();

  await apage.locator('#transcript').evaluate((t) => { t.scrollTop = t.scrollHeight; });
  await screenshot(apage, 'console.png');

  // Resolve: the customer rates, the agent sees it, and it is stored.
  await apage.locator('#resolve').click();
  const card = w.w('form.card').filter({ hasText: 'How did we do?' });
  await card.waitFor();
  await card.getByRole('button', { name: '5 out of 5' }).click();
  await card.locator('textarea').fill('Sorted in two minutes');
  await card.getByRole('button', { name: 'Submit' }).click();
  await w.log.getByText('You rated this chat 5 out of 5').waitFor();
  await apage.locator('#transcript .sys.rated', { hasText: 'Rated 5/5 — “Sorted in two minutes”' }).waitFor();
  assert.equal(await apage.locator('#composer').isVisible(), false, 'a resolved chat is read-only');

  const token = await consoleToken(apage);
  const stored = await (await fetch(`${SERVER}/api/conversations/${id}`, { headers: { authorization: `Bearer ${token}` } })).json();
  assert.equal(stored.handoffs.at(-1).csat_score, 5);
  assert.equal(stored.handoffs.at(-1).csat_comment, 'Sorted in two minutes');
  assert.equal(stored.notes[0].text, 'SECRET-NOTE: refund approved by finance');

  // The note never reached the customer: not on screen, not on the wire, not after a reload.
  assert.doesNotMatch(await widgetText(cpage), /SECRET-NOTE/);
  assert.ok(!JSON.stringify(customer.frames).includes('SECRET-NOTE'));
  await cpage.reload();
  await w.w('.msg.agent').first().waitFor();
  assert.doesNotMatch(await widgetText(cpage), /SECRET-NOTE/);

  assert.deepEqual(customer.errors, []);
  assert.deepEqual(agent.errors, []);
  await customer.context.close();
  await agent.context.close();
});

test('offline: the agent writes while the customer has no network; each message arrives once, in order', async () => {
  const parts = await customerAndAgent('Otto Brandt');
  const { customer, w, agent } = parts;
  // ("is anyone there?" would be heard as asking for a person and go straight to the queue.)
  await send(customer.page, 'hello, how do i descale my brewer?');
  await w.bot.first().waitFor();
  await handOver(parts);
  await w.log.locator('.note', { hasText: 'Demo joined the chat' }).waitFor();

  await customer.context.setOffline(true);
  await waitFor(customer.page, () => connText(customer.page).then((t) => /offline/i.test(t)), 'the widget shows it is offline');
  const texts = ['first while you were offline', 'second while you were offline', 'third while you were offline'];
  for (const text of texts) await agentSends(agent.page, text);
  await waitFor(agent.page, async () => {
    const sent = (await consoleMessages(agent.page)).filter((m) => m.who === 'agent');
    return sent.length === 3 && sent.every((m) => !m.pending);
  }, 'the server stores the three messages');
  await customer.page.waitForTimeout(500);

  await customer.context.setOffline(false);
  const agentTexts = () => customer.page.evaluate(() => [...document.querySelector('frontdesk-chat').shadowRoot.querySelectorAll('.msg.agent .bubble')].map((b) => b.textContent));
  await waitFor(customer.page, async () => (await agentTexts()).length >= 3, 'the messages arrive');
  await waitFor(customer.page, () => isOnline(customer.page), 'the widget is back online');
  await customer.page.waitForTimeout(1000); // anything arriving twice would be in by now
  const check = async (when) => {
    assert.deepEqual(await agentTexts(), texts, when);
    const seqs = await shownSeqs(customer.page);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), `${when}: each frame once, in sequence order`);
  };
  await check('after reconnecting');
  await customer.page.reload();
  await w.w('.msg.agent').nth(2).waitFor();
  await waitFor(customer.page, () => isOnline(customer.page), 'the widget reconnects');
  await check('after a reload');
  await agent.page.locator('#resolve').click(); // the demo agent's chats are few
  await w.w('form.card').waitFor();

  assert.deepEqual(customer.errors, []);
  assert.deepEqual(agent.errors, []);
  await customer.context.close();
  await agent.context.close();
});

test('offline for long: 300 long messages (over a megabyte) come back in pages, each once and in order', async () => {
  const parts = await customerAndAgent('Paula Grant');
  const { customer, w, agent } = parts;
  await send(customer.page, 'hello, how do i descale my brewer?');
  await w.bot.first().waitFor();
  const id = await handOver(parts);
  await w.log.locator('.note', { hasText: 'Demo joined the chat' }).waitFor();

  await customer.context.setOffline(true);
  await waitFor(customer.page, () => connText(customer.page).then((t) => /offline/i.test(t)), 'the widget shows it is offline');
  // About 1.2 MB, more than one welcome carries (256 KiB). A second console tab of the agent's writes
  // them, each stored before the next (typing 300 messages into the composer would take minutes).
  const texts = Array.from({ length: 300 }, (_, i) => `part ${i + 1}: ` + 'the long answer, '.repeat(225).trim());
  const written = await agent.page.evaluate(async ({ id, texts }) => {
    const url = new URL('/ws/agent', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    let waiting = null;
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      if (f.type === 'ready' || (f.type === 'event' && f.conversation_id === id && f.frame.from === 'agent')) waiting?.(f);
    };
    const next = () => new Promise((ok) => { waiting = ok; });
    const ready = next();
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: localStorage.getItem('frontdesk.console.token') }));
    await ready;
    let stored = 0;
    for (const [i, text] of texts.entries()) {
      const echo = next();
      ws.send(JSON.stringify({ type: 'message', conversation_id: id, text, client_id: `long-${i}` }));
      if ((await echo).frame.text === text) stored += 1;
    }
    ws.close();
    return stored;
  }, { id, texts });
  assert.equal(written, texts.length, 'the server stored every message');

  const welcomesBefore = customer.frames.filter((f) => f.type === 'welcome').length;
  await customer.context.setOffline(false);
  const agentTexts = () => customer.page.evaluate(() => [...document.querySelector('frontdesk-chat').shadowRoot.querySelectorAll('.msg.agent .bubble')].map((b) => b.textContent));
  await waitFor(customer.page, async () => (await agentTexts()).length >= texts.length, 'the messages arrive', 60000);
  await waitFor(customer.page, () => isOnline(customer.page), 'the widget is back online');
  await customer.page.waitForTimeout(1000); // anything arriving twice would be in by now
  assert.deepEqual(await agentTexts(), texts, 'every message once, in order');
  const seqs = await shownSeqs(customer.page);
  assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'each frame once, in sequence order');
  const pages = customer.frames.filter((f) => f.type === 'welcome').slice(welcomesBefore).filter((f) => f.missed?.length);
  assert.ok(pages.length >= 2, `the missed frames came in pages (${pages.length} welcome(s) with frames)`);
  await agent.page.locator('#resolve').click(); // the demo agent's chats are few
  await w.w('form.card').waitFor();

  assert.deepEqual(customer.errors, []);
  assert.deepEqual(agent.errors, []);
  await customer.context.close();
  await agent.context.close();
});

test('markup is text both ways: the console shows the customer’s, the widget shows the agent’s', async () => {
  const parts = await customerAndAgent('Mallory <b>Evil</b>');
  const { customer, w, agent } = parts;
  const evil = '<img src=x onerror="window.__xss=1">hi <b>bold</b><script>window.__xss=2</script>';
  await send(customer.page, evil);
  await w.bot.first().waitFor();
  await consoleLogin(agent.page);
  await w.human.click();
  await w.banner.filter({ hasText: 'Waiting for a person' }).waitFor();
  const id = conversationId(customer.frames);
  const item = agent.page.locator(`#queue .item[data-id="${id}"]`);
  await item.waitFor();
  assert.equal(await item.locator('.cname').textContent(), 'Mallory <b>Evil</b>');
  await item.locator('.claim').click();
  await agent.page.locator('#composer').waitFor();

  const fromCustomer = agent.page.locator('#transcript .msg.customer .bubble').first();
  await fromCustomer.waitFor();
  assert.equal(await fromCustomer.textContent(), evil);
  await agentSends(agent.page, evil);
  const fromAgent = w.w('.msg.agent .bubble').first();
  await fromAgent.waitFor();
  assert.equal(await fromAgent.textContent(), evil);

  // No element made from the text: none in the bubbles or the lists, no img or script anywhere.
  const inConsole = await agent.page.evaluate(() => ({
    xss: window.__xss,
    markup: document.querySelectorAll('#app img, #app script, #app [onerror], #transcript .bubble *, #mine .cname *, #ctx .summary *').length,
  }));
  assert.deepEqual(inConsole, { xss: undefined, markup: 0 });
  const inWidget = await customer.page.evaluate(() => ({
    xss: window.__xss,
    markup: document.querySelector('frontdesk-chat').shadowRoot.querySelectorAll('.log img, .log script, .log b').length,
  }));
  assert.deepEqual(inWidget, { xss: undefined, markup: 0 });
  await agent.page.locator('#resolve').click();
  await w.w('form.card').waitFor();
  assert.deepEqual(customer.errors, []);
  assert.deepEqual(agent.errors, []);
  await customer.context.close();
  await agent.context.close();
});

test('the console: a new conversation is announced; away and back; a reload keeps the chats', async () => {
  const agent = await newPage(browser, { viewport: { width: 1440, height: 900 } });
  await consoleLogin(agent.page);
  const token = await consoleToken(agent.page);
  const agents = async () => (await (await fetch(`${SERVER}/api/agents`, { headers: { authorization: `Bearer ${token}` } })).json()).agents;

  const customer = await newPage(browser);
  const w = await openChat(customer.page, await shopAs(customer.page, { name: 'Nia Okafor', email: `nia.${unique()}@example.com` }));
  await w.human.click();
  const id = await waitFor(customer.page, async () => conversationId(customer.frames), 'the conversation starts');
  const item = agent.page.locator(`#queue .item[data-id="${id}"]`);
  await item.waitFor();
  assert.ok(await item.evaluate((n) => n.classList.contains('fresh')), 'the new conversation is highlighted');
  assert.equal(await agent.page.evaluate(() => document.documentElement.dataset.attention), 'New conversation waiting');

  await agent.page.locator('#presence').click();
  assert.equal(await agent.page.locator('#presence').getAttribute('aria-checked'), 'false');
  await waitFor(agent.page, async () => (await agents()).some((a) => a.name === 'Demo' && a.status === 'away'), 'the server knows the agent is away');
  await agent.page.locator('#presence').click();
  await waitFor(agent.page, async () => (await agents()).some((a) => a.name === 'Demo' && a.status === 'online'), 'and back online');

  await item.locator('.claim').click();
  await agentSends(agent.page, 'Hello Nia, one moment please');
  await w.w('.msg.agent .bubble').filter({ hasText: 'Hello Nia' }).waitFor();
  const said = `My order number is TW-${unique()}`;
  await send(customer.page, said);
  await agent.page.locator('#transcript .msg.customer .bubble', { hasText: said }).waitFor();
  await agent.page.reload(); // the token is kept; the chat comes back from the server
  await agent.page.locator('#conn.ok').waitFor();
  await agent.page.locator(`#mine .item[data-id="${id}"]`).waitFor();
  await agent.page.locator('#transcript .msg.agent .bubble', { hasText: 'Hello Nia' }).waitFor();
  assert.equal(await agent.page.locator('#transcript .msg.agent').count(), 1);
  await agent.page.locator('#input').fill('A draft for Nia, never sent');
  await agent.page.locator('#resolve').click();
  await w.w('form.card').waitFor();

  // A second console tab of the agent's, open when they sign out in the first, signs out with it;
  // signing in again in the first signs it in too.
  const other = await agent.context.newPage();
  other.on('pageerror', (e) => agent.errors.push(e.message));
  await other.goto(SERVER + '/console');
  await other.locator('#conn.ok').waitFor();
  await agent.page.locator('#logout').click();
  await agent.page.locator('#login-form').waitFor();
  assert.equal(await consoleToken(agent.page), null);
  await other.locator('#login-form').waitFor();
  assert.equal(await other.locator('#app').isVisible(), false, 'the other tab shows nothing of the desk');
  // (Told by the storage event, or by the server closing its socket as the token ended.)
  assert.match(await other.locator('#login-error').textContent(), /signed out in another tab|session has ended/);
  await agent.page.locator('#login-email').fill('demo@example.com');
  await agent.page.locator('#login-password').fill('demo');
  await agent.page.getByRole('button', { name: 'Sign in' }).click();
  await agent.page.locator('#conn.ok').waitFor();
  await other.locator('#conn.ok').waitFor();
  // Signed in once more elsewhere before these tabs heard of it (two tabs signing in at about the
  // same time): they start as the newer session and end the one they held on the server, so no
  // session stays valid with nobody keeping it.
  const held = await consoleToken(agent.page);
  for (const tab of [agent.page, other]) await tab.evaluate(() => { window.beforeTheSignIn = true; });
  const site = await agent.context.newPage();
  await site.goto(SERVER + '/');
  const newer = await site.evaluate(async () => {
    const res = await fetch('/api/agent/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'demo@example.com', password: 'demo' }),
    });
    const { token } = await res.json();
    localStorage.setItem('frontdesk.console.token', token); // as the console's sign-in does
    return token;
  });
  await site.close();
  const statusWith = async (t) => (await fetch(`${SERVER}/api/agents`, { headers: { authorization: `Bearer ${t}` } })).status;
  for (const tab of [agent.page, other]) {
    await waitFor(tab, async () => tab.evaluate(() => !window.beforeTheSignIn && document.querySelector('#conn.ok') !== null), 'the tab starts again as the newer session');
  }
  await waitFor(agent.page, async () => (await statusWith(held)) === 401, 'the session the tabs held is ended');
  assert.equal(await statusWith(newer), 200, 'the newer one works');
  // A tab that has not heard of a newer sign-in (its own write to the storage raises no event in
  // it: as a tab that was asleep) has its session ended under it by the tab that did hear: it
  // signs out, and leaves the newer session to the others rather than signing them all out.
  const newest = (await (await fetch(`${SERVER}/api/agent/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'demo@example.com', password: 'demo' }),
  })).json()).token;
  await agent.page.evaluate(() => { window.beforeTheSignIn = true; });
  await other.evaluate((t) => localStorage.setItem('frontdesk.console.token', t), newest);
  await other.locator('#login-form').waitFor();
  await waitFor(agent.page, async () => agent.page.evaluate(() => !window.beforeTheSignIn && document.querySelector('#conn.ok') !== null), 'the first tab starts again as the newest session');
  await agent.page.waitForTimeout(500); // the other tab's sign-out has had its effect
  assert.equal(await consoleToken(agent.page), newest, 'the newest session stays stored');
  assert.ok(await agent.page.locator('#conn.ok').isVisible(), 'and the first tab signed in');
  assert.equal(await statusWith(newer), 401, 'the session the sleeping tab held is ended');
  await other.close();
  await agent.page.locator('#logout').click();
  await agent.page.locator('#login-form').waitFor();
  // Nothing of the customer's stays in the page after logging out: not their words, their name or
  // the reply drafted to them.
  const left = await agent.page.content();
  assert.ok(!left.includes(said), 'the customer’s message is gone');
  assert.ok(!left.includes('Nia Okafor'), 'the customer’s name is gone');
  assert.equal(await agent.page.locator('#input').inputValue(), '', 'the reply draft is gone');
  assert.deepEqual(customer.errors, []);
  assert.deepEqual(agent.errors, []);
  await customer.context.close();
  await agent.context.close();
});

test('a reply typed while the console could not send it survives a reload (and another tab of the agent writing meanwhile) and reaches the customer once', async () => {
  const parts = await customerAndAgent('Ravi Menon');
  const { customer, w, agent } = parts;
  let hold = false; // while set, the agent's messages never leave the page: as on a dead network
  await agent.page.routeWebSocket(/\/ws\/agent$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => { if (!(hold && JSON.parse(String(m)).type === 'message')) server.send(m); });
  });
  await handOver(parts);
  const other = await agent.context.newPage();
  other.on('pageerror', (e) => agent.errors.push(e.message));
  await other.goto(SERVER + '/console');
  await other.locator('#conn.ok').waitFor();
  await other.locator('#composer').waitFor();
  hold = true;
  const reply = `Your replacement ships today, Ravi (${unique()})`;
  await agentSends(agent.page, reply);
  await agent.page.locator('#transcript .msg.pending', { hasText: reply }).waitFor();
  // Meanwhile a second console tab of the agent's, open since before, writes in the same chat:
  // its saves keep the first tab's reply.
  await agentSends(other, 'I have added a discount too');
  await w.w('.msg.agent .bubble').filter({ hasText: 'I have added a discount too' }).waitFor();
  await other.close();
  hold = false;
  await agent.page.reload(); // the agent reloads the page that seemed stuck
  await agent.page.locator('#conn.ok').waitFor();
  await w.w('.msg.agent .bubble').filter({ hasText: reply }).waitFor();
  await agent.page.locator('#transcript .msg.agent:not(.pending) .bubble', { hasText: reply }).waitFor();
  await customer.page.waitForTimeout(500);
  assert.equal(await w.w('.msg.agent .bubble').filter({ hasText: reply }).count(), 1, 'the customer gets it once');
  assert.equal(await agent.page.evaluate(() => localStorage.getItem('frontdesk.console.pending')), null, 'nothing left unsent');

  // A reply still unsent when the agent resolves the chat is not dropped silently: it stays on
  // screen until dismissed, and out of the kept list.
  hold = true;
  const late = `One more thing, Ravi (${unique()})`;
  await agentSends(agent.page, late);
  await agent.page.locator('#transcript .msg.pending', { hasText: late }).waitFor();
  await agent.page.locator('#resolve').click();
  const notice = agent.page.locator('.toast', { hasText: late });
  await notice.waitFor();
  assert.match(await notice.textContent(), /Not sent to Ravi Menon \(the chat is resolved\)/);
  await agent.page.waitForTimeout(6500);
  assert.equal(await notice.count(), 1, 'it stays until dismissed');
  assert.equal(await agent.page.evaluate(() => localStorage.getItem('frontdesk.console.pending')), null);
  await notice.locator('button', { hasText: 'Dismiss' }).click();
  assert.equal(await notice.count(), 0);
  hold = false;
  assert.deepEqual(customer.errors, []);
  assert.deepEqual(agent.errors, []);
  await customer.context.close();
  await agent.context.close();
});

test('the console keeps a device token per account and brings it to the next sign-in, so guesses elsewhere do not lock the agent out', async () => {
  const { page, errors } = await newPage(browser);
  await editorLogin(page);
  const devices = () => page.evaluate(() => JSON.parse(localStorage.getItem('frontdesk.console.devices') || '{}'));
  const first = (await devices())['editor@example.com'];
  assert.match(first || '', /^d1\./, 'the sign-in left a device token');
  await page.locator('#logout').click();
  await page.locator('#login-email').waitFor();
  assert.equal((await devices())['editor@example.com'], first, 'signing out keeps it (it signs nobody in)');
  const sent = page.waitForRequest((r) => r.url().endsWith('/api/agent/login'));
  await editorLogin(page);
  assert.equal(JSON.parse((await sent).postData()).device, first, 'the next sign-in brings it');
  const renewed = (await devices())['editor@example.com'];
  assert.ok(renewed && renewed !== first, 'each sign-in renews it');
  assert.deepEqual(errors, []);
});
