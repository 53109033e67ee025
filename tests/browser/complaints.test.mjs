// The complaint queue and the service task queue in the console, driven in
// Chromium on SQLite and on PostgreSQL: a store manager acknowledges and
// resolves their store's complaint (the root cause is asked for), cannot
// open another store's, and marks a service task done.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { BACKENDS, BIN, CHROMIUM, api, launch, offlineContext, screenshot, signInConsole, startChain } from './support.mjs';

const ADMIN = { username: 'hq_lin', password: 'correct-horse-battery' };
const MANAGER = { username: 'cd01_wang', password: 'manager-password-01', role: 'store_manager', store: 'CD01' };
const STORES = [
  { code: 'CD01', name: '春熙路店', region: '西南', city: '成都' },
  { code: 'SH03', name: '静安寺店', region: '华东', city: '上海' },
];
const MEMBERS = [
  { phone: '13800138000', name: '王小明', home_store: 'CD01' },
  { phone: '13700137002', name: '张伟', home_store: 'SH03' },
];

const path = (page) => new URL(page.url()).pathname;
const text = async (locator) => (await locator.textContent()).trim();

/** Submit a form by its button and wait for the next page. */
async function submit(page, button) {
  await Promise.all([page.waitForLoadState('load'), page.click(button)]);
}

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

for (const backend of BACKENDS) {
  describe(`complaints and tasks on ${backend.name}`, () => {
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
        // A store-scoped user needs their store to exist: made after the stores.
        await chain.run(
          ['user', 'create', '--username', MANAGER.username, '--role', MANAGER.role, '--store', MANAGER.store, '--password-stdin'],
          `${MANAGER.password}\n`,
        );
      } catch (e) {
        setupError = e;
      }
    });

    after(async () => {
      await chain?.stop();
    });

    check('a store_manager acknowledges and resolves a complaint; another store\'s is 403', async () => {
      const { base, key } = chain;
      const ours = await api(base, key, '/api/v1/feedback', {
        store_code: 'CD01', channel: 'call_center', rating: 1, text: '服务员态度很差，叫了三次都不理人',
      });
      const theirs = await api(base, key, '/api/v1/feedback', {
        store_code: 'SH03', channel: 'h5', rating: 2, text: '上海店上菜太慢了',
      });
      const context = await offlineContext(browser);
      try {
        const page = await context.newPage();
        await signInConsole(page, base, MANAGER.username, MANAGER.password);
        await Promise.all([page.waitForURL((u) => u.pathname === '/console/complaints'), page.click('#nav-complaints')]);
        assert.equal(await text(page.locator('h1')), '投诉处理');

        // Only their store's complaint, with its category, status and SLA clock in Chinese.
        const rows = page.locator('#complaints tbody tr');
        assert.equal(await rows.count(), 1);
        const row = rows.first();
        assert.equal(await row.getAttribute('data-id'), ours.id);
        assert.equal(await row.getAttribute('data-category'), 'service_attitude');
        assert.match(await row.textContent(), /服务态度/);
        assert.match(await row.textContent(), /未响应/);
        assert.match(await text(row.locator('.sla')), /^剩余 \d+ 分钟$/, 'time left before the first-response deadline');
        if (backend.screenshot) await screenshot(page, `${backend.name}-complaint-queue`);

        await Promise.all([page.waitForURL((u) => u.pathname === `/console/complaints/${ours.id}`), row.locator('a').click()]);
        assert.equal(await page.locator('#status').getAttribute('data-status'), 'open');
        assert.equal(await text(page.locator('#status')), '未响应');
        assert.match(await page.locator('#reasons').textContent(), /评分 1 星/);
        assert.match(await text(page.locator('#sla-timer')), /^剩余 \d+ 分钟$/);

        // Acknowledge: the first response, stamped in the timeline; the clock stops.
        await page.selectOption('#to', 'acknowledged');
        await page.fill('textarea[name="note"]', '已致电顾客道歉');
        await submit(page, '#transition button[type="submit"]');
        assert.equal(await page.locator('#status').getAttribute('data-status'), 'acknowledged');
        assert.equal(await text(page.locator('#status')), '已响应');
        assert.match(await page.locator('#timeline li[data-kind="acknowledged"]').textContent(), /已响应\s+已致电顾客道歉/);
        assert.equal(await page.locator('#sla-timer').count(), 0, 'no clock after the first response');

        // Resolving without a root cause is refused next to the field; nothing changes.
        await page.selectOption('#to', 'resolved');
        await page.fill('textarea[name="note"]', '已道歉并赠送甜品');
        await submit(page, '#transition button[type="submit"]');
        assert.match(await page.locator('.field-error[data-for="root_cause"]').textContent(), /请选择根因/);
        assert.equal(await page.locator('#status').getAttribute('data-status'), 'acknowledged');

        // The same refusal in English after switching language.
        await Promise.all([page.waitForLoadState('load'), page.click('#lang-switch')]);
        assert.equal(await text(page.locator('#status')), 'Acknowledged');
        await page.selectOption('#to', 'resolved');
        await page.fill('textarea[name="note"]', 'Apologised, free dessert');
        await submit(page, '#transition button[type="submit"]');
        assert.equal(
          await text(page.locator('.field-error[data-for="root_cause"]')),
          'Choose a root cause to resolve the complaint',
        );
        await Promise.all([page.waitForLoadState('load'), page.click('#lang-switch')]);

        await page.selectOption('#to', 'resolved');
        await page.fill('textarea[name="note"]', '已道歉并赠送甜品');
        await page.selectOption('select[name="root_cause"]', 'staff_training');
        await submit(page, '#transition button[type="submit"]');
        assert.equal(await page.locator('#status').getAttribute('data-status'), 'resolved');
        assert.match(await text(page.locator('#status')), /已解决/);

        // Over the API, the complaint is resolved with its root cause.
        const view = await api(base, key, `/api/v1/feedback/${ours.id}`);
        assert.equal(view.status, 'resolved');
        assert.equal(view.root_cause, 'staff_training');
        assert.ok(view.acknowledged_at, 'first response stamped');

        // Another store's complaint is not theirs to open.
        const denied = await page.goto(`${base}/console/complaints/${theirs.id}`);
        assert.equal(denied.status(), 403);
        assert.match(await page.locator('main').textContent(), /没有权限/);
        assert.deepEqual(context.external, []);
      } finally {
        await context.close();
      }
    });

    check('a store_manager sees their store\'s service tasks and marks one done', async () => {
      const { base, key, members } = chain;
      const complaint = await api(base, key, '/api/v1/feedback', {
        store_code: 'CD01', channel: 'staff', rating: 2, member_id: members[0].id, text: '锅底太咸了，上菜也慢',
      });
      await api(base, key, '/api/v1/feedback', {
        store_code: 'SH03', channel: 'staff', rating: 1, member_id: members[1].id, text: '服务员态度很差',
      });
      const context = await offlineContext(browser);
      try {
        const page = await context.newPage();
        await signInConsole(page, base, MANAGER.username, MANAGER.password);
        await Promise.all([page.waitForURL((u) => u.pathname === '/console/tasks'), page.click('#nav-tasks')]);
        assert.equal(await text(page.locator('h1')), '服务任务');
        const rows = page.locator('#tasks tbody tr');
        // Their store only: none of SH03's tasks.
        const stores = await page.$$eval('#tasks tbody tr td:nth-child(5)', (tds) => tds.map((td) => td.textContent.trim()));
        assert.ok(stores.length >= 1 && stores.every((s) => s === 'CD01'), `stores listed: ${stores}`);
        const task = rows.filter({ has: page.locator(`a[href="/console/complaints/${complaint.id}"]`) });
        assert.equal(await task.count(), 1, 'the new complaint has its task');
        assert.equal(await task.getAttribute('data-kind'), 'complaint');
        assert.match(await task.textContent(), /投诉处理/);
        assert.equal(await text(task.locator('.member')), '138****8000', 'the member is shown masked');
        assert.match(await text(task.locator('.sla')), /^剩余 \d+ 分钟$/);
        if (backend.screenshot) await screenshot(page, `${backend.name}-task-queue`);

        // Done without saying what happened: a message next to the field.
        const taskId = await task.getAttribute('data-id');
        const row = () => page.locator(`#tasks tr[data-id="${taskId}"]`);
        await submit(page, `#tasks tr[data-id="${taskId}"] form.task-done button`);
        assert.match(await text(row().locator('.field-error[data-for="outcome"]')), /请写明结果/);

        await row().locator('input[name="outcome"]').fill('已致电，顾客接受道歉');
        await submit(page, `#tasks tr[data-id="${taskId}"] form.task-done button`);
        assert.equal(path(page), '/console/tasks');
        assert.equal(await row().count(), 0, 'a done task leaves the open queue');

        await page.click('#task-filter a[href="/console/tasks?all=1"]');
        await page.waitForLoadState('load');
        assert.match(await text(row().locator('.outcome')), /已致电，顾客接受道歉/);

        const open = await api(base, key, '/api/v1/tasks?all=true');
        const done = open.find((t) => t.id === taskId);
        assert.equal(done.status, 'done');
        assert.equal(done.outcome, '已致电，顾客接受道歉');
        assert.deepEqual(context.external, []);
      } finally {
        await context.close();
      }
    });
  });
}
