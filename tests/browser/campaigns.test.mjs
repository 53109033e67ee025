// Campaigns in the console, driven in Chromium on SQLite and on PostgreSQL:
// marketing builds a campaign (bad input first), submits it; above HQ's
// approval line it waits; the submitter's own approval is refused; another
// HQ admin approves it; after `regulars jobs run` the results page shows
// what was sent to the treated arm and held back from the control group.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { BACKENDS, BIN, CHROMIUM, api, launch, offlineContext, screenshot, signInConsole, startChain } from './support.mjs';

const ADMIN = { username: 'hq_lin', password: 'correct-horse-battery' };
const MARKETING = { username: 'mkt_zhao', password: 'marketing-password-1', role: 'marketing' };
const STORES = [
  { code: 'CD01', name: '春熙路店', region: '西南', city: '成都' },
  { code: 'SH03', name: '静安寺店', region: '华东', city: '上海' },
];
// Twenty guests at CD01 (the segment) and two elsewhere; with half held out
// both arms get members.
const MEMBERS = [
  ...Array.from({ length: 20 }, (_, i) => ({
    phone: `1380013${String(8100 + i).padStart(4, '0')}`,
    name: `成都会员${i + 1}`,
    home_store: 'CD01',
  })),
  { phone: '13700137002', name: '张伟', home_store: 'SH03' },
  { phone: '13600136003', name: '刘芳', home_store: 'SH03' },
];
const IN_SEGMENT = 20;

const text = async (locator) => (await locator.textContent()).trim();

async function submit(page, button) {
  await Promise.all([page.waitForLoadState('load'), page.click(button)]);
}

async function put(base, key, path, body) {
  const res = await fetch(base + path, {
    method: 'PUT',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.text();
  assert.equal(res.status, 200, `PUT ${path} -> ${res.status} ${answer}`);
  return JSON.parse(answer);
}

async function post(base, key, path, body) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.text();
  assert.ok(res.ok, `POST ${path} -> ${res.status} ${answer}`);
  return answer ? JSON.parse(answer) : null;
}

/** An SMS gateway on 127.0.0.1 that refuses (400) while `refusing`. */
async function smsGateway() {
  const gateway = { refusing: true, received: [] };
  gateway.server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      gateway.received.push(JSON.parse(body));
      res.writeHead(gateway.refusing ? 400 : 200, { 'content-type': 'application/json' });
      res.end(gateway.refusing ? '{"error":"template not registered"}' : '{"ok":true}');
    });
  });
  await new Promise((ok) => gateway.server.listen(0, '127.0.0.1', ok));
  gateway.url = `http://127.0.0.1:${gateway.server.address().port}/sms`;
  return gateway;
}

/** Noon tomorrow, China time: outside quiet hours whenever the test runs. */
function tomorrowNoon() {
  const day = new Date(Date.now() + 8 * 3600_000 + 86_400_000).toISOString().slice(0, 10);
  return `${day}T12:00:00+08:00`;
}

/** The funnel table as {arm: {members, delivered}}. */
async function funnel(page) {
  const rows = await page.$$eval('#funnel tbody tr', (trs) =>
    trs.map((tr) => [
      tr.querySelector('.arm').textContent.trim(),
      Number(tr.querySelector('.members').textContent),
      Number(tr.querySelector('.delivered').textContent),
    ]),
  );
  return Object.fromEntries(rows.map(([arm, members, delivered]) => [arm, { members, delivered }]));
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
  describe(`campaigns on ${backend.name}`, () => {
    let chain;
    let segment;
    let setupError;

    const check = (name, fn) =>
      test(name, async () => {
        if (browserError) throw browserError;
        if (setupError) throw setupError;
        await fn();
      });

    before(async () => {
      try {
        chain = await startChain(backend, { admin: ADMIN, stores: STORES, members: MEMBERS, users: [MARKETING] });
        const { base, key } = chain;
        segment = await api(base, key, '/api/v1/segments', { name: '成都会员', expression: 'store = "CD01"' });
        // HQ's line: more than five members needs an approval.
        const settings = await api(base, key, '/api/v1/campaign-settings');
        await put(base, key, '/api/v1/campaign-settings', { ...settings, approval_above: 5 });
      } catch (e) {
        setupError = e;
      }
    });

    after(async () => {
      await chain?.stop();
    });

    check('marketing builds and submits a campaign, HQ approves it, the jobs send it', async () => {
      const { base, key, run } = chain;
      const mkt = await offlineContext(browser);
      const hq = await offlineContext(browser);
      try {
        const page = await mkt.newPage();
        await signInConsole(page, base, MARKETING.username, MARKETING.password);
        await Promise.all([page.waitForURL((u) => u.pathname === '/console/campaigns'), page.click('#nav-campaigns')]);
        assert.equal(await text(page.locator('h1')), '营销活动');
        await Promise.all([page.waitForURL((u) => u.pathname === '/console/campaigns/new'), page.click('#new-campaign')]);

        // The builder offers the saved segment and the ten triggers.
        assert.equal(await page.locator(`#segment_id option[value="${segment.id}"]`).textContent(), '成都会员');
        assert.equal(await page.locator('#trigger option').count(), 10);

        // Bad input first: messages next to the fields, what was typed kept.
        await page.fill('#name', '');
        await page.selectOption('#trigger', 'dormant');
        await page.fill('#dormant_days', '7');
        await page.fill('#a_zh', '{name}，好久不见{优惠}');
        await page.fill('#a_en', '');
        await page.fill('#control_pct', '150');
        const [bad] = await Promise.all([
          page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/console/campaigns/new'),
          page.click('#create'),
        ]);
        await page.waitForLoadState('load');
        assert.equal(bad.status(), 422);
        const error = (field) => page.locator(`.field-error[data-for="${field}"]`);
        assert.equal(await text(error('name')), '请填写活动名称（1–100 字）');
        assert.equal(await text(error('dormant_days')), '请输入 14 到 730 之间的整数');
        assert.equal(await text(error('a_en')), '请填写中文和英文两种文案');
        assert.match(await text(error('control_pct')), /对照组比例/);
        assert.equal(await page.locator('#dormant_days').inputValue(), '7', 'typed values kept');
        assert.equal(await page.locator('#trigger').inputValue(), 'dormant');

        // An unknown variable in the message, in English after switching language.
        await Promise.all([page.waitForLoadState('load'), page.click('#lang-switch')]);
        assert.equal(await text(page.locator('h1')), 'New campaign');
        await page.fill('#name', 'Winter solstice');
        await page.fill('#send_at', '2025-12-21T10:00');
        await page.fill('#a_zh', '{name}，好久不见{优惠}');
        await page.fill('#a_en', 'Long time no see, {name}');
        await submit(page, '#create');
        assert.match(await text(error('a_zh')), /^Unknown variable \{优惠\}/);
        assert.equal(await page.locator('.field-error').count(), 1, 'only the message field is wrong');
        await Promise.all([page.waitForLoadState('load'), page.click('#lang-switch')]);

        // Now right: a scheduled send to the segment, inbox, half held out.
        await page.fill('#name', '冬至回店礼');
        await page.selectOption('#segment_id', segment.id);
        await page.selectOption('#trigger', 'scheduled');
        await page.fill('#send_at', '2025-12-21T10:00');
        await page.check('#ch_inbox');
        await page.fill('#a_zh', '{name}，冬至快乐！本周回店送汤圆');
        await page.fill('#a_en', 'Happy winter solstice, {name}! Free tangyuan this week');
        await page.fill('#control_pct', '50');
        await Promise.all([page.waitForURL((u) => /^\/console\/campaigns\/[0-9a-f-]{36}$/.test(u.pathname)), page.click('#create')]);
        const campaignPath = new URL(page.url()).pathname;
        const id = campaignPath.split('/').pop();
        assert.equal(await page.locator('#status').getAttribute('data-status'), 'draft');
        assert.equal(await text(page.locator('#status')), '草稿');
        assert.equal(await text(page.locator('#trigger')), '定时发送 · 2025-12-21 10:00');
        assert.equal(await text(page.locator('#control')), '50.0%');

        // Submit: the audience (20) is above HQ's line (5), so it waits.
        await submit(page, '#do-submit');
        assert.equal(await page.locator('#status').getAttribute('data-status'), 'pending_approval');
        assert.equal(await text(page.locator('#status')), '待审批');
        assert.match(await text(page.locator('#waiting-note')), new RegExp(`受众 ${IN_SEGMENT} 人`));
        assert.equal(await page.locator('#do-approve').count(), 0, 'marketing cannot approve');

        await page.goto(`${base}/console/campaigns?status=pending_approval`);
        const listed = page.locator(`#campaigns tr[data-id="${id}"]`);
        assert.match(await listed.textContent(), /待审批/);
        assert.match(await listed.textContent(), /等待 HQ 审批/);
        assert.match(await listed.textContent(), new RegExp(`成都会员（${IN_SEGMENT} 人）`));
        if (backend.screenshot) await screenshot(page, `${backend.name}-campaign-list`);

        // HQ's own submission: its approval by the same person is refused.
        const own = await api(base, key, '/api/v1/campaigns', {
          name: '总部自审活动',
          trigger: { kind: 'welcome' },
          segment_id: segment.id,
          channels: ['inbox'],
          variants: [{ name: 'A', template: { zh: '欢迎{name}', en: 'Welcome {name}' } }],
        });
        const admin = await hq.newPage();
        await signInConsole(admin, base, ADMIN.username, ADMIN.password);
        await admin.goto(`${base}/console/campaigns/${own.id}`);
        await submit(admin, '#do-submit');
        assert.equal(await admin.locator('#status').getAttribute('data-status'), 'pending_approval');
        const [refused] = await Promise.all([
          admin.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/console/campaigns/${own.id}/status`)),
          admin.click('#do-approve'),
        ]);
        await admin.waitForLoadState('load');
        assert.equal(refused.status(), 422);
        assert.equal(
          await text(admin.locator('.field-error[data-for="change"]')),
          '不能批准或退回自己提交的活动，请由另一位总部管理员审批。',
        );
        assert.equal(await admin.locator('#status').getAttribute('data-status'), 'pending_approval');

        // The hq_admin approves marketing's campaign: it is active.
        await admin.goto(`${base}${campaignPath}`);
        assert.equal(await text(admin.locator('#do-approve')), '批准');
        await submit(admin, '#do-approve');
        assert.equal(await admin.locator('#status').getAttribute('data-status'), 'active');
        assert.equal(await text(admin.locator('#status')), '进行中');
        assert.equal(await text(admin.locator('#approval')), `已批准 · ${ADMIN.username}`);
        assert.equal(await admin.locator('#no-results').count(), 1, 'nothing sent before the jobs run');

        // The jobs take the audience and send: half treated, half held out.
        const report = JSON.parse(await run(['jobs', 'run']));
        assert.ok(report.campaign_entries >= IN_SEGMENT, JSON.stringify(report));

        await admin.reload();
        const arms = await funnel(admin);
        assert.deepEqual(Object.keys(arms).sort(), ['对照组', '版本 A'].sort());
        assert.equal(arms['对照组'].members + arms['版本 A'].members, IN_SEGMENT);
        assert.ok(arms['对照组'].members > 0 && arms['版本 A'].members > 0, JSON.stringify(arms));
        assert.equal(arms['版本 A'].delivered, arms['版本 A'].members, 'every treated member got the inbox message');
        assert.equal(arms['对照组'].delivered, 0, 'the control group is sent nothing');
        assert.match(
          await text(admin.locator('#budget-used')),
          new RegExp(`已发送 ${arms['版本 A'].members} 条`),
        );
        assert.equal(await admin.locator('#uplift tbody tr').count(), 1);
        await admin.waitForSelector('#funnel-chart[data-drawn="true"] svg');
        assert.equal(await admin.locator('#sends tbody tr').count(), IN_SEGMENT);
        assert.equal(await text(admin.locator('#dead-count')), '0');
        if (backend.screenshot) await screenshot(admin, `${backend.name}-campaign-results`);

        // The list shows the sent count; marketing can pause it.
        await page.goto(`${base}/console/campaigns`);
        assert.equal(
          await text(page.locator(`#campaigns tr[data-id="${id}"] .sent`)),
          `${arms['版本 A'].members} / ${IN_SEGMENT}`,
        );
        await page.goto(`${base}${campaignPath}`);
        await submit(page, '#do-pause');
        assert.equal(await text(page.locator('#status')), '已暂停');

        const results = await api(base, key, `/api/v1/campaigns/${id}/results`);
        assert.equal(results.arms.reduce((n, a) => n + a.members, 0), IN_SEGMENT);
        assert.deepEqual(mkt.external, []);
        assert.deepEqual(hq.external, []);
      } finally {
        await mkt.close();
        await hq.close();
      }
    });

    check('a message the gateway refused is a dead letter, and Retry sends it again', async () => {
      const { base, key, run } = chain;
      const gateway = await smsGateway();
      const context = await offlineContext(browser);
      try {
        await put(base, key, '/api/v1/campaign-channels', {
          sms: { url: gateway.url, secret: 'gateway-secret-for-tests' },
          public_url: base,
        });
        const guest = await api(base, key, '/api/v1/members', {
          phone: '13500135005', name: '短信会员', home_store: 'CD01', consents: { sms: true },
        });
        const smsSegment = await api(base, key, '/api/v1/segments', { name: '短信会员', expression: 'consent_sms = true' });
        const campaign = await api(base, key, '/api/v1/campaigns', {
          name: '短信新品通知',
          trigger: { kind: 'scheduled', send_at: '2025-12-01T10:00:00+08:00' },
          segment_id: smsSegment.id,
          channels: ['sms'],
          control_permille: 0,
          variants: [{ name: 'A', template: { zh: '{name}，新品上市', en: 'New dishes, {name}' } }],
        });
        // One member: below HQ's line, active on submission.
        const submitted = await post(base, key, `/api/v1/campaigns/${campaign.id}/status`, { change: 'submit' });
        assert.equal(submitted.status, 'active');
        await run(['jobs', 'run', '--now', tomorrowNoon()]);
        assert.equal(gateway.received.length, 1, 'the gateway was asked once');

        const page = await context.newPage();
        await signInConsole(page, base, MARKETING.username, MARKETING.password);
        await page.goto(`${base}/console/campaigns/${campaign.id}`);
        assert.equal(await text(page.locator('#dead-count')), '1');
        const dead = page.locator('#sends tr.dead');
        assert.equal(await dead.count(), 1);
        assert.match(await dead.textContent(), /失败（死信）/);
        assert.match(await dead.textContent(), /template not registered|400/);

        // The provider is fixed; Retry puts the message back and the next run sends it.
        gateway.refusing = false;
        await submit(page, '#sends tr.dead button.retry');
        assert.equal(await text(page.locator('#dead-count')), '0');
        assert.match(await page.locator('#sends tbody').textContent(), /待发送/);
        await run(['jobs', 'run', '--now', tomorrowNoon()]);
        await page.reload();
        assert.match(await page.locator('#sends tbody').textContent(), /已发送/);
        assert.equal(gateway.received.length, 2);
        assert.equal(gateway.received[1].member_id, guest.id);
        assert.deepEqual(context.external, []);
      } finally {
        await context.close();
        gateway.server.close();
      }
    });
  });
}
