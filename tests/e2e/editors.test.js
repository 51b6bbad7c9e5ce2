// A content editor in the console's knowledge-base view, against the real server (started by
// scripts/e2e.sh with the demo account and a watched copy of the demo knowledge base in
// FRONTDESK_E2E_KB): a question a customer asked in the widget that the bot could not answer shows
// up, "Try it" shows what the bot would do now, and a file the editor broke is listed as a problem.
import assert from 'node:assert/strict';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SERVER, editorLogin, launch, newPage, openChat, screenshot, send, waitFor } from './helpers.js';

const KB = process.env.FRONTDESK_E2E_KB;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const unique = () => Math.random().toString(36).slice(2, 8);

/**
 * A customer asks `text` in the demo shop's widget and gets the bot's "don't know"; then, if given,
 * asks `answered`, gets an answer and says it did not help.
 */
async function customerAsks(text, answered) {
  const customer = await newPage(browser);
  const { page } = customer;
  const w = await openChat(page);
  await send(page, text);
  const answer = w.bot.first();
  await answer.waitFor();
  assert.match(await answer.locator('.bubble').textContent(), /don't know/, `the bot cannot answer ${text}`);
  if (answered) {
    await send(page, answered);
    const second = w.bot.nth(1);
    await second.locator('.sources a').waitFor();
    await second.locator('.fb [data-action=not_helpful]').click();
    await second.locator('.fb', { hasText: 'Thanks for your feedback!' }).waitFor();
    const seq = Number(await second.getAttribute('data-seq'));
    await waitFor(page, () => customer.frames.some((f) => f.type === 'feedback_ack' && f.seq === seq), 'the server stores the feedback');
  }
  assert.deepEqual(customer.errors, []);
  await customer.context.close();
}

/** The console signed in, switched to the knowledge-base view (with the mouse or the keyboard). */
async function editorView(viewport, keyboard) {
  const editor = await newPage(browser, { viewport });
  await editorLogin(editor.page);
  assert.equal(await editor.page.locator('#view-conversations').isVisible(), false, 'an editor has no queue');
  if (keyboard) {
    await editor.page.locator('#view-editors').focus();
    await editor.page.keyboard.press('Enter');
  } else {
    await editor.page.locator('#view-editors').click();
  }
  await editor.page.locator('#editors').waitFor();
  return editor;
}

test('editors: an unanswered question is listed, "Try it" shows the bot’s decision, a broken file is a problem', async (t) => {
  const ref = unique();
  const question = `Who won the football world cup in 1998? (ref ${ref})`;
  const unhelpful = 'Can I change my delivery address after ordering?';
  await customerAsks(question, unhelpful);

  const editor = await editorView({ width: 1440, height: 900 });
  const { page } = editor;
  assert.equal(await page.locator('#view-editors').getAttribute('aria-current'), 'page');
  assert.equal(await page.locator('#queue').isVisible(), false, 'the conversations are out of the way');

  // The question is in the table with what happened, how often, and when.
  const row = page.locator('#ed-gaps-body tr', { hasText: question });
  await row.waitFor();
  assert.equal(await row.locator('.qtext').textContent(), question);
  assert.match(await row.textContent(), /Didn’t know/);
  assert.match(await row.textContent(), /once/);
  assert.match(await row.locator('time').textContent(), /just now|min ago/);
  assert.match(await page.locator('#ed-gaps-status').textContent(), /asked/);

  // An answer the customer said did not help, with the article it came from and the file to edit.
  const answeredRow = page.locator('#ed-gaps-body tr', { hasText: unhelpful });
  assert.match(await answeredRow.textContent(), /Marked not helpful/);
  const article = answeredRow.locator('.art a');
  assert.ok((await article.getAttribute('href')).startsWith(SERVER + '/kb/'), 'the article as the server has it now');
  assert.match(await answeredRow.locator('.art .path').textContent(), /\.md$/);

  // "Try it" asks the bot now and says what it would do, in words.
  await row.getByRole('button', { name: 'Try it: ' + question }).click();
  assert.equal(await page.locator('#ed-try-q').inputValue(), question);
  const verdict = page.locator('#ed-try-result .verdict');
  await verdict.filter({ hasText: 'The bot would say it doesn’t know' }).waitFor();
  assert.match(await verdict.textContent(), /Add or edit one/);
  assert.equal(await page.evaluate(() => document.activeElement.closest('.verdict') !== null), true, 'focus moves to the verdict');
  const result = page.locator('#ed-try-result');
  assert.match(await result.locator('.ed-conf').textContent(), /Confidence 0\.\d\d · it answers from 0\.\d\d/);
  assert.match(await result.locator('.ed-handoff').textContent(), /Not for this message alone/);
  await page.locator('#editors').evaluate((m) => { m.scrollTop = 0; });
  await screenshot(page, 'console-editors.png');

  // A question the knowledge base answers: the article, the passage the customer would see.
  await page.locator('#ed-try-q').fill('I was charged twice for one order');
  await page.locator('#ed-try-q').press('Enter');
  await verdict.filter({ hasText: 'The bot would answer from “Why was I charged twice?”' }).waitFor();
  assert.match(await result.locator('.ed-said .bubble').textContent(), /authorization hold/);
  assert.match(await result.locator('.ed-handoff').textContent(), /the bot keeps the conversation/);

  // One that goes to a person, with the reasons.
  await page.locator('#ed-try-q').fill('I want to talk to a human');
  await page.locator('#ed-try-go').click();
  await verdict.filter({ hasText: 'A person would take over' }).waitFor();
  assert.match(await result.locator('.ed-reasons').textContent(), /human request/);
  assert.match(await result.locator('.ed-more summary').first().textContent(), /would have answered otherwise/);

  // A file the editor breaks shows up by itself, and goes away once fixed.
  if (KB) {
    const name = `zz-draft-${unique()}.md`;
    const problem = page.locator('#ed-problem-list li', { hasText: name });
    writeFileSync(join(KB, name), '---\ntitle: Gift cards\nno closing fence here\n');
    try {
      await problem.waitFor({ timeout: 15000 });
      assert.match(await problem.locator('.msg').textContent(), /no closing `---` line/);
      assert.match(await problem.textContent(), /not used until it loads/);
      assert.match(await page.locator('#ed-kb-status').textContent(), /One file does not load/);
      assert.equal(await page.locator('#ed-problems').evaluate((s) => s.classList.contains('bad')), true);
    } finally {
      unlinkSync(join(KB, name));
    }
    await problem.waitFor({ state: 'detached', timeout: 15000 });
    assert.match(await page.locator('#ed-kb-status').textContent(), /Every file loads/);
  } else {
    t.diagnostic('FRONTDESK_E2E_KB is not set: the broken-file part needs the server’s knowledge-base folder');
  }

  // A new tab has the stored login but no view remembered (that is per tab): an editor still gets
  // the knowledge base, not an empty Conversations view.
  const tab = await editor.context.newPage();
  const tabErrors = [];
  tab.on('pageerror', (e) => tabErrors.push(e.message));
  await tab.goto(SERVER + '/console');
  await tab.locator('#app').waitFor();
  assert.equal(await tab.locator('#editors').isVisible(), true, 'a new tab opens on the knowledge base');
  assert.equal(await tab.locator('#view-conversations').isVisible(), false, 'and still has no queue');
  assert.deepEqual(tabErrors, []);
  await tab.close();

  // The view survives a reload, and logging out clears what it showed.
  await page.reload();
  await page.locator('#ed-gaps-body tr', { hasText: question }).waitFor();
  await page.locator('#logout').click();
  await page.locator('#login-form').waitFor();
  assert.ok(!(await page.content()).includes(ref), 'no customer question is left in the page');

  // An agent who signs in next on the same tab starts on Conversations, not on the editor's view.
  await page.locator('#login-email').fill('demo@example.com');
  await page.locator('#login-password').fill('demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#conn.ok').waitFor();
  assert.equal(await page.locator('#view-conversations').getAttribute('aria-current'), 'page');
  assert.equal(await page.locator('#queue').isVisible(), true);
  assert.equal(await page.locator('#editors').isVisible(), false);
  await page.locator('#logout').click();
  await page.locator('#login-form').waitFor();
  assert.deepEqual(editor.errors, []);
  await editor.context.close();
});

test('editors: a customer’s markup is text in the report, and the view works on a 360 px phone', async () => {
  const evil = `<img src=x onerror="window.__xss=1">what is <b>this</b> ${unique()}<script>window.__xss=2</script>`;
  await customerAsks(evil);

  const editor = await editorView({ width: 360, height: 740 }, true);
  const { page } = editor;
  const row = page.locator('#ed-gaps-body tr', { hasText: evil });
  await row.waitFor();
  assert.equal(await row.locator('.qtext').textContent(), evil);
  await row.getByRole('button', { name: /^Try it/ }).focus();
  await page.keyboard.press('Enter');
  await page.locator('#ed-try-result .verdict .asked', { hasText: evil }).waitFor();
  const injected = await page.evaluate(() => ({
    xss: window.__xss,
    markup: document.querySelectorAll('#editors img, #editors script, #editors [onerror], #ed-gaps-body .qtext *, #ed-try-result .asked *').length,
  }));
  assert.deepEqual(injected, { xss: undefined, markup: 0 });

  // Nothing wider than the screen, and the table reads as one card per question.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  assert.equal(await row.locator('td').first().evaluate((td) => getComputedStyle(td).display), 'grid');
  assert.equal(await page.locator('#view-editors').isVisible(), true);
  await page.locator('#ed-try-q').fill('How do I reset my password?');
  await page.keyboard.press('Enter');
  await page.locator('#ed-try-result .verdict.answered').waitFor();
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, 'console-editors-mobile.png');
  assert.deepEqual(editor.errors, []);
  await editor.context.close();
});

test('editors: the report and "Try it" need a login', async () => {
  for (const path of ['/api/reports/gaps', '/api/explain?q=hello', '/api/kb/articles', '/api/kb/search?q=refund']) {
    const res = await fetch(SERVER + path);
    assert.equal(res.status, 401, path);
    assert.match((await res.json()).message, /log in/, path);
  }
});
