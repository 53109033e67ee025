// Real-Chromium tests of the staff console (/console), on SQLite and on
// PostgreSQL. Run by scripts/test as `node --test tests/browser/`.
//
// Needs: REGULARS_BIN (default target/debug/regulars, relative to the repo),
// REGULARS_TEST_PG_URL (a PostgreSQL URL whose user may create databases) and
// Chromium at /usr/bin/chromium (or CHROMIUM_PATH). A missing piece fails the
// run: nothing here is skipped.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKENDS, BIN, CHROMIUM, MASTER_KEY, api, cli, launch, serve, stop } from './support.mjs';

const SCREENSHOT = '/tmp/console-overview.png';

const ADMIN = { username: 'hq_lin', password: 'correct-horse-battery' };
const MANAGER = { username: 'cd01_wang', password: 'manager-password-01' };
const STORES = [
  { code: 'CD01', name: '春熙路店', region: '西南', city: '成都' },
  { code: 'CQ02', name: '解放碑店', region: '西南', city: '重庆' },
  { code: 'SH03', name: '静安寺店', region: '华东', city: '上海' },
];
const MEMBERS = [
  { phone: '13800138000', name: '王小明', home_store: 'CD01' },
  { phone: '13900139001', name: '李小红', home_store: 'CD01' },
  { phone: '13700137002', name: '张伟' },
  { phone: '13600136003', name: '刘芳' },
];

// ---------------------------------------------------------------- helpers

/** Fill the login form and submit it; resolves to the POST's response. */
async function signIn(page, username, password) {
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/console/login'),
    page.click('form[action="/console/login"] button[type="submit"]'),
  ]);
  await page.waitForLoadState('load');
  return response;
}

async function storeRows(page) {
  return page.$$eval('#stores tbody tr', (rows) =>
    rows.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())),
  );
}

const path = (page) => new URL(page.url()).pathname;
const sortRows = (rows) => [...rows].sort((a, b) => a[0].localeCompare(b[0]));

// ---------------------------------------------------------------- browser

// A failing hook would only mark the tests "cancelled"; instead a setup error
// is kept and rethrown by every test, so a missing Chromium or PostgreSQL
// counts as failed tests.
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

// ---------------------------------------------------------------- backends

for (const backend of BACKENDS) {
  describe(`console on ${backend.name}`, () => {
    let dir;
    let db;
    let server;
    let base;
    let key;
    let setupError;

    /** A test that fails with the setup's error when the setup failed. */
    const check = (name, fn) =>
      test(name, async () => {
        if (browserError) throw browserError;
        if (setupError) throw setupError;
        await fn();
      });

    before(async () => {
      try {
        await setup();
      } catch (e) {
        setupError = e;
      }
    });

    async function setup() {
      dir = mkdtempSync(join(tmpdir(), `regulars-browser-${backend.name}-`));
      db = await backend.setup(dir);
      const env = { ...process.env, REGULARS_MASTER_KEY: MASTER_KEY, REGULARS_LOG: 'warn' };
      delete env.REGULARS_DATABASE_URL;
      delete env.REGULARS_LISTEN;
      const run = (args, input) => cli(env, dir, ['--database-url', db.url, ...args], input);

      await run(['migrate']);
      await run(['user', 'create', '--username', ADMIN.username, '--role', 'hq_admin', '--password-stdin'], `${ADMIN.password}\n`);
      key = (await run(['apikey', 'create', '--role', 'hq_admin', '--name', 'browser tests'])).trim().split('\n').pop().trim();
      assert.ok(key.length >= 16, `unexpected API key line: ${key}`);

      ({ base } = server = await serve(env, dir, db.url));
      for (const s of STORES) await api(base, key, '/api/v1/stores', s);
      for (const m of MEMBERS) await api(base, key, '/api/v1/members', m);
      await run(
        ['user', 'create', '--username', MANAGER.username, '--role', 'store_manager', '--store', 'CD01', '--password-stdin'],
        `${MANAGER.password}\n`,
      );
    }

    after(async () => {
      await stop(server?.child);
      await db?.teardown();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    check('/console without a session redirects to the login page', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const res = await page.goto(`${base}/console`);
        assert.equal(res.status(), 200);
        assert.equal(path(page), '/console/login');
        assert.equal(await page.locator('input[name="username"]').count(), 1);
        assert.equal(await page.locator('input[name="password"][type="password"]').count(), 1);
        assert.ok((await page.locator('input[name="csrf"]').inputValue()).length > 0, 'login form has a CSRF token');
      } finally {
        await context.close();
      }
    });

    check('a wrong password shows the error and no session', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${base}/console/login`);
        const res = await signIn(page, ADMIN.username, 'not-the-password');
        assert.equal(res.status(), 401);
        assert.equal(path(page), '/console/login');
        const error = await page.locator('.error').textContent();
        assert.match(error, /用户名或密码错误/);
        assert.equal(await page.locator('input[name="username"]').inputValue(), ADMIN.username, 'username kept');
        assert.equal(await page.locator('input[name="password"]').inputValue(), '', 'password not echoed');
        const cookies = await context.cookies();
        assert.ok(!cookies.some((c) => c.name === 'regulars_session'), 'no session cookie after a failed login');
      } finally {
        await context.close();
      }
    });

    check('hq_admin signs in, sees the overview, has an HttpOnly session and signs out', async () => {
      const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
      try {
        const page = await context.newPage();
        await page.goto(`${base}/console`);
        assert.equal(path(page), '/console/login');
        const res = await signIn(page, ADMIN.username, ADMIN.password);
        assert.equal(res.status(), 303, 'login answers with a redirect');

        // (c) the overview
        assert.equal(path(page), '/console');
        assert.equal((await page.locator('#store-count').textContent()).trim(), String(STORES.length));
        assert.equal((await page.locator('#member-count').textContent()).trim(), String(MEMBERS.length));
        assert.deepEqual(
          sortRows(await storeRows(page)),
          sortRows(STORES.map((s) => [s.code, s.name, s.region, s.city])),
        );
        assert.match(await page.locator('header').textContent(), new RegExp(ADMIN.username));
        if (backend.screenshot) await page.screenshot({ path: SCREENSHOT, fullPage: true });

        // (d) the session cookie: HttpOnly, not visible to scripts
        const session = (await context.cookies()).find((c) => c.name === 'regulars_session');
        assert.ok(session, 'session cookie set');
        assert.equal(session.httpOnly, true, 'session cookie is HttpOnly');
        assert.equal(session.sameSite, 'Strict', 'session cookie is SameSite=Strict');
        assert.ok(!(await page.evaluate(() => document.cookie)).includes('regulars_session'), 'not readable from JS');

        // A reload keeps the session.
        await page.reload();
        assert.equal(path(page), '/console');

        // Sign out: back to the login page, and the session is gone.
        await Promise.all([
          page.waitForURL((u) => u.pathname === '/console/login'),
          page.click('form[action="/console/logout"] button[type="submit"]'),
        ]);
        assert.equal(await page.locator('input[name="username"]').count(), 1);
        assert.ok(
          !(await context.cookies()).some((c) => c.name === 'regulars_session' && c.value !== ''),
          'session cookie cleared',
        );
        await page.goto(`${base}/console`);
        assert.equal(path(page), '/console/login', '/console redirects to login after sign-out');

        // The old token no longer works even if a client kept it.
        await context.addCookies([{ ...session }]);
        await page.goto(`${base}/console`);
        assert.equal(path(page), '/console/login', 'a signed-out session token is dead');
      } finally {
        await context.close();
      }
    });

    check('a store_manager sees only their own store', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${base}/console/login`);
        const res = await signIn(page, MANAGER.username, MANAGER.password);
        assert.equal(res.status(), 303);
        assert.equal(path(page), '/console');
        const cd01 = STORES.find((s) => s.code === 'CD01');
        assert.deepEqual(await storeRows(page), [[cd01.code, cd01.name, cd01.region, cd01.city]]);
        assert.equal((await page.locator('#store-count').textContent()).trim(), '1');
        const own = MEMBERS.filter((m) => m.home_store === 'CD01').length;
        assert.equal((await page.locator('#member-count').textContent()).trim(), String(own), 'only their store\'s members are counted');
        const text = await page.locator('main').textContent();
        for (const other of STORES.filter((s) => s.code !== 'CD01')) {
          assert.ok(!text.includes(other.code) && !text.includes(other.name), `${other.code} must not show`);
        }
      } finally {
        await context.close();
      }
    });

    // Last on purpose: five failures also lock the client address (127.0.0.1).
    check('five failed logins lock the username', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${base}/console/login`);
        for (let i = 1; i <= 5; i++) {
          const res = await signIn(page, ADMIN.username, `wrong-password-${i}`);
          assert.equal(res.status(), 401, `attempt ${i}`);
        }
        const res = await signIn(page, ADMIN.username, ADMIN.password);
        assert.equal(res.status(), 429, 'even the right password is refused while locked');
        assert.match(await page.locator('.error').textContent(), /尝试次数过多/);
        assert.equal(path(page), '/console/login');
        assert.ok(!(await context.cookies()).some((c) => c.name === 'regulars_session'), 'no session while locked');
      } finally {
        await context.close();
      }
    });
  });
}
