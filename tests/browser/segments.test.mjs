// The segment builder in the staff console (/console/segments), in real
// Chromium on SQLite and PostgreSQL: a live count as the expression is typed,
// a parse error at its column next to the field (zh, then en), saving and
// opening a segment, its CSV; and what a store manager may not open.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { BACKENDS, BIN, CHROMIUM, launch, offlineContext, screenshot, signInConsole, startChain } from './support.mjs';

const ADMIN = { username: 'hq_lin', password: 'correct-horse-battery' };
const MANAGER = { username: 'cd01_wang', password: 'manager-password-01', role: 'store_manager', store: 'CD01' };
const STORES = [
  { code: 'CD01', name: '春熙路店', region: '西南', city: '成都' },
  { code: 'CQ02', name: '解放碑店', region: '西南', city: '重庆' },
];
const MEMBERS = [
  { phone: '13800000001', name: '王一', city: '成都', home_store: 'CD01', tags: ['辣', 'VIP'] },
  { phone: '13800000002', name: '王二', city: '成都', home_store: 'CD01', tags: ['辣'] },
  { phone: '13800000003', name: '王三', city: '重庆', home_store: 'CQ02', tags: ['辣'] },
  { phone: '13800000004', name: '王四', city: '成都', home_store: 'CD01', tags: [] },
  { phone: '13800000005', name: '王五', city: '成都', home_store: 'CD01', tags: ['辣'] },
];

let browser;
let browserError;

before(async () => {
  try {
    assert.ok(existsSync(BIN), `${BIN} not found: run cargo build --bin regulars (or set REGULARS_BIN)`);
    assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}`);
    browser = await launch();
  } catch (e) {
    browserError = e;
  }
});

after(async () => {
  await browser?.close();
});

const text = (page, selector) => page.locator(selector).first().innerText().then((t) => t.trim());

async function waitFor(page, selector, pattern) {
  await page
    .waitForFunction(
      ([s, p]) => new RegExp(p).test(document.querySelector(s)?.textContent.trim() ?? ''),
      [selector, pattern.source],
      { timeout: 10_000 },
    )
    .catch(async () => {
      assert.fail(`${selector} shows "${await page.locator(selector).first().textContent().catch(() => '(none)')}", expected ${pattern}`);
    });
}

for (const backend of BACKENDS) {
  describe(`segments on ${backend.name}`, () => {
    let chain;
    let setupError;

    before(async () => {
      try {
        chain = await startChain(backend, { admin: ADMIN, stores: STORES, members: MEMBERS });
        // A store-scoped user needs the store first (startChain makes users before stores).
        await chain.run(
          ['user', 'create', '--username', MANAGER.username, '--role', MANAGER.role, '--store', MANAGER.store, '--password-stdin'],
          `${MANAGER.password}\n`,
        );
        // 王五 is kept at gold (a tier floor), the others are regular.
        const gold = chain.members[4].id;
        const res = await fetch(`${chain.base}/api/v1/members/${gold}/tier-floor`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${chain.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ tier: 'gold', until: '2099-12-31', reason: '老朋友' }),
        });
        assert.equal(res.status, 200, await res.text());
      } catch (e) {
        setupError = e;
      }
    });

    after(async () => {
      await chain?.stop();
    });

    const check = (name, fn) =>
      test(name, async () => {
        if (browserError) throw browserError;
        if (setupError) throw setupError;
        const context = await offlineContext(browser);
        try {
          await fn(await context.newPage());
          assert.deepEqual(context.external, []);
        } finally {
          await context.close();
        }
      });

    check('the count follows the expression, a mistake shows its column, a saved segment keeps its count', async (page) => {
      await signInConsole(page, chain.base, ADMIN.username, ADMIN.password);
      await page.click('#nav-segments');
      assert.equal(new URL(page.url()).pathname, '/console/segments');

      await page.fill('#expression', 'city = "成都" and tag = "辣"');
      await waitFor(page, '#segment-count', /^3$/);
      assert.match(await text(page, '#live-count'), /3 位会员符合条件/);
      await page.fill('#expression', 'city = "成都" and tag = "辣" and tier >= gold');
      await waitFor(page, '#segment-count', /^1$/);

      // An unfinished expression: the message names the column, no count.
      const broken = 'city = "成都" and';
      await page.fill('#expression', broken);
      await waitFor(page, '#expression-error', /^第 \d+ 列有误/);
      const column = Number((await text(page, '#expression-error')).match(/第 (\d+) 列/)[1]);
      assert.equal(column, [...broken].length + 1, 'the column is just past the end');
      assert.equal(await page.locator('#segment-count').count(), 0);
      assert.equal(await page.locator('#expression-pointer mark').count(), 1);
      if (backend.screenshot) await screenshot(page, `${backend.name}-segment-builder-error`);

      await page.fill('#expression', 'city = "成都" and tag = "辣"');
      await waitFor(page, '#segment-count', /^3$/);
      if (backend.screenshot) await screenshot(page, `${backend.name}-segment-builder`);

      // Saving without a name is refused next to the name.
      let [res] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#segment-save')]);
      await page.waitForLoadState('load');
      assert.equal(res.status(), 422);
      assert.equal(await text(page, '.field-error[data-for="name"]'), '请填写分群名称（1–100 字）');
      assert.equal(await page.inputValue('#expression'), 'city = "成都" and tag = "辣"');
      assert.equal(await text(page, '#segment-count'), '3');

      await page.fill('#segment-name', '成都嗜辣会员');
      [res] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#segment-save')]);
      await page.waitForLoadState('load');
      assert.equal(res.status(), 303);
      assert.match(new URL(page.url()).pathname, /^\/console\/segments\/[0-9a-f-]+$/);
      assert.equal(await text(page, '#segment-title'), '成都嗜辣会员');
      assert.equal(await text(page, '#segment-count'), '3');
      const phones = await page.$$eval('#segment-members tbody td.phone', (tds) => tds.map((td) => td.textContent.trim()).sort());
      assert.deepEqual(phones, ['138****0001', '138****0002', '138****0005']);
      assert.equal(await page.content().then((html) => html.includes('13800000001')), false, 'no full phone on the page');

      // The CSV has the same members, masked.
      const csv = await page.request.get(`${chain.base}${await page.getAttribute('#segment-export', 'href')}`);
      assert.equal(csv.status(), 200);
      assert.match(csv.headers()['content-type'], /^text\/csv/);
      const lines = (await csv.text()).trim().split('\n');
      assert.equal(lines.length, 4);
      assert.ok(lines.slice(1).every((l) => /138\*\*\*\*000[125]/.test(l)));

      await page.click('#nav-segments');
      const saved = page.locator('#segments tbody tr');
      assert.equal(await saved.count(), 1);
      assert.match(await saved.first().innerText(), /成都嗜辣会员/);

      // Delete a second segment.
      await page.fill('#expression', 'vip = true');
      await waitFor(page, '#segment-count', /^0$/);
      await page.fill('#segment-name', '临时');
      await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#segment-save')]);
      await page.waitForLoadState('load');
      await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#segment-delete button')]);
      await page.waitForLoadState('load');
      assert.equal(new URL(page.url()).pathname, '/console/segments');
      assert.equal(await page.locator('#segments tbody tr').count(), 1);
    });

    check('in English the parse message names the column too', async (page) => {
      await signInConsole(page, chain.base, ADMIN.username, ADMIN.password);
      await page.goto(`${chain.base}/console/segments`);
      await page.click('#lang-switch');
      await page.waitForLoadState('load');
      await page.fill('#expression', 'tier = platinum');
      await waitFor(page, '#expression-error', /^Column 8: /);
      await page.fill('#expression', 'tag = "辣"');
      await waitFor(page, '#live-count', /^4 members match$/);
      await page.click('#lang-switch');
    });

    check('a store manager sees no Loyalty link and gets 403 on /console/loyalty', async (page) => {
      await signInConsole(page, chain.base, MANAGER.username, MANAGER.password);
      assert.equal(await page.locator('#nav-loyalty').count(), 0);
      assert.equal(await page.locator('#nav-segments').count(), 1);
      for (const path of ['/console/loyalty', '/console/loyalty/tiers', '/console/loyalty/rewards', '/console/loyalty/coupons']) {
        const res = await page.goto(`${chain.base}${path}`);
        assert.equal(res.status(), 403, path);
        assert.match(await text(page, 'h1'), /^没有权限/);
      }
      // Segments count the manager's own store only; saving is not offered.
      await page.goto(`${chain.base}/console/segments`);
      assert.equal(await page.locator('#segment-save').count(), 0);
      await page.fill('#expression', 'tag = "辣"');
      await waitFor(page, '#segment-count', /^3$/);
    });
  });
}
