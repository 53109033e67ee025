// Real-Chromium tests of the console's member pages (/console/members), on
// SQLite and on PostgreSQL: search by phone, the member page with points
// history and reasons, the audited reveal, store scope, manual adjustments
// with field messages and HQ approval above the requester's limit.

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
  { phone: '13800138000', name: '王小明', home_store: 'CD01', birthday: '1990-05-17', email: 'xm@example.com', tags: ['spicy_lover'] },
  { phone: '13700137002', name: '张伟', home_store: 'SH03' },
];

const path = (page) => new URL(page.url()).pathname;

/** Submit a form by its button and wait for the next page; resolves to the response. */
async function submit(page, selector) {
  const [response] = await Promise.all([
    // The page finally shown (a redirect's 303 is followed).
    page.waitForResponse((r) => r.request().isNavigationRequest() && (r.status() < 300 || r.status() >= 400)),
    page.click(selector),
  ]);
  await page.waitForLoadState('load');
  return response;
}

async function search(page, phone) {
  await page.fill('#search-phone', phone);
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/console/members'),
    page.click('#member-search button[type="submit"]'),
  ]);
  await page.waitForLoadState('load');
  return response;
}

async function balance(base, key, memberId) {
  return (await api(base, key, `/api/v1/members/${memberId}/points`)).balance;
}

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
  describe(`console members on ${backend.name}`, () => {
    let chain;
    let setupError;
    let ours; // CD01's member
    let theirs; // SH03's member

    const check = (name, fn) =>
      test(name, async () => {
        if (browserError) throw browserError;
        if (setupError) throw setupError;
        await fn();
      });

    before(async () => {
      try {
        chain = await startChain(backend, { admin: ADMIN, stores: STORES, members: MEMBERS });
        [ours, theirs] = chain.members;
        // Store staff after their store exists.
        await chain.run(
          ['user', 'create', '--username', MANAGER.username, '--role', MANAGER.role, '--store', MANAGER.store, '--password-stdin'],
          `${MANAGER.password}\n`,
        );
        // An order: the base rule earns points with an explanation.
        await api(chain.base, chain.key, '/api/v1/orders', {
          store_code: 'CD01', pos_order_id: 'POS-0001', member_id: ours.id,
          occurred_at: new Date(Date.now() - 3600_000).toISOString(), channel: 'dine_in',
          items: [{ sku: 'D001', name: '毛肚', category: '荤菜', quantity: 2, unit_price_fen: 6_800 }],
          paid_fen: 13_600,
        });
      } catch (e) {
        setupError = e;
      }
    });

    after(async () => {
      await chain?.stop();
    });

    /** A signed-in page; the context is closed and checked offline by `use`. */
    async function use(user, fn) {
      const context = await offlineContext(browser);
      try {
        const page = await context.newPage();
        await signInConsole(page, chain.base, user.username, user.password);
        await fn(page);
        assert.deepEqual(context.external, [], 'no request left the machine');
      } finally {
        await context.close();
      }
    }

    check('hq_admin finds a member by phone and sees points history with reasons', async () => {
      await use(ADMIN, async (page) => {
        await Promise.all([page.waitForURL((u) => u.pathname === '/console/members'), page.click('#nav-members')]);
        const res = await search(page, '138 0013 8000');
        assert.equal(res.status(), 200);
        const rows = page.locator('#member-results tbody tr');
        assert.equal(await rows.count(), 1);
        const row = await rows.first().textContent();
        assert.match(row, new RegExp(ours.member_code));
        assert.match(row, /138\*\*\*\*8000/);
        assert.match(row, /王\*\*/);
        assert.match(row, /CD01/);
        assert.ok(!row.includes('13800138000'), 'the full phone is not listed');
        if (backend.screenshot) await screenshot(page, `${backend.name}-member-search`);

        await Promise.all([page.waitForURL((u) => u.pathname === `/console/members/${ours.id}`), rows.first().locator('a').click()]);
        assert.equal((await page.locator('#member-phone').textContent()).trim(), '138****8000');
        assert.equal((await page.locator('#member-name').textContent()).trim(), '王**');
        assert.equal((await page.locator('#member-birthday').textContent()).trim(), '05-17');
        assert.match(await page.locator('#tags').textContent(), /spicy_lover/);
        const points = await balance(chain.base, chain.key, ours.id);
        assert.ok(points > 0, 'the order earned points');
        assert.equal((await page.locator('#points-balance').textContent()).trim(), String(points));
        const history = page.locator('#points-history tbody tr');
        assert.equal(await history.count(), 1);
        const earn = await history.first().textContent();
        assert.match(earn, /earn/);
        assert.match(earn, new RegExp(`\\+${points}`));
        assert.match(earn, /消费 ¥136/, 'the reason explains the points');
        assert.match(earn, /CD01\/POS-0001/);
        assert.match(await page.locator('#orders').textContent(), /¥136\.00/);
        assert.match(await page.locator('#tier-progress').textContent(), /¥136\.00/);
        if (backend.screenshot) await screenshot(page, `${backend.name}-member-page`);
      });
    });

    check('reveal shows the full phone and the access log names the admin', async () => {
      await use(ADMIN, async (page) => {
        await page.goto(`${chain.base}/console/members/${ours.id}`);
        assert.equal(await page.locator('#access-log tr.member-reveal').count(), 0, 'no reveal yet');
        const res = await submit(page, '#reveal button[type="submit"]');
        assert.equal(res.status(), 200);
        assert.match(await page.locator('#member-phone').textContent(), /13800138000/);
        assert.equal((await page.locator('#member-name').textContent()).trim(), '王小明');
        assert.equal((await page.locator('#member-email').textContent()).trim(), 'xm@example.com');
        assert.equal((await page.locator('#member-birthday').textContent()).trim(), '1990-05-17');
        const reveals = page.locator('#access-log tr.member-reveal');
        assert.equal(await reveals.count(), 1);
        assert.match(await reveals.first().textContent(), new RegExp(ADMIN.username));
        assert.match(await reveals.first().textContent(), /查看完整信息/);
        // A plain reload shows the masked page again.
        await page.goto(`${chain.base}/console/members/${ours.id}`);
        assert.equal((await page.locator('#member-phone').textContent()).trim(), '138****8000');
      });
    });

    check('a bad phone shows the field message in Chinese, then in English', async () => {
      await use(ADMIN, async (page) => {
        await page.goto(`${chain.base}/console/members`);
        let res = await search(page, '12345');
        assert.equal(res.status(), 422);
        assert.match(await page.locator('.field-error[data-for="phone"]').textContent(), /请输入有效的手机号/);
        assert.equal(await page.locator('#search-phone').inputValue(), '12345', 'the input is kept');
        assert.equal(await page.locator('#member-results tbody tr').count(), 0);

        await Promise.all([page.waitForURL((u) => u.pathname === '/console/members'), page.click('#lang-switch')]);
        res = await search(page, '12345');
        assert.equal(res.status(), 422);
        assert.match(await page.locator('.field-error[data-for="phone"]').textContent(), /Enter a valid mobile number/);
        assert.match(await page.locator('h1').textContent(), /Members/);
      });
    });

    check('a store manager opens their own member but not another store\'s', async () => {
      await use(MANAGER, async (page) => {
        // Their search lists only their store's members.
        await page.goto(`${chain.base}/console/members`);
        const codes = await page.$$eval('#member-results tbody tr td:nth-child(6)', (tds) => tds.map((td) => td.textContent.trim()));
        assert.deepEqual(codes, ['CD01']);
        assert.equal((await search(page, MEMBERS[1].phone)).status(), 200);
        assert.equal(await page.locator('#member-results tbody tr').count(), 0, 'another store\'s member is not found');

        const denied = await page.goto(`${chain.base}/console/members/${theirs.id}`);
        assert.equal(denied.status(), 403);
        assert.match(await page.locator('main').textContent(), /没有权限/);
        assert.ok(!(await page.content()).includes('137****7002'), 'nothing of the member shows');

        const own = await page.goto(`${chain.base}/console/members/${ours.id}`);
        assert.equal(own.status(), 200);
        assert.equal((await page.locator('#member-phone').textContent()).trim(), '138****8000');
        assert.equal(await page.locator('#reveal').count(), 0, 'no reveal button for a store manager');
      });
    });

    check('bad adjustments show field messages and change nothing; a good one shows in the history', async () => {
      await use(ADMIN, async (page) => {
        await page.goto(`${chain.base}/console/members/${ours.id}`);
        const before = await balance(chain.base, chain.key, ours.id);
        const cases = [
          { points: '0', reason: '测试', field: 'points', message: /请输入非零整数/ },
          { points: 'abc', reason: '测试', field: 'points', message: /请输入非零整数/ },
          { points: '50', reason: '', field: 'reason', message: /请写明调整原因/ },
          { points: '-99999', reason: '扣太多', field: 'points', message: /可用积分不足/ },
        ];
        for (const c of cases) {
          await page.fill('#adjust input[name="points"]', c.points);
          await page.fill('#adjust input[name="reason"]', c.reason);
          const res = await submit(page, '#adjust button[type="submit"]');
          assert.equal(res.status(), 422, `${c.points}/${c.reason}`);
          assert.match(await page.locator(`.field-error[data-for="${c.field}"]`).textContent(), c.message);
          assert.equal(await page.locator('#adjust input[name="points"]').inputValue(), c.points, 'the value is kept');
          assert.equal(await balance(chain.base, chain.key, ours.id), before, 'nothing changed');
        }

        await page.fill('#adjust input[name="points"]', '88');
        await page.selectOption('#adjust select[name="kind"]', 'compensation');
        await page.fill('#adjust input[name="reason"]', '上菜慢致歉');
        const res = await submit(page, '#adjust button[type="submit"]');
        assert.equal(res.status(), 200);
        assert.equal(path(page), `/console/members/${ours.id}`);
        assert.equal(await balance(chain.base, chain.key, ours.id), before + 88);
        assert.equal((await page.locator('#points-balance').textContent()).trim(), String(before + 88));
        const top = await page.locator('#points-history tbody tr').first().textContent();
        assert.match(top, /compensation/);
        assert.match(top, /\+88/);
        assert.match(top, /上菜慢致歉/);
      });
    });

    check('above a store manager\'s limit the adjustment waits for HQ approval', async () => {
      const before = await balance(chain.base, chain.key, ours.id);
      await use(MANAGER, async (page) => {
        await page.goto(`${chain.base}/console/members/${ours.id}`);
        assert.match(await page.locator('#adjust-limit').textContent(), /500/);
        await page.fill('#adjust input[name="points"]', '600');
        await page.fill('#adjust input[name="reason"]', '生日宴补偿');
        const res = await submit(page, '#adjust button[type="submit"]');
        assert.equal(res.status(), 200);
        assert.match(await page.locator('#notice').textContent(), /已提交总部审批/);
        assert.equal(await balance(chain.base, chain.key, ours.id), before, 'not applied before approval');
        // The approvals page is HQ's.
        const denied = await page.goto(`${chain.base}/console/members/adjustments`);
        assert.equal(denied.status(), 403);
      });
      await use(ADMIN, async (page) => {
        await page.goto(`${chain.base}/console/members/adjustments`);
        const row = page.locator('#adjustment-requests tbody tr.pending');
        assert.equal(await row.count(), 1);
        assert.match(await row.textContent(), /生日宴补偿/);
        assert.match(await row.textContent(), new RegExp(MANAGER.username));
        await submit(page, '#adjustment-requests tr.pending button[value="approve"]');
        assert.equal(path(page), '/console/members/adjustments');
        assert.match(await page.locator('#adjustment-requests tbody tr.approved').textContent(), new RegExp(ADMIN.username));
        assert.equal(await balance(chain.base, chain.key, ours.id), before + 600);
        await page.goto(`${chain.base}/console/members/${ours.id}`);
        const top = await page.locator('#points-history tbody tr').first().textContent();
        assert.match(top, /\+600/);
        assert.match(top, /生日宴补偿/);
      });
    });
  });
}
