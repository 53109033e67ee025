// Real-Chromium tests of the dashboard, the staff & keys page and the audit
// log viewer, on SQLite and on PostgreSQL. Run by scripts/test.
//
// HQ signs in and sees the chain's figures drawn as charts; a refused date
// filter is explained next to the field, in Chinese and after the switch in
// English; HQ adds a store manager, creates an API key that works at once
// and stops working when revoked, and finds all of it in the audit log. A
// store manager sees neither page. No request leaves the machine.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { BACKENDS, BIN, CHROMIUM, api, launch, offlineContext, screenshot, signInConsole, startChain } from './support.mjs';

const ADMIN = { username: 'hq_lin', password: 'correct-horse-battery' };
const STORES = [
  { code: 'CD01', name: '春熙路店', region: '西南', city: '成都' },
  { code: 'SH03', name: '静安寺店', region: '华东', city: '上海' },
];
const MEMBERS = [
  { phone: '13800138000', name: '王小明', home_store: 'CD01' },
  { phone: '13900139001', name: '李小红', home_store: 'CD01' },
  { phone: '13700137002', name: '张伟', home_store: 'SH03' },
];

const path = (page) => new URL(page.url()).pathname;
const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (n) => new Date(Date.now() - n * 86_400_000).toISOString();

let browser;
let browserError;

before(async () => {
  try {
    assert.ok(existsSync(BIN), `${BIN} not found: run cargo build --bin regulars (or set REGULARS_BIN)`);
    assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: apt-get install chromium`);
    browser = await launch();
  } catch (e) {
    browserError = e;
  }
});

after(async () => {
  await browser?.close();
});

for (const backend of BACKENDS) {
  describe(`dashboard, staff and audit on ${backend.name}`, () => {
    let chain;
    let setupError;

    const check = (name, fn) =>
      test(name, async () => {
        if (browserError) throw browserError;
        if (setupError) throw setupError;
        await fn();
      });

    before(async () => {
      try {
        chain = await startChain(backend, { admin: ADMIN, stores: STORES, members: MEMBERS });
        // Two visits by the first member, one by the second: 1 of 2 came back.
        const order = (member, store, pos, when, fen) =>
          api(chain.base, chain.key, '/api/v1/orders', {
            store_code: store,
            pos_order_id: pos,
            member_id: member.id,
            occurred_at: when,
            channel: 'dine_in',
            items: [{ sku: 'HP-01', name: '麻辣锅底', category: 'soup_base', quantity: 1, unit_price_fen: fen }],
            paid_fen: fen,
          });
        await order(chain.members[0], 'CD01', 'A-1', daysAgo(20), 25_800);
        await order(chain.members[0], 'CD01', 'A-2', daysAgo(5), 18_800);
        await order(chain.members[1], 'CD01', 'A-3', daysAgo(3), 9_900);
      } catch (e) {
        setupError = e;
      }
    });

    after(async () => {
      await chain?.stop();
    });

    check('HQ sees the figures as tiles and charts, and a bad filter is explained next to the field', async () => {
      const context = await offlineContext(browser, { viewport: { width: 1280, height: 900 } });
      try {
        const page = await context.newPage();
        await signInConsole(page, chain.base, ADMIN.username, ADMIN.password);
        assert.equal(path(page), '/console');
        assert.equal((await page.locator('#tile-repurchase .n').textContent()).trim(), '50.0%');
        assert.equal((await page.locator('#tile-active .n').textContent()).trim(), '2');
        assert.equal((await page.locator('#tile-sales .n').textContent()).trim(), '¥545.00');
        const liability = Number((await page.locator('#tile-liability .n').textContent()).trim());
        const balances = await Promise.all(
          chain.members.map(async (m) => (await api(chain.base, chain.key, `/api/v1/members/${m.id}/points`)).balance),
        );
        assert.equal(liability, balances.reduce((a, b) => a + b, 0), 'points liability is the sum of balances');
        assert.ok(liability > 0, 'the orders earned points');
        for (const id of ['chart-repurchase-month', 'chart-repurchase-store', 'chart-tiers', 'chart-lifecycle']) {
          await page.waitForSelector(`#${id}[data-drawn="true"] svg`);
        }
        if (backend.screenshot) await screenshot(page, `${backend.name}-dashboard`);

        // One store only: its figures.
        await page.selectOption('select[name="store"]', 'SH03');
        await Promise.all([page.waitForLoadState('load'), page.click('#filters button[type="submit"]')]);
        assert.equal((await page.locator('#tile-active .n').textContent()).trim(), '0');

        // From after To: refused next to the field, in Chinese.
        await page.goto(`${chain.base}/console?from=${today()}&to=2020-01-01`);
        assert.match(await page.locator('.field-error[data-for="from"]').textContent(), /开始日期/);
        assert.equal(await page.locator('#tile-repurchase').count(), 0, 'no figures for a refused filter');
        // …and in English after the switch, on the same page.
        await Promise.all([page.waitForLoadState('load'), page.click('#lang-switch')]);
        assert.match(await page.locator('.field-error[data-for="from"]').textContent(), /Start date/);
        assert.match(await page.locator('h1').textContent(), /Dashboard/);
        assert.equal(await page.locator('html').getAttribute('lang'), 'en');
        assert.deepEqual(context.external, [], 'no request left the machine');
      } finally {
        await context.close();
      }
    });

    check('HQ adds a store manager and an API key; revoking the key stops it; the audit log shows both', async () => {
      const context = await offlineContext(browser);
      try {
        const page = await context.newPage();
        await signInConsole(page, chain.base, ADMIN.username, ADMIN.password);
        await Promise.all([page.waitForURL((u) => u.pathname === '/console/staff'), page.click('#nav-staff')]);

        // A short password and no store for a store manager: both refused, nothing created.
        await page.fill('#add-user input[name="username"]', 'cd01_wang');
        await page.selectOption('#add-user select[name="role"]', 'store_manager');
        await page.fill('#add-user input[name="password"]', 'short');
        await Promise.all([page.waitForLoadState('load'), page.click('#add-user button[type="submit"]')]);
        assert.match(await page.locator('.field-error[data-for="password"]').textContent(), /至少 10 个字符/);
        assert.match(await page.locator('.field-error[data-for="store"]').textContent(), /请选择门店/);
        assert.equal(await page.locator('#users tr[data-username="cd01_wang"]').count(), 0);
        assert.equal(await page.locator('#add-user input[name="username"]').inputValue(), 'cd01_wang', 'input kept');

        await page.selectOption('#add-user select[name="store"]', 'CD01');
        await page.fill('#add-user input[name="password"]', 'manager-password-01');
        await Promise.all([page.waitForLoadState('load'), page.click('#add-user button[type="submit"]')]);
        assert.match(await page.locator('#users tr[data-username="cd01_wang"]').textContent(), /store_manager\s*CD01/);

        // A POS key for CD01: shown once, works at once.
        await page.fill('#add-key input[name="name"]', '春熙路店收银');
        await page.selectOption('#add-key select[name="role"]', 'pos');
        await page.selectOption('#add-key select[name="store"]', 'CD01');
        await Promise.all([page.waitForLoadState('load'), page.click('#add-key button[type="submit"]')]);
        const secret = (await page.locator('#new-key-secret').textContent()).trim();
        const stores = await fetch(`${chain.base}/api/v1/stores`, { headers: { authorization: `Bearer ${secret}` } });
        assert.equal(stores.status, 200, 'the new key works');
        await page.goto(`${chain.base}/console/staff`);
        assert.equal(await page.locator('#new-key').count(), 0, 'the secret is not shown again');

        const row = page.locator('#keys tr', { hasText: '春熙路店收银' });
        await Promise.all([page.waitForLoadState('load'), row.locator('button[type="submit"]').click()]);
        assert.match(await page.locator('#keys tr', { hasText: '春熙路店收银' }).textContent(), /已吊销/);
        const after = await fetch(`${chain.base}/api/v1/stores`, { headers: { authorization: `Bearer ${secret}` } });
        assert.equal(after.status, 401, 'a revoked key is refused');

        // The audit log: both changes, by HQ's user, newest first.
        await Promise.all([page.waitForURL((u) => u.pathname === '/console/audit'), page.click('#nav-audit')]);
        await page.fill('input[name="action"]', 'apikey');
        await Promise.all([page.waitForLoadState('load'), page.click('#audit-filters button[type="submit"]')]);
        const actions = await page.$$eval('#audit tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
        const byAdmin = actions.filter((r) => r[1] === `user:${ADMIN.username}`).map((r) => r[2]);
        assert.deepEqual(byAdmin, ['apikey.revoke', 'apikey.create']);
        if (backend.screenshot) await screenshot(page, `${backend.name}-audit`);
        await page.goto(`${chain.base}/console/audit?action=user.create`);
        assert.match(await page.locator('#audit').textContent(), /user:cd01_wang/);
        assert.deepEqual(context.external, [], 'no request left the machine');
      } finally {
        await context.close();
      }
    });

    check('dish performance, cohort retention and complaint-rate alerts are drawn from the orders', async () => {
      const context = await offlineContext(browser, { viewport: { width: 1280, height: 900 } });
      try {
        const page = await context.newPage();
        await signInConsole(page, chain.base, ADMIN.username, ADMIN.password);
        await Promise.all([page.waitForURL((u) => u.pathname === '/console/dishes'), page.click('#nav-dishes')]);
        const soup = await page.$$eval('#dishes tr[data-sku="HP-01"] td', (tds) => tds.map((td) => td.textContent.trim()));
        assert.equal(soup[0], '麻辣锅底');
        assert.equal(soup[2], '3', 'three units sold');
        assert.equal(soup[3], '¥545.00');
        await page.waitForSelector('#chart-cohorts[data-drawn="true"] svg');
        if (backend.screenshot) await screenshot(page, `${backend.name}-dishes`);
        const csv = await page.evaluate(async () => (await fetch(document.querySelector('#dishes-export').href)).text());
        assert.match(csv.split('\n')[0], /^sku,name,category,quantity,sales_fen/);
        assert.match(csv, /HP-01,麻辣锅底,soup_base,3,54500/);

        await Promise.all([page.waitForURL((u) => u.pathname === '/console/alerts'), page.click('#nav-alerts')]);
        assert.match(await page.locator('#store-rates tr[data-store="CD01"]').textContent(), /CD01\s*西南\s*3\s*0/);
        await page.waitForSelector('#chart-complaint-rates[data-drawn="true"] svg');
        assert.deepEqual(context.external, [], 'no request left the machine');
      } finally {
        await context.close();
      }
    });

    check('a store manager has no staff or audit pages', async () => {
      const context = await offlineContext(browser);
      try {
        const page = await context.newPage();
        await signInConsole(page, chain.base, 'cd01_wang', 'manager-password-01');
        const nav = await page.locator('#nav').textContent();
        assert.ok(!nav.includes('员工与密钥') && !nav.includes('审计日志'), nav);
        for (const p of ['/console/staff', '/console/audit']) {
          const res = await page.goto(`${chain.base}${p}`);
          assert.equal(res.status(), 403, p);
          assert.match(await page.locator('#failure-message').textContent(), /没有权限|角色/);
        }
        assert.deepEqual(context.external, [], 'no request left the machine');
      } finally {
        await context.close();
      }
    });
  });
}
