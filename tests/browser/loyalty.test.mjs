// Loyalty setup in the staff console (/console/loyalty), in real Chromium on
// SQLite and PostgreSQL: the earning-rule preview changes when a rule is
// added, bad rule input is refused next to its fields (zh, then en), and the
// tier, rewards and coupon pages load and create.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { BACKENDS, BIN, CHROMIUM, launch, offlineContext, screenshot, signInConsole, startChain } from './support.mjs';

const ADMIN = { username: 'hq_lin', password: 'correct-horse-battery' };
const MARKETING = { username: 'mkt_zhou', password: 'marketing-password-1', role: 'marketing' };
const STORES = [{ code: 'CD01', name: '春熙路店', region: '西南', city: '成都' }];

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

/** Wait until an element's text is `expected` (htmx answers after a delay). */
async function waitText(page, selector, expected) {
  await page.waitForFunction(
    ([s, e]) => document.querySelector(s)?.textContent.trim() === e,
    [selector, String(expected)],
    { timeout: 10_000 },
  ).catch(async () => {
    assert.fail(`${selector} shows "${await page.locator(selector).first().textContent().catch(() => '(none)')}", expected "${expected}"`);
  });
}

async function previewLines(page) {
  return page.$$eval('#preview-lines tbody tr', (rows) =>
    rows.map((tr) => ({ rule: tr.dataset.rule, text: tr.cells[0].textContent.trim(), points: Number(tr.cells[1].textContent) })),
  );
}

async function submit(page, button) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click(button),
  ]);
  await page.waitForLoadState('load');
  return response;
}

for (const backend of BACKENDS) {
  describe(`loyalty setup on ${backend.name}`, () => {
    let chain;
    let setupError;

    before(async () => {
      try {
        chain = await startChain(backend, { admin: ADMIN, stores: STORES, users: [MARKETING] });
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

    check('an earning rule changes the preview of a sample order, with a line naming the rule', async (page) => {
      await signInConsole(page, chain.base, ADMIN.username, ADMIN.password);
      assert.equal(await page.locator('#nav-loyalty').count(), 1);
      await page.click('#nav-loyalty');
      assert.equal(new URL(page.url()).pathname, '/console/loyalty');
      assert.equal(await text(page, '#rules-version'), '0');

      // A Tuesday afternoon dine-in order: ¥88 + 2 × ¥12 = ¥112.
      await page.selectOption('#sample-store', 'CD01');
      await page.selectOption('#sample-channel', 'dine_in');
      await page.selectOption('#sample-tier', 'regular');
      const rows = page.locator('#sample-items tbody tr');
      await rows.nth(0).locator('input[name=item_category]').fill('hotpot');
      await rows.nth(0).locator('input[name=item_price]').fill('88');
      await rows.nth(1).locator('input[name=item_price]').fill('12');
      await rows.nth(1).locator('input[name=item_qty]').fill('2');
      await page.fill('#sample-at', '2026-03-03T15:00');
      await waitText(page, '#preview-points', '112');
      assert.deepEqual(await previewLines(page), [{ rule: 'base', text: '消费 ¥112 × 1 分/元 = 112', points: 112 }]);
      // The page's address keeps the sample.
      await page.waitForFunction(() => location.search.includes('at=2026-03-03T15'));

      // Weekdays 14:00–17:00 ×2.
      await page.fill('#rule-name', '工作日下午茶 ×2');
      await page.selectOption('#rule-kind', 'multiplier');
      await page.fill('#rule-multiplier', '2');
      for (const d of ['1', '2', '3', '4', '5']) await page.check(`#rule-weekdays input[value="${d}"]`);
      await page.fill('#rule-time-from', '14:00');
      await page.fill('#rule-time-to', '17:00');
      const saved = await submit(page, '#rule-save');
      assert.equal(saved.status(), 303);
      assert.equal(await text(page, '#saved'), '已保存为新版本');
      assert.equal(await text(page, '#rules-version'), '1');
      const ruleRow = page.locator('#rules tbody tr');
      assert.equal(await ruleRow.count(), 1);
      assert.match(await ruleRow.first().innerText(), /工作日下午茶 ×2[\s\S]*周一至周五 14:00–17:00 积分 ×2/);

      // The same sample now earns double, and says why.
      assert.equal(await page.inputValue('#sample-at'), '2026-03-03T15:00');
      await waitText(page, '#preview-points', '224');
      const lines = await previewLines(page);
      assert.equal(lines.length, 2);
      assert.equal(lines[1].text, '工作日下午茶 ×2 ×2: +112');
      assert.equal(lines[1].points, 112);
      assert.equal(await text(page, '#preview-version'), '1');

      // Live: one more dessert is ¥124, ×2 is 248; in the evening the rule is off.
      await rows.nth(1).locator('input[name=item_qty]').fill('3');
      await waitText(page, '#preview-points', '248');
      await page.fill('#sample-at', '2026-03-03T19:00');
      await waitText(page, '#preview-points', '124');

      // A category bonus on hot pot: ¥88 at ×1.5 adds 44.
      await page.fill('#rule-name', '锅底加倍');
      await page.selectOption('#rule-kind', 'product_bonus');
      await page.fill('#rule-multiplier', '1.5');
      await page.fill('#rule-categories', 'hotpot');
      assert.equal((await submit(page, '#rule-save')).status(), 303);
      await waitText(page, '#preview-points', '168');
      const bonus = (await previewLines(page)).find((l) => l.text.startsWith('锅底加倍'));
      assert.ok(bonus, 'a line names the category bonus');
      assert.equal(bonus.points, 44);
      if (backend.screenshot) await screenshot(page, `${backend.name}-loyalty-rules`);
    });

    check('bad rule input shows messages next to the fields, in Chinese then English, and saves nothing', async (page) => {
      await signInConsole(page, chain.base, ADMIN.username, ADMIN.password);
      await page.goto(`${chain.base}/console/loyalty`);
      const version = await text(page, '#rules-version');
      const count = await page.locator('#rules tbody tr').count();

      await page.fill('#rule-name', '');
      await page.selectOption('#rule-kind', 'multiplier');
      await page.fill('#rule-multiplier', 'abc');
      await page.fill('#rule-time-from', '14:00');
      await page.fill('#rule-time-to', '14:00');
      const refused = await submit(page, '#rule-save');
      assert.equal(refused.status(), 422);
      assert.equal(await text(page, '.field-error[data-for="name"]'), '请填写规则名称（1–100 字）');
      assert.equal(await text(page, '.field-error[data-for="effect.permille"]'), '倍数须大于 1、不超过 10（如 2 或 1.5）');
      assert.equal(await text(page, '.field-error[data-for="scope.time_to"]'), '结束时间不能与开始时间相同');
      assert.equal(await page.inputValue('#rule-multiplier'), 'abc', 'the typed value is kept');
      assert.equal(await text(page, '#rules-version'), version);
      assert.equal(await page.locator('#rules tbody tr').count(), count);

      // English after switching; a product bonus without dishes names the field.
      await page.goto(`${chain.base}/console/loyalty`);
      await page.click('#lang-switch');
      await page.waitForLoadState('load');
      await page.fill('#rule-name', 'Dessert bonus');
      await page.selectOption('#rule-kind', 'product_bonus');
      await page.fill('#rule-multiplier', '20');
      assert.equal((await submit(page, '#rule-save')).status(), 422);
      assert.equal(await text(page, '.field-error[data-for="effect.permille"]'), 'Enter a multiplier above 1 and at most 10 (e.g. 2 or 1.5)');
      await page.fill('#rule-multiplier', '2');
      assert.equal((await submit(page, '#rule-save')).status(), 422);
      assert.equal(await text(page, '.field-error[data-for="effect.skus"]'), 'Name at least one SKU or category, or tick new dishes');
      assert.equal(await text(page, '#rules-version'), version);
      await page.click('#lang-switch');
    });

    check('tiers, rewards and coupon templates: pages load, a create works, bad input is refused', async (page) => {
      await signInConsole(page, chain.base, MARKETING.username, MARKETING.password);
      assert.equal(await page.locator('#nav-loyalty').count(), 1, 'marketing sees Loyalty');
      await page.goto(`${chain.base}/console/loyalty/tiers`);
      assert.equal(await page.locator('#tiers tbody tr').count(), 4);
      assert.equal(await page.inputValue('input[name=multiplier_silver]'), '1.2');
      assert.equal(await page.inputValue('input[name=threshold_gold]'), '2000');

      // Gold below silver is refused next to gold's threshold.
      await page.fill('input[name=threshold_gold]', '100');
      assert.equal((await submit(page, '#tiers-save')).status(), 422);
      assert.equal(await text(page, '.field-error[data-for="threshold_gold"]'), '门槛必须高于上一级');
      await page.fill('input[name=threshold_gold]', '2000');
      await page.fill('input[name=multiplier_silver]', '1.3');
      assert.equal((await submit(page, '#tiers-save')).status(), 303);
      assert.equal(await text(page, '#saved'), '已保存');
      assert.equal(await page.inputValue('input[name=multiplier_silver]'), '1.3');

      // A coupon template.
      await page.click('#tab-coupons');
      assert.equal(new URL(page.url()).pathname, '/console/loyalty/coupons');
      await page.fill('#coupon-name', '满200减30');
      await page.selectOption('#coupon-benefit', 'amount_off');
      await page.fill('#coupon-amount', '');
      assert.equal((await submit(page, '#coupon-save')).status(), 422);
      assert.equal(await text(page, '.field-error[data-for="amount_off_fen"]'), '请输入减免金额（元，如 30）');
      await page.fill('#coupon-amount', '30');
      await page.fill('#coupon-min', '200');
      await page.fill('#coupon-days', '30');
      assert.equal((await submit(page, '#coupon-save')).status(), 303);
      const template = page.locator('#coupon-templates tbody tr');
      assert.equal(await template.count(), 1);
      assert.match(await template.first().innerText(), /满200减30/);
      if (backend.screenshot) await screenshot(page, `${backend.name}-loyalty-coupons`);

      // Rewards: a coupon reward needs its template; merchandise has stock.
      await page.click('#tab-rewards');
      await page.fill('#reward-name', '满200减30券');
      await page.selectOption('#reward-kind', 'coupon');
      await page.fill('#reward-points', '300');
      assert.equal((await submit(page, '#reward-save')).status(), 422);
      assert.equal(await text(page, '.field-error[data-for="coupon_template_id"]'), '免费菜品和优惠券需要选择券模板');
      await page.selectOption('#reward-template', { index: 1 });
      assert.equal((await submit(page, '#reward-save')).status(), 303);
      await page.fill('#reward-name', '定制围裙');
      await page.selectOption('#reward-kind', 'merchandise');
      await page.fill('#reward-points', '500');
      await page.fill('#reward-stock', '10');
      assert.equal((await submit(page, '#reward-save')).status(), 303);
      const rewards = await page.$$eval('#rewards tbody tr', (trs) => trs.map((tr) => [...tr.cells].slice(0, 4).map((td) => td.textContent.trim())));
      assert.deepEqual(rewards.sort((a, b) => a[0].localeCompare(b[0])), [
        ['定制围裙', '周边礼品', '500', '10 / 10'],
        ['满200减30券', '优惠券', '300', '不限'],
      ].sort((a, b) => a[0].localeCompare(b[0])));
      // Retire the apron.
      const apron = page.locator('#rewards tbody tr', { hasText: '定制围裙' });
      await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), apron.locator('button[value=retire]').click()]);
      await page.waitForLoadState('load');
      assert.equal(await page.locator('#rewards tbody tr', { hasText: '定制围裙' }).locator('.status').innerText(), '已下架');
      if (backend.screenshot) await screenshot(page, `${backend.name}-loyalty-rewards`);
    });
  });
}
