// The creator's page in a real browser: Debian's Chromium, headless, driven
// by playwright-core, at a phone viewport and a desktop one, plus one run
// without JavaScript. Run by functions/creator-page/tests/browser.rs, which
// sets up the data and the page and passes what to expect as a JSON file:
//
//   node creator_page.mjs <plan.json>
//
// Prints one line per check; exits non-zero on the first failure.

import { readFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));

// Whatever hangs, the run ends with a failure well within the test's time.
const watchdog = setTimeout(() => {
  console.error("FAILED: the browser test did not finish within 150 s");
  process.exit(2);
}, 150_000);

function check(ok, what, detail = "") {
  if (!ok) {
    throw new Error(`FAILED: ${what}${detail ? `\n  ${detail}` : ""}`);
  }
  console.log(`ok: ${what}`);
}

const args = [
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-gpu",
  "--disable-quic",
];
if (process.getuid && process.getuid() === 0) {
  args.push("--no-sandbox");
}

async function withContext(browser, options, run) {
  const context = await browser.newContext(options);
  try {
    return await run(context);
  } finally {
    await context.close();
  }
}

async function listPage(browser, name, options) {
  await withContext(
    browser,
    { ...options, permissions: ["clipboard-read", "clipboard-write"] },
    async (context) => {
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      const problems = [];
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(m.text());
      });
      page.on("pageerror", (e) => problems.push(String(e)));

      const response = await page.goto(plan.good, { waitUntil: "load" });
      check(response.status() === 200, `${name}: the link opens the page`, `status ${response.status()}`);
      const headers = response.headers();
      check(headers["cache-control"] === "no-store", `${name}: Cache-Control no-store`, headers["cache-control"]);
      check((headers["x-robots-tag"] || "").includes("noindex"), `${name}: X-Robots-Tag noindex`);
      check(headers["referrer-policy"] === "no-referrer", `${name}: Referrer-Policy no-referrer`);
      const csp = headers["content-security-policy"] || "";
      check(
        csp.includes("script-src 'sha256-") && !csp.includes("unsafe-inline"),
        `${name}: a CSP that allows only hashed inline code`,
        csp,
      );
      const robots = await page.getAttribute('meta[name="robots"]', "content");
      check((robots || "").includes("noindex"), `${name}: meta robots noindex`);

      // Each upload reads as it should.
      const items = await page.$$eval("li.upload", (lis) =>
        lis.map((li) => ({
          file: li.querySelector("h2").textContent,
          status: li.querySelector(".status").textContent,
          text: li.textContent,
          links: Array.from(li.querySelectorAll("a")).map((a) => a.href),
        })),
      );
      const byFile = Object.fromEntries(items.map((i) => [i.file, i]));
      for (const [file, expected] of Object.entries(plan.statuses)) {
        const item = byFile[file];
        check(item !== undefined, `${name}: ${file} is listed`, JSON.stringify(items.map((i) => i.file)));
        check(item.status.startsWith(expected), `${name}: ${file} reads "${expected}"`, item.status);
      }
      check(
        items.map((i) => i.file).join(",") === plan.order.join(","),
        `${name}: newest first, nothing else`,
        items.map((i) => i.file).join(","),
      );
      const posted = byFile[plan.posted_file];
      check(posted.links.includes(plan.posted_link), `${name}: the posted upload links to its post`, posted.links.join(" "));
      for (const text of plan.failure_texts) {
        check(byFile[plan.failed_file].text.includes(text), `${name}: the failure says "${text}"`);
      }
      // The probe's notes (a long or HDR video) show on their upload.
      for (const [file, note] of Object.entries(plan.notes)) {
        const shown = page.locator("li.upload", { has: page.locator("h2", { hasText: file }) }).locator(".note");
        check((await shown.count()) === 1 && (await shown.isVisible()), `${name}: ${file} shows its note`);
        check((await shown.textContent()) === note, `${name}: the note reads as written`, await shown.textContent());
      }

      // Another account's uploads never appear.
      const html = await page.content();
      for (const foreign of plan.foreign_texts) {
        check(!html.includes(foreign), `${name}: nothing of another account (${foreign})`);
      }

      // A caption made of HTML is shown as text, and runs nothing.
      const caption = page.locator(".caption-text").first();
      check((await caption.textContent()) === plan.caption, `${name}: the caption is shown exactly as written`);
      check((await page.locator(".caption-text b, .caption-text img, .caption-text script").count()) === 0, `${name}: no markup from the caption`);
      check((await page.evaluate(() => window.__xss)) === undefined, `${name}: nothing from the caption ran`);

      // The Copy button puts the caption on the clipboard.
      const button = page.getByRole("button", { name: "Copy caption" });
      check(await button.isVisible(), `${name}: the Copy button shows (JavaScript on)`);
      const box = await button.boundingBox();
      check(box && box.height >= 44, `${name}: the Copy button is a comfortable tap target`, JSON.stringify(box));
      await button.click();
      await page.getByRole("status").filter({ hasText: "Copied" }).waitFor({ timeout: 5000 });
      const clipboard = await page.evaluate(() => navigator.clipboard.readText());
      check(clipboard === plan.caption, `${name}: the clipboard holds the caption`, JSON.stringify(clipboard));

      // Fits the screen: nothing wider than the viewport.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(overflow <= 0, `${name}: no sideways scrolling`, `${overflow}px too wide`);

      check(problems.length === 0, `${name}: no console errors (no CSP violation)`, problems.join("\n  "));
      mkdirSync(plan.screenshots_dir, { recursive: true });
      const path = join(plan.screenshots_dir, `creator-page-${name}.png`);
      await page.screenshot({ path, fullPage: true });
      console.log(`screenshot: ${path}`);
    },
  );
}

async function refused(browser, name, url) {
  await withContext(browser, { viewport: { width: 390, height: 844 } }, async (context) => {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const response = await page.goto(url);
    check(response.status() === 403, `${name}: answered 403`, `status ${response.status()}`);
    const title = await page.locator("h1").textContent();
    check(title === "This link no longer works", `${name}: a clear page says the link no longer works`, title);
    check(
      (await page.content()).includes("Ask whoever manages your uploads for a new link"),
      `${name}: the page says what to do`,
    );
    check((await page.locator("li.upload").count()) === 0, `${name}: no upload is shown`);
  });
}

async function withoutJavaScript(browser) {
  await withContext(browser, { javaScriptEnabled: false, viewport: { width: 390, height: 844 } }, async (context) => {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const response = await page.goto(plan.good);
    check(response.status() === 200, "no JavaScript: the page opens");
    check((await page.locator("li.upload").count()) === plan.order.length, "no JavaScript: every upload is listed");
    check(await page.locator(".caption-text").first().isVisible(), "no JavaScript: the caption is there to select");
    check(!(await page.getByRole("button", { name: "Copy caption" }).isVisible()), "no JavaScript: no dead Copy button");
  });
}

console.log("launching Chromium");
const browser = await chromium.launch({
  executablePath: plan.chromium,
  headless: true,
  args,
  timeout: 60_000,
});
let failed = false;
try {
  await listPage(browser, "phone", {
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  await listPage(browser, "desktop", { viewport: { width: 1280, height: 900 } });
  await refused(browser, "revoked link", plan.revoked);
  await refused(browser, "forged link", plan.forged);
  await withoutJavaScript(browser);
} catch (e) {
  failed = true;
  console.error(String(e && e.stack ? e.stack : e));
} finally {
  await browser.close();
}
clearTimeout(watchdog);
process.exit(failed ? 1 : 0);
