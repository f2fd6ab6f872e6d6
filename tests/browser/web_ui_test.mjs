// kiln's page in Debian's chromium (playwright-core), through nginx with response buffering
// on, kiln under /kiln/. Started by run.sh, which sets:
//   KILN_URL            the proxy's /kiln/ (events pass)
//   KILN_URL_NO_EVENTS  a proxy where /kiln/v1/events answers 502
//   KILN_INPUTS         photos, refused files, and `kiln upscale`'s output of each photo
//   KILN_BROWSER_OUT    where screenshots go
// Every wait is for a condition in the page (no sleeps), with generous timeouts for 2-core CI.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { decodePng } from "./png.mjs";

const URL_LIVE = process.env.KILN_URL;
const URL_NO_EVENTS = process.env.KILN_URL_NO_EVENTS;
const INPUTS = process.env.KILN_INPUTS;
const OUT = process.env.KILN_BROWSER_OUT;
const FAST = process.env.KILN_FAST_MODEL || "realesr-animevideov3-x4";
const SLOW = process.env.KILN_SLOW_MODEL || "realesrgan-x4plus";
const GEN = process.env.KILN_GEN_MODEL || "fashion-unet";
const WAIT_MS = 180_000;

assert.ok(URL_LIVE && URL_NO_EVENTS && INPUTS && OUT, "run this through tests/browser/run.sh");
mkdirSync(OUT, { recursive: true });

let browser;
const users = [];

async function newUser(base, name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 820 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const user = { name, context, page, errors: [], events: [], urls: [] };
  page.on("pageerror", (e) => user.errors.push(String(e)));
  page.on("request", (r) => user.urls.push(r.url()));
  page.on("response", (r) => {
    if (r.url().includes("/v1/events")) user.events.push(r.status());
  });
  await page.goto(base);
  await page.waitForFunction(() => document.querySelector("#model").options.length > 0);
  await page.waitForFunction(() => JSON.parse(localStorage.getItem("kiln.session") || "null")?.token);
  user.token = await page.evaluate(() => JSON.parse(localStorage.getItem("kiln.session")).token);
  users.push(user);
  return user;
}

async function shot(page, name, options = {}) {
  await page.screenshot({ path: join(OUT, `${name}.png`), ...options });
}

// The API as a client outside the page (through the same proxy).
async function apiGet(base, token, path) {
  const res = await fetch(base + path, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, body: res.status === 204 ? null : await res.json() };
}

async function waitBadge(page, mode) {
  await page.waitForSelector(`#live.badge.${mode}`);
}

async function chooseUpload(page, file, model) {
  await page.selectOption("#model", model);
  await page.setInputFiles("#file", join(INPUTS, file));
  await page.waitForSelector("#send:not([disabled])");
}

function jobList(page) {
  return page.$$eval("#jobs li", (lis) =>
    lis.map((li) => ({ id: li.dataset.jobId, status: li.dataset.status, text: li.textContent })));
}

function job(page, id) {
  return page.locator(`#jobs li[data-job-id="${id}"]`);
}

async function waitStatus(page, id, status) {
  await page.waitForSelector(`#jobs li[data-job-id="${id}"][data-status="${status}"]`);
}

// The page's jobs once it lists `count` of them; fails at once when the form shows an error.
async function waitJobCount(page, count) {
  await page.waitForFunction((n) => document.querySelectorAll("#jobs li").length === n ||
                                    document.querySelector("#form-error").textContent !== "", count);
  assert.equal(await page.textContent("#form-error"), "", "the page shows an error");
  return jobList(page);
}

async function waitGallery(page, count) {
  await page.waitForFunction((n) => {
    const imgs = [...document.querySelectorAll("#gallery button img")];
    return imgs.length === n && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, count);
  return page.$$eval("#gallery button", (bs) => bs.map((b) => b.dataset.jobId));
}

// Picks the generate model and fills the form as a user would.
async function chooseGenerate(page, { prompt, steps, seed, count }) {
  await page.selectOption("#model", GEN);
  await page.waitForSelector("#generate-fields:not([hidden])");
  await page.selectOption("#prompt", { label: prompt });
  await page.fill("#steps", String(steps));
  await page.fill("#seed", String(seed));
  await page.fill("#count", String(count));
  await page.waitForSelector("#send:not([disabled])");
}

// Opens a gallery item, downloads it, closes the viewer; returns the downloaded bytes.
async function downloadItem(page, id, index) {
  await page.click(`#gallery button[data-job-id="${id}"][data-index="${index}"]`);
  await page.waitForSelector("#viewer[open]");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  assert.equal(download.suggestedFilename(), `${id}-${index}.png`);
  const bytes = readFileSync(await download.path());
  await page.click("#close");
  await page.waitForSelector("#viewer:not([open])", { state: "attached" });
  return bytes;
}

function samePixels(actualBytes, expectedBytes, label) {
  const a = decodePng(actualBytes);
  const e = decodePng(expectedBytes);
  assert.deepEqual([a.width, a.height, a.channels], [e.width, e.height, e.channels], `${label}: shape`);
  let differing = 0;
  for (let i = 0; i < a.pixels.length; ++i) if (a.pixels[i] !== e.pixels[i]) ++differing;
  assert.equal(differing, 0, `${label}: ${differing} of ${a.pixels.length} samples differ from kiln upscale's`);
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.KILN_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // root in CI containers: chromium's sandbox needs user namespaces it may not have.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  for (const u of users) await u.context.close().catch(() => {});
  if (browser) await browser.close();
});

describe("kiln web page behind nginx", { timeout: 900_000 }, () => {
  test("two users at once see only their own job and image, each the upscale of its input", async () => {
    const a = await newUser(URL_LIVE, "a");
    const b = await newUser(URL_LIVE, "b");
    assert.notEqual(a.token, b.token, "each browser context has its own session");
    await Promise.all([waitBadge(a.page, "live"), waitBadge(b.page, "live")]);
    await chooseUpload(a.page, "cat.png", FAST);
    await chooseUpload(b.page, "coffee.jpg", FAST);
    await Promise.all([a.page.click("#send"), b.page.click("#send")]);  // at the same time

    const [jobsA, jobsB] = await Promise.all([waitJobCount(a.page, 1), waitJobCount(b.page, 1)]);
    const idA = jobsA[0].id;
    const idB = jobsB[0].id;
    assert.notEqual(idA, idB);
    await Promise.all([waitStatus(a.page, idA, "succeeded"), waitStatus(b.page, idB, "succeeded")]);
    const [galleryA, galleryB] = await Promise.all([waitGallery(a.page, 1), waitGallery(b.page, 1)]);
    assert.deepEqual(galleryA, [idA], "a's gallery holds a's image only");
    assert.deepEqual(galleryB, [idB], "b's gallery holds b's image only");
    assert.deepEqual((await jobList(a.page)).map((j) => j.id), [idA], "a lists its own job only");
    assert.deepEqual((await jobList(b.page)).map((j) => j.id), [idB], "b lists its own job only");
    // The server agrees: the other session's job, input and output answer 404.
    for (const path of [`v1/jobs/${idA}`, `v1/jobs/${idA}/input`, `v1/jobs/${idA}/outputs/0`]) {
      const res = await fetch(URL_LIVE + path, { headers: { Authorization: `Bearer ${b.token}` } });
      assert.equal(res.status, 404, `b reading ${path}`);
    }
    await shot(a.page, "01-two-users-a");
    await shot(b.page, "01-two-users-b");

    for (const [user, id, input, width] of [[a, idA, "cat.png", 96], [b, idB, "coffee.jpg", 96]]) {
      const { page } = user;
      await page.click(`#gallery button[data-job-id="${id}"]`);
      await page.waitForSelector("#viewer[open]");
      await page.waitForFunction(() =>
        ["before", "after"].every((k) => document.getElementById(k).complete &&
                                         document.getElementById(k).naturalWidth > 0));
      // Before = the job's input (GET v1/jobs/{id}/input), after = the x4 output.
      assert.equal(await page.$eval("#before", (i) => i.naturalWidth), width, `${user.name}: before`);
      assert.equal(await page.$eval("#after", (i) => i.naturalWidth), width * 4, `${user.name}: after`);
      await page.fill("#slider", "30");
      assert.equal(await page.$eval("#after-clip", (d) => d.style.width), "30%");
      if (user === a) await shot(page, "02-before-after");
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
      assert.equal(download.suggestedFilename(), `${id}-0.png`);
      const got = readFileSync(await download.path());
      const expected = readFileSync(join(INPUTS, `${input}.x4.png`));
      samePixels(got, expected, `${user.name}'s ${input}`);
      console.log(`# ${user.name}: ${input} output ${got.equals(expected) ? "byte-identical" : "pixel-identical"} to kiln upscale`);
      await page.click("#close");
      await page.waitForSelector("#viewer:not([open])", { state: "attached" });
    }
    assert.ok(a.events.every((s) => s === 200) && a.events.length > 0, `a's event streams: ${a.events}`);

    // Phone width: one column, nothing wider than the screen.
    await a.page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await a.page.evaluate(() => document.documentElement.scrollWidth <= 390), "no sideways scrolling");
    await shot(a.page, "08-phone-width");
    await a.page.setViewportSize({ width: 1100, height: 820 });

    // A second photo for a's overview screenshot (the README's docs/web-ui.png).
    await chooseUpload(a.page, "coffee.jpg", FAST);
    await a.page.click("#send");
    const [second] = (await waitJobCount(a.page, 2)).filter((j) => j.id !== idA);
    await waitStatus(a.page, second.id, "succeeded");
    assert.deepEqual(await waitGallery(a.page, 2), [second.id, idA], "newest first");
    await a.page.focus(`#gallery button[data-job-id="${idA}"]`);
    await shot(a.page, "00-overview");
  });

  test("with /v1/events blocked at the proxy, polling keeps jobs and gallery up to date", async () => {
    const c = await newUser(URL_NO_EVENTS, "c");
    await waitBadge(c.page, "polling");
    assert.match(await c.page.textContent("#live"), /polling/);
    await chooseUpload(c.page, "coffee.jpg", FAST);
    await c.page.click("#send");
    const [{ id }] = await waitJobCount(c.page, 1);
    await waitStatus(c.page, id, "succeeded");
    assert.deepEqual(await waitGallery(c.page, 1), [id]);
    assert.ok(c.events.length > 0 && c.events.every((s) => s === 502), `event streams: ${c.events}`);
    assert.ok(await c.page.$("#live.badge.polling"), "the badge still says polling");
    await shot(c.page, "03-polling-fallback");
  });

  test("pause, cancel a running job, retry it, delete both, resume", async () => {
    const d = await newUser(URL_LIVE, "d");
    await waitBadge(d.page, "live");
    await d.page.click("#pause");
    await d.page.waitForFunction(() => document.querySelector("#queue-state").textContent === "Queue paused");
    assert.equal((await apiGet(URL_LIVE, d.token, "v1/queue")).body.paused, true);

    await chooseUpload(d.page, "astronaut.png", SLOW);
    await d.page.click("#send");
    const [{ id }] = await waitJobCount(d.page, 1);
    await waitStatus(d.page, id, "queued");
    assert.match(await job(d.page, id).textContent(), /position 0/);
    const queue = (await apiGet(URL_LIVE, d.token, "v1/queue")).body;
    assert.deepEqual([queue.paused, queue.queued, queue.running], [true, 1, 0], "held by the pause");
    await shot(d.page, "04-queue-paused");

    await d.page.click("#resume");
    await d.page.waitForFunction(() => document.querySelector("#queue-state").textContent === "");
    await waitStatus(d.page, id, "running");
    await job(d.page, id).locator('button[data-action="cancel"]').click();
    await waitStatus(d.page, id, "cancelled");
    const cancelled = (await apiGet(URL_LIVE, d.token, `v1/jobs/${id}`)).body;
    assert.equal(cancelled.status, "cancelled");
    assert.deepEqual(cancelled.outputs, []);
    assert.ok(cancelled.started_at, "it was running when cancelled");
    await shot(d.page, "05-cancelled");

    // Retry while paused, so the new job waits where the test can see it.
    await d.page.click("#pause");
    await d.page.waitForFunction(() => document.querySelector("#queue-state").textContent === "Queue paused");
    await job(d.page, id).locator('button[data-action="retry"]').click();
    const jobs = await waitJobCount(d.page, 2);
    const retry = jobs.find((j) => j.id !== id);
    await waitStatus(d.page, retry.id, "queued");
    assert.match(await job(d.page, retry.id).textContent(), new RegExp(`retry of ${id.slice(0, 8)}`));
    assert.equal((await apiGet(URL_LIVE, d.token, `v1/jobs/${retry.id}`)).body.retry_of, id);
    await shot(d.page, "06-retried");

    for (const gone of [retry.id, id]) {
      await job(d.page, gone).locator('button[data-action="delete"]').click();
      await d.page.waitForSelector(`#jobs li[data-job-id="${gone}"]`, { state: "detached" });
      assert.equal((await apiGet(URL_LIVE, d.token, `v1/jobs/${gone}`)).status, 404);
    }
    await d.page.waitForSelector("#jobs-empty", { state: "visible" });
    assert.deepEqual((await apiGet(URL_LIVE, d.token, "v1/jobs")).body.jobs, []);

    await d.page.click("#resume");
    await d.page.waitForFunction(() => document.querySelector("#queue-state").textContent === "");
    assert.equal((await apiGet(URL_LIVE, d.token, "v1/queue")).body.paused, false);
  });

  test("generate: a prompt, steps, seed and count make deterministic images in this session only", async () => {
    const g = await newUser(URL_LIVE, "g");
    const h = await newUser(URL_LIVE, "h");
    await Promise.all([waitBadge(g.page, "live"), waitBadge(h.page, "live")]);
    const listed = (await (await fetch(URL_LIVE + "v1/models")).json());
    const model = listed.find((m) => m.name === GEN);
    const fast = listed.find((m) => m.name === FAST);
    assert.ok(model && model.task === "generate", `${GEN} is served as a generate model`);
    assert.ok(model.prompts.includes("sneaker"));

    // The picker says what each model does.
    const options = await g.page.$$eval("#model option", (os) => Object.fromEntries(os.map((o) => [o.value, o.textContent])));
    assert.equal(options[GEN], `${GEN} — generate ${model.width}×${model.height} images, ${model.arch}`);
    assert.equal(fast.family, "Real-ESRGAN");
    assert.equal(options[FAST], `${FAST} — upscale ×${fast.scale}, Real-ESRGAN ${fast.arch}`);

    // Picking it replaces the upload area with the prompt chooser and the parameters.
    await g.page.selectOption("#model", GEN);
    await g.page.waitForSelector("#generate-fields:not([hidden])");
    assert.ok(await g.page.$eval("#upscale-fields", (d) => d.hidden), "no upload area");
    assert.equal(await g.page.textContent("#send"), "Generate");
    const prompts = await g.page.$$eval("#prompt option", (os) => os.map((o) => [o.value, o.textContent]));
    assert.deepEqual(prompts, [...model.prompts.map((p) => [p, p]), ["", "(empty: unconditional)"]]);
    const defaults = await g.page.evaluate(() =>
      ["steps", "sampler", "guidance", "seed", "count"].map((id) => document.getElementById(id).value));
    assert.deepEqual(defaults, ["30", "ddim", "3", "", "4"], "defaults: steps, sampler, guidance, seed (random), count");
    // By keyboard: from the model, Tab reaches every field in order, then the button.
    await g.page.bringToFront();
    await g.page.focus("#model");
    const order = [];
    for (let i = 0; i < 8; ++i) {
      await g.page.keyboard.press("Tab");
      order.push(await g.page.evaluate(() => document.activeElement.id));
    }
    assert.deepEqual(order, ["prompt", "steps", "sampler", "guidance", "seed", "count", "priority", "send"]);

    const wanted = { prompt: "sneaker", steps: 5, seed: 3, count: 2 };
    await chooseGenerate(g.page, wanted);
    await shot(g.page, "09-generate-form");
    const ids = [];
    for (let n = 1; n <= 2; ++n) {  // the same request twice: the same images
      await g.page.click("#send");
      const [fresh] = (await waitJobCount(g.page, n)).filter((j) => !ids.includes(j.id));
      ids.unshift(fresh.id);
      await waitStatus(g.page, fresh.id, "succeeded");
      const text = await job(g.page, fresh.id).textContent();
      assert.match(text, /“sneaker” · 2 images · seed 3/, "the job list shows the prompt");
      const body = (await apiGet(URL_LIVE, g.token, `v1/jobs/${fresh.id}`)).body;
      assert.deepEqual(body.params, { steps: 5, sampler: "ddim", guidance: 3, seed: 3, count: 2 }, "what the page sent");
      assert.deepEqual(body.progress, { done: 5, total: 5 }, "progress counts steps");
      assert.equal(body.outputs.length, 2);
      assert.deepEqual((await apiGet(URL_LIVE, g.token, `v1/jobs/${fresh.id}/input`)).body, { prompt: "sneaker" });
      // Two new gallery items, both of this job, newest first.
      const gallery = await waitGallery(g.page, 2 * n);
      assert.deepEqual(gallery.slice(0, 2), [fresh.id, fresh.id], `job ${n}: two gallery items`);
      await g.page.waitForFunction((id) =>
        [...document.querySelectorAll(`#gallery button[data-job-id="${id}"] .caption`)]
          .map((c) => c.textContent).sort().join("|") === "sneaker · seed 3 · #1|sneaker · seed 3 · #2", fresh.id);
    }
    assert.equal(await g.page.$eval("#gallery button.generated img", (i) => getComputedStyle(i).imageRendering), "pixelated");
    await shot(g.page, "10-generated-gallery", { fullPage: true });

    // The viewer: the image scaled up crisply with its prompt and seed, no before/after.
    const [newest, oldest] = ids;
    await g.page.click(`#gallery button[data-job-id="${newest}"][data-index="0"]`);
    await g.page.waitForSelector("#viewer[open]");
    await g.page.waitForFunction(() => document.getElementById("generated").complete &&
                                       document.getElementById("generated").naturalWidth > 0);
    assert.ok(await g.page.$eval("#compare", (d) => d.hidden), "no before/after slider");
    const view = await g.page.$eval("#generated", (i) =>
      ({ natural: i.naturalWidth, shown: i.getBoundingClientRect().width, rendering: getComputedStyle(i).imageRendering }));
    assert.equal(view.natural, 32);
    assert.ok(view.shown >= 128, `shown ${view.shown} px wide`);
    assert.equal(view.rendering, "pixelated");
    const info = await g.page.textContent("#generated-info");
    assert.match(info, /prompt “sneaker” · seed 3 · 5 steps · ddim · guidance 3/);
    await shot(g.page, "11-generated-viewer");
    await g.page.click("#close");
    await g.page.waitForSelector("#viewer:not([open])", { state: "attached" });

    // Downloads: output 0 of each is a 32×32 PNG, the same bytes both times (determinism
    // through the API); output 1 is another image (noise stream 1).
    const first = await downloadItem(g.page, oldest, 0);
    const second = await downloadItem(g.page, newest, 0);
    const png = decodePng(first);
    assert.deepEqual([png.width, png.height], [32, 32]);
    assert.ok(first.equals(second), "output 0 of two identical requests is byte-identical");
    const other = await downloadItem(g.page, newest, 1);
    assert.deepEqual([decodePng(other).width, decodePng(other).height], [32, 32]);
    assert.ok(!other.equals(first), "image 1 differs from image 0");
    console.log(`# ${GEN}: "sneaker", seed 3, 5 steps: output 0 ${first.length} bytes, identical across two jobs`);

    // The other user: its own image only, and the server answers 404 for g's.
    await chooseGenerate(h.page, { prompt: "ankle boot", steps: 2, seed: 1, count: 1 });
    await h.page.click("#send");
    const [{ id: own }] = await waitJobCount(h.page, 1);
    await waitStatus(h.page, own, "succeeded");
    assert.deepEqual(await waitGallery(h.page, 1), [own], "h's gallery holds h's image only");
    for (const id of ids) {
      assert.equal((await apiGet(URL_LIVE, h.token, `v1/jobs/${id}/outputs/0`)).status, 404);
      assert.equal((await apiGet(URL_LIVE, h.token, `v1/jobs/${id}/input`)).status, 404);
    }
    assert.deepEqual((await apiGet(URL_LIVE, h.token, "v1/gallery")).body.items.map((i) => i.job_id), [own]);

    // Phone width with the generate form: one column, nothing wider than the screen.
    await g.page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await g.page.evaluate(() => document.documentElement.scrollWidth <= 390), "no sideways scrolling");
    await shot(g.page, "12-generate-phone");
    await g.page.setViewportSize({ width: 1100, height: 820 });

    // Refused: values the form lets through (the server checks ranges) show the server's message.
    const session = await (await fetch(URL_LIVE + "v1/sessions", { method: "POST" })).json();
    for (const [field, value] of [["steps", 0], ["count", 17]]) {
      const params = { steps: 5, sampler: "ddim", guidance: 3, seed: 3, count: 2, [field]: value };
      const res = await fetch(URL_LIVE + "v1/jobs", {
        method: "POST",
        headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ model: GEN, input: { prompt: "sneaker" }, params }),
      });
      assert.equal(res.status, 422, `${field} ${value}: status`);
      const { error } = await res.json();
      assert.equal(error.code, "invalid_params");
      await chooseGenerate(g.page, wanted);
      await g.page.fill(`#${field}`, String(value));
      await g.page.click("#send");
      await g.page.waitForFunction((m) => document.querySelector("#form-error").textContent === m, error.message);
      console.log(`# ${field} ${value}: 422 "${error.message}"`);
      if (field === "steps") await shot(g.page, "13-generate-refused");
    }
    assert.equal((await jobList(g.page)).length, 2, "nothing more was queued");
  });

  test("refused uploads show the server's own message", async () => {
    const e = await newUser(URL_LIVE, "e");
    // A second client (outside the page) sends the same files to learn what the server says.
    const session = await (await fetch(URL_LIVE + "v1/sessions", { method: "POST" })).json();
    const cases = [
      ["too-many-pixels.png", 413, "payload_too_large"],
      ["too-many-bytes.png", 413, "payload_too_large"],
      ["notes.png", 415, "unsupported_media_type"],
    ];
    for (const [file, status, code] of cases) {
      // The multipart body is spelled out, so that it is the same on every Node: it ends with
      // the CRLF after the closing boundary, as Chromium's does (Node 18's fetch omits it;
      // kiln reads both, tests/server/multipart_test.cpp). This client asks what the page's
      // request gets.
      const boundary = "kiln-test-boundary-7c1e";
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n` +
          `${JSON.stringify({ model: FAST })}\r\n--${boundary}\r\n` +
          `Content-Disposition: form-data; name="image"; filename="${file}"\r\n` +
          "Content-Type: image/png\r\n\r\n"),
        readFileSync(join(INPUTS, file)),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const res = await fetch(URL_LIVE + "v1/jobs", {
        method: "POST", body,
        headers: {
          Authorization: `Bearer ${session.token}`,
          "Content-Type": `multipart/form-data; boundary=${boundary}`,
        },
      });
      assert.equal(res.status, status, `${file}: status`);
      const { error } = await res.json();
      assert.equal(error.code, code, `${file}: code`);

      if (file === "notes.png") {  // by keyboard: Tab to the drop zone, Enter opens the picker
        // Listening turns on playwright's file chooser interception, which is not awaited:
        // listen several round trips before the key press, or a loaded machine loses the race.
        const chooserShown = e.page.waitForEvent("filechooser");
        await e.page.bringToFront();  // keys and the file chooser go to the window in front
        await e.page.selectOption("#model", FAST);
        await e.page.focus("#model");
        await e.page.keyboard.press("Tab");
        assert.equal(await e.page.evaluate(() => document.activeElement.id), "drop");
        const [chooser] = await Promise.all([chooserShown, e.page.keyboard.press("Enter")]);
        await chooser.setFiles(join(INPUTS, file));
        await e.page.waitForSelector("#send:not([disabled])");
      } else {
        await chooseUpload(e.page, file, FAST);
      }
      await e.page.click("#send");
      await e.page.waitForFunction((m) => document.querySelector("#form-error").textContent === m, error.message);
      console.log(`# ${file}: ${status} "${error.message}"`);
      await shot(e.page, `07-refused-${file.replace(/\.png$/, "")}`);
    }
    assert.deepEqual(await jobList(e.page), [], "nothing was queued");
  });

  test("no uncaught errors in any page, no token in any URL", () => {
    for (const u of users) {
      assert.deepEqual(u.errors, [], `page errors of user ${u.name}`);
      assert.ok(u.urls.length > 0);
      assert.deepEqual(u.urls.filter((url) => url.includes(u.token)), [], `user ${u.name}'s token in a URL`);
    }
  });
});
