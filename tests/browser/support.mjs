// What the browser tests share: the binary, Chromium, the CLI and server
// processes, the two backends and the HQ API. Each test file drives its own
// pages; nothing here is skipped when a piece is missing — it fails.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = resolve(REPO, process.env.REGULARS_BIN || 'target/debug/regulars');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const MASTER_KEY = randomBytes(32).toString('base64');

/** Run the regulars CLI; resolves to stdout, rejects with stderr on failure. */
export function cli(env, cwd, args, input) {
  return new Promise((ok, fail) => {
    const child = spawn(BIN, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? ok(out) : fail(new Error(`regulars ${args.join(' ')} exited ${code}:\n${err}${out}`)),
    );
    child.stdin.end(input ?? '');
  });
}

/** Run psql against a URL with one SQL command. */
export function psql(url, sql) {
  return new Promise((ok, fail) => {
    const child = spawn('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qtAc', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => fail(new Error(`psql could not start (install postgresql-client): ${e.message}`)));
    child.on('close', (code) => (code === 0 ? ok() : fail(new Error(`psql "${sql}" exited ${code}: ${err}`))));
  });
}

// Servers still running if this process dies without its after() hooks.
const servers = new Set();
process.on('exit', () => {
  for (const child of servers) child.kill('SIGKILL');
});

/** Start `regulars serve` on a free port; resolves once it prints its URL. */
export function serve(env, cwd, dbUrl) {
  return new Promise((ok, fail) => {
    const child = spawn(BIN, ['--database-url', dbUrl, 'serve', '--listen', '127.0.0.1:0'], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    servers.add(child);
    child.once('exit', () => servers.delete(child));
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`server did not say it was listening within 60 s:\n${err}${out}`));
    }, 60_000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        ok({ child, base: m[1], log: () => err });
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`server exited (${code}) before listening:\n${err}${out}`));
    });
  });
}

export function stop(child) {
  return new Promise((ok) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return ok();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      ok();
    });
    child.kill('SIGTERM');
  });
}

/** Chromium, headless, as the tests run it. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** An HQ API call: POST with a JSON body (expects 201) or GET (expects 200). */
export async function api(base, key, path, body) {
  const post = body !== undefined;
  const res = await fetch(base + path, {
    method: post ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${key}`, ...(post ? { 'content-type': 'application/json' } : {}) },
    body: post ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.equal(res.status, post ? 201 : 200, `${post ? 'POST' : 'GET'} ${path} -> ${res.status} ${text}`);
  return JSON.parse(text);
}

export const BACKENDS = [
  {
    name: 'sqlite',
    screenshot: true,
    async setup(dir) {
      return { url: `sqlite://${join(dir, 'regulars.db')}`, async teardown() {} };
    },
  },
  {
    name: 'postgres',
    screenshot: false,
    async setup() {
      const admin = process.env.REGULARS_TEST_PG_URL;
      assert.ok(admin, 'REGULARS_TEST_PG_URL is not set: the PostgreSQL browser tests cannot run (scripts/test sets it)');
      const db = `regulars_t_browser_${process.pid}_${randomBytes(4).toString('hex')}`;
      await psql(admin, `create database ${db}`);
      const url = new URL(admin);
      url.pathname = `/${db}`;
      return {
        url: url.toString(),
        async teardown() {
          await psql(admin, `drop database if exists ${db} with (force)`).catch(() => {});
        },
      };
    },
  },
];

// ---------------------------------------------------------------- console pages

/** Where the test run saves its screenshots of the main pages. */
export const SCREENSHOTS = resolve(REPO, 'target', 'screenshots');

/** Save a full-page screenshot as target/screenshots/<name>.png. */
export async function screenshot(page, name) {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * A browser context that lets no request leave the machine: any request to a
 * host other than 127.0.0.1/localhost is aborted and recorded in `external`.
 * Tests assert `external` is empty at the end ("works offline, no CDN").
 */
export async function offlineContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 }, ...options });
  const external = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    const local = ['127.0.0.1', 'localhost'].includes(url.hostname) || ['data:', 'blob:'].includes(url.protocol);
    if (local) return route.continue();
    external.push(url.toString());
    return route.abort();
  });
  context.external = external;
  return context;
}

/** Sign in on /console/login; resolves once the next page has loaded. */
export async function signInConsole(page, base, username, password) {
  await page.goto(`${base}/console/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/console/login'),
    page.click('form[action="/console/login"] button[type="submit"]'),
  ]);
  await page.waitForLoadState('load');
  assert.equal(response.status(), 303, `sign-in as ${username} answered ${response.status()}`);
  return response;
}

/**
 * A fresh chain for one backend: migrated database, an hq_admin user and API
 * key, the given stores and members (created over the API) and any further
 * staff users, with `regulars serve` running. `users` entries are
 * {username, password, role, store?}. Resolves to {base, key, run, env, dir,
 * server, members, stop}; `members` are the API's answers, in order.
 */
export async function startChain(backend, { admin, stores = [], members = [], users = [], serveEnv = {} }) {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), `regulars-browser-${backend.name}-`));
  const db = await backend.setup(dir);
  const env = { ...process.env, REGULARS_MASTER_KEY: MASTER_KEY, REGULARS_LOG: 'warn', ...serveEnv };
  delete env.REGULARS_DATABASE_URL;
  delete env.REGULARS_LISTEN;
  const run = (args, input) => cli(env, dir, ['--database-url', db.url, ...args], input);
  let server;
  try {
    await run(['migrate']);
    const createUser = (u) => {
      const args = ['user', 'create', '--username', u.username, '--role', u.role];
      if (u.store) args.push('--store', u.store);
      return run([...args, '--password-stdin'], `${u.password}\n`);
    };
    await createUser({ ...admin, role: 'hq_admin' });
    const key = (await run(['apikey', 'create', '--role', 'hq_admin', '--name', 'browser tests'])).trim().split('\n').pop().trim();
    assert.ok(key.length >= 16, `unexpected API key line: ${key}`);
    server = await serve(env, dir, db.url);
    const { base } = server;
    for (const s of stores) await api(base, key, '/api/v1/stores', s);
    // After the stores: a store-scoped user names one.
    for (const u of users) await createUser(u);
    const created = [];
    for (const m of members) created.push(await api(base, key, '/api/v1/members', m));
    return {
      base,
      key,
      run,
      env,
      dir,
      db,
      server,
      members: created,
      async stop() {
        await stop(server?.child);
        await db.teardown();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await stop(server?.child);
    await db.teardown();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
