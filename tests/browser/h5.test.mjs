// Real-Chromium tests of the member H5 pages (/m) on a phone-sized screen,
// on SQLite and on PostgreSQL: sign-in with a one-time code read from the
// console's message log (no SMS gateway: the demo), points with reasons,
// redeeming a reward, the data export and deleting the account.
//
// Needs what console.test.mjs needs (REGULARS_BIN, REGULARS_TEST_PG_URL,
// Chromium). A missing piece fails the run: nothing here is skipped.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { BACKENDS, BIN, CHROMIUM, api, launch, offlineContext, screenshot, signInConsole, startChain } from './support.mjs';

const ADMIN = { username: 'hq_lin', password: 'correct-horse-battery' };
const STORE = { code: 'CD01', name: '春熙路店', region: '西南', city: '成都' };
const GUEST = { phone: '13800138000', name: '王小明', home_store: 'CD01' };
const MASKED = '138****8000';
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

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

const path = (page) => new URL(page.url()).pathname;
const text = async (page, selector) => (await page.textContent(selector))?.trim() ?? '';

/** Submit the form the button belongs to and wait for the next page. */
async function press(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
}

/** The message log's rows for the guest's masked phone, newest first. */
async function loggedFor(admin, base) {
  await admin.goto(`${base}/console/messages`);
  return admin.$$eval(`#messages tbody tr[data-recipient="${MASKED}"] td.body`, (tds) => tds.map((td) => td.textContent.trim()));
}

for (const backend of BACKENDS) {
  describe(`member H5 on ${backend.name}`, () => {
    let chain;
    let setupError;
    let rewardCheap;

    before(async () => {
      try {
        chain = await startChain(backend, { admin: ADMIN, stores: [STORE], members: [GUEST] });
        const member = chain.members[0];
        // A dinner that earns points, a reward they can afford and one they cannot.
        await api(chain.base, chain.key, '/api/v1/orders', {
          store_code: 'CD01',
          pos_order_id: 'H5-0001',
          member_id: member.id,
          occurred_at: new Date(Date.now() - 3_600_000).toISOString(),
          channel: 'dine_in',
          items: [{ sku: 'D001', name: '毛肚', category: '荤菜', quantity: 3, unit_price_fen: 10_000 }],
          paid_fen: 30_000,
        });
        rewardCheap = await api(chain.base, chain.key, '/api/v1/rewards', {
          name: '熊猫公仔',
          kind: 'merchandise',
          points_cost: 100,
          description: '门店领取',
        });
        await api(chain.base, chain.key, '/api/v1/rewards', { name: '主厨餐桌', kind: 'experience', points_cost: 99_999 });
      } catch (e) {
        setupError = e;
      }
    });

    after(async () => {
      await chain?.stop();
    });

    test('a guest signs in with a code, sees points with reasons, redeems, exports and deletes', async () => {
      if (browserError) throw browserError;
      if (setupError) throw setupError;
      const { base } = chain;
      const staff = await offlineContext(browser);
      const phone = await offlineContext(browser, PHONE);
      try {
        const admin = await staff.newPage();
        await signInConsole(admin, base, ADMIN.username, ADMIN.password);
        const m = await phone.newPage();

        // Strangers go to the sign-in page; the phone asks for a code.
        await m.goto(`${base}/m`);
        assert.equal(path(m), '/m/login');
        assert.match(await text(m, 'h1'), /会员登录/);
        await m.fill('#phone', GUEST.phone);
        await press(m, '#send-code');
        assert.match(await text(m, '#code-sent'), /验证码已发送/);

        // No SMS gateway: hq_admin reads the code in the message log.
        const logged = await loggedFor(admin, base);
        assert.equal(logged.length, 1, `one message for ${MASKED}: ${logged}`);
        const code = logged[0].match(/\b(\d{6})\b/)?.[1];
        assert.ok(code, `a code in "${logged[0]}"`);

        // A wrong code: the message stands next to the field.
        await m.fill('#code', code === '000000' ? '000001' : '000000');
        await press(m, '#sign-in');
        assert.equal(path(m), '/m/login/verify');
        assert.match(await text(m, '.field-error[data-for="code"]'), /验证码不正确/);

        // The right one signs in: home shows the balance, tier and the QR.
        await m.fill('#code', code);
        await press(m, '#sign-in');
        assert.equal(path(m), '/m');
        assert.equal(await text(m, '#balance'), '300');
        assert.match(await text(m, '#tier-name'), /会员/);
        assert.match(await text(m, '#member-name'), /^王/);
        assert.ok(await m.$('#member-qr svg'), 'the member QR code is drawn inline');
        const cookies = await phone.cookies();
        const session = cookies.find((c) => c.name === 'regulars_member');
        assert.ok(session?.httpOnly, 'the session cookie is HttpOnly');
        assert.equal(session.sameSite, 'Lax');
        assert.equal(session.path, '/m');
        if (backend.screenshot) await screenshot(m, `${backend.name}-h5-home`);

        // Points with their reasons.
        await m.click('#nav-points');
        await m.waitForURL(`${base}/m/points`);
        const entries = await m.$$eval('#points-history li', (lis) =>
          lis.map((li) => ({
            kind: li.querySelector('.kind').textContent.trim(),
            points: li.querySelector('.pts').textContent.trim(),
            reason: li.querySelector('.reason').textContent.trim(),
            expires: li.querySelector('.expires')?.textContent.trim() ?? '',
          })),
        );
        assert.equal(entries.length, 1);
        assert.equal(entries[0].kind, '消费积分');
        assert.equal(entries[0].points, '+300');
        assert.ok(entries[0].reason.length > 0, 'the entry says why');
        assert.match(entries[0].expires, /有效期至 \d{4}-\d{2}-\d{2}/);
        if (backend.screenshot) await screenshot(m, `${backend.name}-h5-points`);

        // Redeem the reward: the balance drops by its cost.
        await m.click('#nav-rewards');
        await m.waitForURL(`${base}/m/rewards`);
        assert.equal(await text(m, '#balance'), '300');
        await press(m, `li.reward[data-id="${rewardCheap.id}"] button.redeem`);
        assert.match(await text(m, '#redeemed'), /兑换成功！当前积分 200/);
        assert.equal(await text(m, '#balance'), '200');
        if (backend.screenshot) await screenshot(m, `${backend.name}-h5-rewards`);

        // Too few points for the chef's table: a message, nothing changes.
        const dear = m.locator('li.reward', { hasText: '主厨餐桌' });
        assert.match(await dear.textContent(), /积分不足/);
        await Promise.all([m.waitForNavigation({ waitUntil: 'load' }), dear.locator('button.redeem').click()]);
        assert.match(await text(m, '.field-error[data-for="form"]'), /积分不足，未兑换/);
        assert.equal(await text(m, '#balance'), '200');

        // The history now says what the points bought.
        await m.goto(`${base}/m/points`);
        assert.match(await text(m, '#points-history li:first-child .reason'), /兑换 熊猫公仔/);
        assert.equal(await text(m, '#points-history li:first-child .pts'), '-100');

        // Bad input in English: the feedback form without text.
        await m.goto(`${base}/m/feedback`);
        await press(m, '#lang-switch');
        assert.equal(path(m), '/m/feedback');
        assert.equal(await text(m, 'h1'), 'Feedback');
        await press(m, '#feedback-form button[type="submit"]');
        assert.equal(await text(m, '.field-error[data-for="text"]'), 'Write a few words of feedback');
        await m.fill('#text', 'The broth was wonderful, thank you!');
        await m.check('input[name="rating"][value="5"]');
        await press(m, '#feedback-form button[type="submit"]');
        assert.match(await text(m, '#thanks'), /Thank you/);
        await press(m, '#lang-switch');
        assert.equal(await text(m, 'h1'), '意见反馈');

        // Export: a JSON download holding the points history.
        await m.goto(`${base}/m/privacy`);
        const [download] = await Promise.all([m.waitForEvent('download'), m.click('#export')]);
        const data = JSON.parse(readFileSync(await download.path(), 'utf8'));
        assert.equal(data.personal.phone, `+86${GUEST.phone}`);
        assert.equal(data.balance, 200);
        assert.deepEqual(
          data.points.map((e) => e.points),
          [-100, 300],
        );
        assert.equal(data.orders.length, 1);
        assert.equal(data.orders[0].pos_order_id, 'H5-0001');

        // Delete: confirmation needed, then the session ends for good.
        await press(m, '#delete');
        assert.match(await text(m, '.field-error[data-for="confirm"]'), /删除/);
        await m.fill('#confirm', '删除');
        await press(m, '#delete');
        assert.equal(path(m), '/m/deleted');
        assert.match(await text(m, '#deleted h1'), /账号已注销/);
        await m.goto(`${base}/m/points`);
        assert.equal(path(m), '/m/login');

        // The phone no longer finds anyone: no code is made for it.
        assert.deepEqual(await loggedFor(admin, base), []);
        await m.fill('#phone', GUEST.phone);
        await press(m, '#send-code');
        if (await m.$('#code')) {
          await m.fill('#code', code);
          await press(m, '#sign-in');
          assert.ok(await m.$('.field-error[data-for="code"]'), 'the old code does not sign in');
        } else {
          assert.ok(await m.$('.field-error[data-for="phone"]'), 'the send limit answered');
        }
        assert.notEqual(path(m), '/m');
        assert.deepEqual(await loggedFor(admin, base), []);

        assert.deepEqual(staff.external, []);
        assert.deepEqual(phone.external, []);
      } finally {
        await staff.close();
        await phone.close();
      }
    });
  });
}
