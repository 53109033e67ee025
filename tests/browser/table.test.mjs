// Real-Chromium tests of the guest-facing table QR page (/q/{token}), on
// SQLite and on PostgreSQL. Run by scripts/test as `node --test tests/browser/`.
//
// A guest scans the code on table A12 with a phone, rates, complains, attaches
// a photo and sends: the page must thank them, and the feedback must arrive as
// a critical table_qr complaint linked to their membership. A bad photo must be
// refused on the page with nothing stored, and a forged code must be refused.
//
// Needs: REGULARS_BIN (default target/debug/regulars, relative to the repo),
// REGULARS_TEST_PG_URL (a PostgreSQL URL whose user may create databases) and
// Chromium at /usr/bin/chromium (or CHROMIUM_PATH). A missing piece fails the
// run: nothing here is skipped.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKENDS, BIN, CHROMIUM, MASTER_KEY, api, cli, launch, serve, stop } from './support.mjs';

const STORE = { code: 'CD01', name: '春熙路店', region: '西南', city: '成都' };
const MEMBER = { phone: '13800138000', name: '王小明', home_store: 'CD01' };
const TABLE = 'A12';

// A real 1×1 PNG (70 bytes): the server checks photos by their bytes.
const PNG_1X1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);
// Photos may be at most 2 MiB each (regulars_core::feedback::MAX_PHOTO_BYTES).
const MAX_PHOTO_BYTES = 2 * 1024 * 1024;

// A phone in portrait: the page is what a guest sees after scanning the code.
const PHONE_CONTEXT = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

// ---------------------------------------------------------------- helpers

/** Wait until #result says something; resolves to its text. */
async function resultText(page) {
  await page.waitForFunction(() => document.getElementById('result').textContent.trim() !== '');
  return (await page.locator('#result').textContent()).trim();
}

/**
 * Press the page's submit button; resolves to the multipart POST's response
 * (the page's script sends it with fetch, so there is no navigation).
 */
async function send(page) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && /^\/q\/[^/]+\/feedback$/.test(new URL(r.url()).pathname)),
    page.locator('#feedback button[type="submit"]').tap(),
  ]);
  return response;
}

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
  describe(`table QR page on ${backend.name}`, () => {
    let dir;
    let db;
    let server;
    let base;
    let key;
    let link; // { token, path, ... } for table A12
    let memberId;
    let setupError;

    /** A test that fails with the setup's error when the setup failed. */
    const check = (name, fn) =>
      test(name, async () => {
        if (browserError) throw browserError;
        if (setupError) throw setupError;
        await fn();
      });

    /** A fresh phone-sized page; closed with its context. */
    async function withPhone(fn) {
      const context = await browser.newContext(PHONE_CONTEXT);
      try {
        await fn(await context.newPage());
      } finally {
        await context.close();
      }
    }

    const feedbackCount = async () => (await api(base, key, `/api/v1/feedback?store=${STORE.code}&limit=500`)).length;

    before(async () => {
      try {
        await setup();
      } catch (e) {
        setupError = e;
      }
    });

    async function setup() {
      dir = mkdtempSync(join(tmpdir(), `regulars-browser-table-${backend.name}-`));
      db = await backend.setup(dir);
      const env = { ...process.env, REGULARS_MASTER_KEY: MASTER_KEY, REGULARS_LOG: 'warn' };
      delete env.REGULARS_DATABASE_URL;
      delete env.REGULARS_LISTEN;
      const run = (args, input) => cli(env, dir, ['--database-url', db.url, ...args], input);

      await run(['migrate']);
      key = (await run(['apikey', 'create', '--role', 'hq_admin', '--name', 'table browser tests'])).trim().split('\n').pop().trim();
      assert.ok(key.length >= 16, `unexpected API key line: ${key}`);

      ({ base } = server = await serve(env, dir, db.url));
      await api(base, key, '/api/v1/stores', STORE);
      ({ id: memberId } = await api(base, key, '/api/v1/members', MEMBER));
      // The link HQ prints into table A12's QR code.
      link = await api(base, key, `/api/v1/stores/${STORE.code}/table-links`, { table: TABLE });
      assert.equal(link.path, `/q/${link.token}`);

      // The files a guest's phone would pick from its gallery.
      writeFileSync(join(dir, 'hair.png'), PNG_1X1);
      writeFileSync(join(dir, 'not-an-image.png'), '这不是图片，只是一段文字 — not an image at all\n');
      // Starts like a PNG, so only its size is wrong.
      writeFileSync(join(dir, 'huge.png'), Buffer.concat([PNG_1X1, Buffer.alloc(MAX_PHOTO_BYTES + 1 - PNG_1X1.length)]));
    }

    after(async () => {
      await stop(server?.child);
      await db?.teardown();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    check('the page names the store and the table', async () => {
      await withPhone(async (page) => {
        const res = await page.goto(base + link.path);
        assert.equal(res.status(), 200);
        const heading = (await page.locator('h1').textContent()).replace(/\s+/g, ' ');
        assert.match(heading, new RegExp(STORE.name), 'store name, not its code');
        assert.match(heading, new RegExp(`${TABLE} 号桌`));
        assert.match(await page.title(), new RegExp(STORE.name));
        assert.ok(await page.locator('#feedback').isVisible(), 'the form is shown');
        assert.equal(await page.locator('input[name="rating"][type="radio"]').count(), 5);
      });
    });

    check('a guest sends a 2★ food-safety complaint with a photo and phone; it arrives critical and linked', async () => {
      const before = await feedbackCount();
      await withPhone(async (page) => {
        await page.goto(base + link.path);
        await page.locator('input[name="rating"][value="2"]').check();
        await page.locator('textarea[name="text"]').fill('毛肚里吃出一根头发，太恶心了');
        await page.locator('input[name="phone"]').fill(MEMBER.phone);
        await page.locator('input[name="photo"]').setInputFiles(join(dir, 'hair.png'));
        const res = await send(page);
        assert.equal(res.status(), 201, `feedback POST -> ${res.status()} ${await res.text()}`);
        const receipt = await res.json();

        // The guest is thanked and the form goes away (no double sending).
        assert.match(await resultText(page), /谢谢您的反馈/);
        assert.ok(await page.locator('#feedback').isHidden(), 'form hidden after sending');

        // HQ sees it: the table's channel and number, the member, critical.
        const fb = await api(base, key, `/api/v1/feedback/${encodeURIComponent(receipt.id)}`);
        assert.equal(fb.channel, 'table_qr');
        assert.equal(fb.table, TABLE);
        assert.equal(fb.store_code, STORE.code);
        assert.equal(fb.member_id, memberId, 'the phone links the member');
        assert.equal(fb.rating, 2);
        assert.equal(fb.category, 'food_safety');
        assert.equal(fb.severity, 'critical', 'food safety is critical whatever the stars');
        assert.equal(fb.photos?.length, 1, `one photo: ${JSON.stringify(fb.photos)}`);
        assert.equal(fb.photos[0].content_type, 'image/png');
        assert.equal(fb.photos[0].size_bytes, PNG_1X1.length);
      });
      assert.equal(await feedbackCount(), before + 1);
    });

    for (const [what, file, message] of [
      ['a text file named .png', 'not-an-image.png', /not a JPEG, PNG or WebP image/],
      ['a photo over 2 MiB', 'huge.png', /at most 2048 KiB/],
    ]) {
      check(`${what} is refused on the page and nothing is stored`, async () => {
        const before = await feedbackCount();
        await withPhone(async (page) => {
          await page.goto(base + link.path);
          await page.locator('input[name="rating"][value="1"]').check();
          const text = `锅底太咸了，服务员也不理人 (${file})`;
          await page.locator('textarea[name="text"]').fill(text);
          await page.locator('input[name="photo"]').setInputFiles(join(dir, file));
          const res = await send(page);
          assert.equal(res.status(), 422, `feedback POST -> ${res.status()} ${await res.text()}`);

          // The server's reason is shown; the form stays, with what was typed.
          assert.match(await resultText(page), message);
          assert.ok(await page.locator('#feedback').isVisible(), 'form still shown');
          assert.equal(await page.locator('textarea[name="text"]').inputValue(), text, 'the complaint is kept for another try');
        });
        assert.equal(await feedbackCount(), before, 'a bad photo leaves nothing behind');
      });
    }

    check('a forged code (one signature character changed) is refused with 403', async () => {
      const parts = link.token.split('~');
      const sig = parts.at(-1);
      const last = sig.at(-1) === 'a' ? 'b' : 'a';
      const forged = [...parts.slice(0, -1), sig.slice(0, -1) + last].join('~');
      assert.notEqual(forged, link.token);
      await withPhone(async (page) => {
        const res = await page.goto(`${base}/q/${forged}`);
        assert.equal(res.status(), 403);
        const body = await res.json();
        assert.equal(body.error?.code, 'invalid_table_link', JSON.stringify(body));
        assert.equal(await page.locator('#feedback').count(), 0, 'no form for a forged code');
      });
    });
  });
}
