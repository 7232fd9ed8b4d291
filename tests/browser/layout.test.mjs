// How the page looks and is found: the light and dark themes and the intro before sign-in,
// and the sections (Convert, Conversions, Account, Users) one click away on desktop and phone,
// in both themes, with back and forward, deep links, and axe-core finding no serious or
// critical accessibility violation in any of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ARTIFACT_DIR, BASE_URL, browser, checkAccessibility, close, navigate, open, signIn,
} from './support.mjs';

test('the page follows the system dark mode and says what the service does', { timeout: 60_000 }, async () => {
  const luminance = (rgb) => {
    const [r, g, b] = rgb.match(/\d+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  for (const colorScheme of ['light', 'dark']) {
    const context = await browser.newContext({ colorScheme, viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(BASE_URL + '/');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    assert.match(await page.locator('[data-testid=intro]').textContent(), /Upload a video and get its audio back/);
    const background = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    const text = await page.evaluate(() => getComputedStyle(document.body).color);
    if (colorScheme === 'dark') {
      assert.ok(luminance(background) < 0.2 && luminance(text) > 0.7, `dark: ${background} / ${text}`);
    } else {
      assert.ok(luminance(background) > 0.8 && luminance(text) < 0.3, `light: ${background} / ${text}`);
    }
    await page.screenshot({ path: join(ARTIFACT_DIR, `web-${colorScheme}.png`) });
    await context.close();
  }
});

/** Whether the element's box lies within the viewport. */
function inViewport(locator) {
  return locator.evaluate((e) => {
    const box = e.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0;
  });
}

test('sections are one click away on desktop and phone, light and dark, deep-linkable, and accessible', { timeout: 240_000 }, async () => {
  const viewports = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
  for (const [device, viewport] of Object.entries(viewports)) {
    for (const colorScheme of ['light', 'dark']) {
      const label = `${device}, ${colorScheme}`;
      const { context, page, problems } = await open({ viewport, colorScheme, bypassCSP: true });
      await page.goto(BASE_URL + '/');
      await page.locator('#login-form').waitFor({ state: 'visible' });
      await checkAccessibility(page, `${label}: sign-in`);
      await signIn(page);
      assert.equal(await page.locator('#nav').getByRole('link', { name: 'Users' }).isVisible(), false, 'Users is for administrators');
      await checkAccessibility(page, `${label}: convert`);

      await navigate(page, 'Account');
      assert.equal(new URL(page.url()).hash, '#/account');
      const heading = page.locator('#account-title');
      assert.equal(await heading.textContent(), 'Your account');
      assert.ok(await inViewport(heading), `${label}: the Account heading is in the first screen`);
      assert.equal(await page.locator('#convert-view').isVisible(), false);
      assert.equal(await page.locator('#nav a[aria-current=page]').textContent(), 'Account');
      await checkAccessibility(page, `${label}: account`);
      await page.screenshot({ path: join(ARTIFACT_DIR, `web-account-${device}-${colorScheme}.png`) });

      await navigate(page, 'Conversions');
      assert.equal(new URL(page.url()).hash, '#/jobs');
      assert.ok(await inViewport(page.locator('#jobs-title')), `${label}: the Conversions heading is in the first screen`);
      await checkAccessibility(page, `${label}: conversions`);

      // Back and forward walk through the sections.
      await page.goBack();
      await page.locator('#account-view').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#jobs-view').isVisible(), false);
      await page.goForward();
      await page.locator('#jobs-view').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#account-view').isVisible(), false);
      await context.close();
      assert.deepEqual(problems, []);
    }
  }

  // A link to a section opens it (a new tab of the signed-in browser); #/users is only for
  // administrators.
  const { context, page, problems } = await open();
  await signIn(page);
  const linked = await context.newPage();
  await linked.goto(BASE_URL + '/#/account');
  await linked.locator('#account-view').waitFor({ state: 'visible' });
  assert.equal(await linked.locator('#convert-view').isVisible(), false);
  assert.equal(await linked.locator('#nav a[aria-current=page]').textContent(), 'Account');
  await linked.goto(BASE_URL + '/#/users');
  await linked.locator('#convert-view').waitFor({ state: 'visible' });
  assert.equal(await linked.locator('#admin-view').isVisible(), false);
  await close(context, problems);
});
