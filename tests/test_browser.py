"""The built sites in a real browser: Debian's headless Chromium, driven by Playwright.

The sites are served from a local HTTP server on 127.0.0.1. Every request to another host is blocked and
counted as a failure, so the pages are known to work offline. Checked on the root page and on every page
of both sites: no console error or warning, no page error, no failed request, every image loaded, math
typeset by MathJax, the language switch (clicked: it must land on the same page in the other language);
on chapter pages also the Colab button and the copy buttons. Search is run in both languages. Screenshots of one
chapter per language go to _build/screenshots/.

Chromium comes from Debian (`apt-get install chromium`, done by .ci/run); `playwright install` is never run.
Chinese text in the screenshots needs a CJK font (`apt-get install fonts-noto-cjk`); the checks do not.
"""
import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from test_site import CONFIG, LANGS, ROOT, TOC, build_site, chapter_pages, colab_url, site_pages
from tools.build_pdf import CHROMIUM, CHROMIUM_ARGS

SCREENSHOTS = ROOT / "_build" / "screenshots"
SEARCH_WORDS = {"zh": "卷积", "en": "convolution"}

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements.txt)")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    build_site()
    handler = functools.partial(QuietHandler, directory=str(ROOT / "_build" / "html"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Screens a reader uses: the phone and tablet ones have touch, and are below the theme's 992 px breakpoint,
# where the chapter list and the page contents live behind the header's two toggle buttons.
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
              "has_touch": True},
    "tablet": {"viewport": {"width": 800, "height": 1100}, "has_touch": True},
}


class Visit:
    """One browser tab that records every problem a reader could run into."""

    def __init__(self, browser, base, screen=DESKTOP):
        self.base = base
        self.context = browser.new_context(locale="en-US", **screen)
        self.page = self.context.new_page()
        self.problems = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)
        self.context.route("**/*", self._route)

    def _console(self, message):
        if message.type in ("error", "warning", "assert"):
            self.problems.append(f"console {message.type}: {message.text} at {message.location}")

    def _failed(self, request):
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _leave(self, go):
        """Navigate with `go()`. The browser cancels what the page being left still loads from the site (its
        favicon, MathJax's fonts from the shared /mathjax/): those cancellations, and only those, are not
        problems."""
        left = self.base + "/" if self.page.url.startswith(self.base) else None
        before = len(self.problems)
        go()
        if left:
            self.problems[before:] = [p for p in self.problems[before:] if not (
                p.startswith(f"request failed: {left}") and p.endswith("(net::ERR_ABORTED)"))]

    def click_away(self, locator):
        """Follow a link, as a reader would."""
        self._leave(lambda: (locator.click(), self.page.wait_for_load_state("load")))

    def _response(self, response):
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def _route(self, route):
        if route.request.url.startswith(self.base):
            route.continue_()
        else:
            self.problems.append(f"request to another host: {route.request.url}")
            route.abort()

    def open(self, path):
        self._leave(lambda: self.page.goto(self.base + path, wait_until="load"))
        self.settle()

    def settle(self):
        """Wait for the network to go quiet and for MathJax to finish typesetting (where a page uses it)."""
        self.page.evaluate("async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
                           " await MathJax.startup.promise; await document.fonts.ready; }")
        self.page.wait_for_load_state("networkidle")

    def broken_images(self):
        return self.page.evaluate(
            "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src'))")

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, server):
    tab = Visit(browser, server)
    yield tab
    tab.close()


def path_of(url):
    return urlsplit(url).path


def test_root_page(visit):
    visit.open("/index.html")
    links = visit.page.locator("a.choice")
    assert links.count() == len(LANGS)
    for i, lang in enumerate(LANGS):
        assert links.nth(i).get_attribute("href") == f"{lang}/index.html"
    assert not visit.problems, visit.problems
    visit.click_away(links.nth(0))
    assert path_of(visit.page.url) == f"/{LANGS[0]}/index.html"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    visit.page.goto(visit.base + "/index.html")
    visit.page.screenshot(path=str(SCREENSHOTS / "root.png"))


@pytest.mark.parametrize("lang", LANGS)
def test_every_page(visit, lang):
    """Each page loads cleanly, shows its images and typeset math, has the Colab button and copy buttons
    (chapters), and its language switch lands on the same page in the other language."""
    expected_lang = CONFIG["languages"][lang]["sphinx"]["config"]["language"].replace("_", "-")
    others = [other for other in LANGS if other != lang]
    report = {}
    for name in site_pages(lang) + ["genindex", "search"]:
        for other in others:
            visit.problems.clear()
            visit.open(f"/{lang}/{name}.html")
            page = visit.page
            problems = list(visit.problems)
            problems += [f"image not shown: {src}" for src in visit.broken_images()]
            if page.locator("span.math, div.math").count():
                if not page.locator("mjx-container").count():
                    problems.append("math on the page is not typeset (no mjx-container)")
                if page.locator("mjx-merror").count():
                    problems.append(f"MathJax errors: {page.locator('mjx-merror').all_inner_texts()}")
                shown = page.evaluate("() => Array.from(document.querySelectorAll('mjx-container'), "
                                      "m => m.textContent)")
                backslashed = [text for text in shown if "\\" in text]
                if backslashed:
                    problems.append(f"typeset math shows a backslash: {backslashed}")
            if page.get_attribute("html", "lang") != expected_lang:
                problems.append(f"<html lang> is {page.get_attribute('html', 'lang')}")
            if name in chapter_pages(lang):
                colab = page.locator("a.book-colab-button")
                hrefs = [colab.nth(i).get_attribute("href") for i in range(colab.count())]
                if hrefs != [colab_url(lang, name)]:
                    problems.append(f"Colab button links to {hrefs}, expected {colab_url(lang, name)}")
                elif not colab.is_visible():
                    problems.append("the Colab button is not visible")
                if not page.locator("button.copybtn").count():
                    problems.append("no copy button on the code cells")
            # The language switch, clicked as a reader would.
            switch = page.locator(f"a.book-language-switch[hreflang^='{other.split('_')[0]}']")
            if switch.count() != 1 or not switch.is_visible():
                problems.append(f"no visible switch to {other}")
            else:
                visit.click_away(switch)
                counterpart = name if name in site_pages(other) + ["genindex", "search"] else TOC["root"]
                if path_of(page.url) != f"/{other}/{counterpart}.html":
                    problems.append(f"the switch to {other} lands on {page.url}, expected {other}/{counterpart}.html")
                elif page.get_attribute("html", "lang") == expected_lang:
                    problems.append(f"the switch to {other} lands on a page in {expected_lang}")
            if problems:
                report[name] = problems
    assert not report, "\n".join(f"{lang}/{name}.html:\n  " + "\n  ".join(p) for name, p in report.items())


# Weight, from the measurement after MathJax was shared and unused theme files dropped (20.0 MB; chapter 6:
# 2.43 MB in 39 requests as served here, uncompressed; before: 72.9 MB, and 4.10 MB in 42 requests).
SITE_LIMIT_MB = 25
FIRST_VISIT_LIMIT = {"bytes": 2_800_000, "requests": 40}
WEIGHED_CHAPTER = "06-lenet"


def test_site_and_first_visit_weight(browser, server):
    """The whole site (the PDFs aside), and what a first visit to chapter 6 downloads (empty cache), stay under
    the limits."""
    site = ROOT / "_build" / "html"
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and "pdf" not in f.relative_to(site).parts)
    report = [f"site: {size / 1e6:.1f} MB"]
    too_heavy = size > SITE_LIMIT_MB * 1e6
    for lang in LANGS:
        if WEIGHED_CHAPTER not in chapter_pages(lang):
            continue
        tab = Visit(browser, server)
        sizes = []
        tab.page.on("requestfinished", lambda request, sizes=sizes: sizes.append(request.sizes()["responseBodySize"]))
        try:
            tab.open(f"/{lang}/{WEIGHED_CHAPTER}.html")
            assert not tab.problems, tab.problems
        finally:
            tab.close()
        report.append(f"{lang}/{WEIGHED_CHAPTER}.html first visit: {sum(sizes) / 1e6:.2f} MB in {len(sizes)} requests")
        too_heavy |= sum(sizes) > FIRST_VISIT_LIMIT["bytes"] or len(sizes) > FIRST_VISIT_LIMIT["requests"]
    print("\n" + "\n".join(report))
    assert not too_heavy, (f"heavier than the limits (site {SITE_LIMIT_MB} MB, first visit {FIRST_VISIT_LIMIT}): "
                           + "; ".join(report))


def in_viewport_soon(locator, timeout=3000):
    try:
        sync_api.expect(locator).to_be_in_viewport(timeout=timeout)
    except AssertionError:
        return False
    return True


def middle_chapter(lang):
    """A chapter with chapters before and after it (its sidebar lists both)."""
    chapters = chapter_pages(lang)
    return chapters[len(chapters) // 2]


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("lang", LANGS)
def test_menus_open_on_narrow_screens(browser, server, lang, screen):
    """Below 992 px the chapter list and the page contents are behind two buttons in the article header.
    Tapping the visible one must bring the chapter links (and the page's section links) into view."""
    tab = Visit(browser, server, SCREENS[screen])
    try:
        name = middle_chapter(lang)
        tab.open(f"/{lang}/{name}.html")
        page = tab.page
        chapter_links = page.locator(".bd-docs-nav a.reference.internal")
        for toggle_class, links, what in ((".primary-toggle", chapter_links, "chapter list"),
                                          # the page's sections (its subsections unfold as one scrolls to them)
                                          (".secondary-toggle", page.locator("nav.page-toc li.toc-h2 > a.nav-link"),
                                           "page contents")):
            toggles = page.locator(f"button{toggle_class}:visible")
            assert toggles.count() == 1, f"{screen}: {toggles.count()} visible {toggle_class} buttons"
            assert not links.first.is_visible(), f"{screen}: the {what} is open before any tap"
            toggles.first.tap()
            if not in_viewport_soon(links.first):
                pytest.fail(f"{lang}/{name}.html at {screen} size: tapping the visible {toggle_class} button "
                            f"does not bring the {what} into view", pytrace=False)
            shown = [links.nth(i).get_attribute("href") for i in range(links.count()) if links.nth(i).is_visible()]
            assert len(shown) == links.count(), f"{screen}: only {len(shown)} of {links.count()} links shown"
            page.keyboard.press("Escape")
            sync_api.expect(links.first).not_to_be_visible(timeout=3000)
        expected = {f"{n}.html" for n in chapter_pages(lang) if n != name}  # this page's own link is "#"
        listed = {chapter_links.nth(i).get_attribute("href").split("#")[0] for i in range(chapter_links.count())}
        assert expected <= listed, f"the chapter list lacks {sorted(expected - listed)}"
        assert not tab.problems, tab.problems
    finally:
        tab.close()


# Every text of the interface a reader can meet on a page: tooltips (title, and Bootstrap's copy of it), labels
# for screen readers, placeholders, alt texts, button and menu texts, the copy buttons' SVG titles. Each with
# the language of its element (the language switch is written in its target language on purpose).
# Cell outputs are the book's content, not its interface, and are left out.
INTERFACE_TEXTS = """() => {
  const attributes = ["title", "data-bs-original-title", "data-bs-title", "aria-label", "placeholder",
                      "data-tooltip", "alt"];
  const texts = [];
  const add = (el, text) => {
    text = (text || "").trim();
    if (text) texts.push([text, el.closest("[lang]").getAttribute("lang")]);
  };
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest(".cell_output")) continue;
    for (const name of attributes) add(el, el.getAttribute(name));
    if (el.tagName.toLowerCase() === "title") add(el, el.textContent);
  }
  for (const el of document.querySelectorAll("button, .btn, .dropdown-item, summary, .search-summary"))
    add(el, el.textContent);
  return texts;
}"""
CJK = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]")
# Names that read the same in every language (products, file types, keys).
NAMES = {"Colab", "Google", "GitHub", "PDF", "pdf", "ipynb", "md", "Ctrl", "K"}


def foreign_texts(texts, lang):
    """The texts in `texts` (text, element language) that are not in the page's language `lang`."""
    foreign = set()
    for text, owner in texts:
        if owner.split("-")[0] != lang.split("_")[0]:
            continue  # written in another language on purpose, and marked so
        if lang.startswith("zh"):
            if not CJK.search(text) and set(re.findall(r"[A-Za-z]+", text)) - NAMES:
                foreign.add(text)
        elif CJK.search(text):
            foreign.add(text)
    return sorted(foreign)


@pytest.mark.parametrize("lang", LANGS)
def test_interface_speaks_the_page_language(visit, lang):
    """Tooltips, labels and menus of the zh site are in Chinese (Simplified), of the en site in English."""
    traditional = {"列印", "搜尋", "檔案", "頁面", "顯示", "隱藏", "連結"}  # the themes' zh_TW wording
    report = {}
    for path in ["index.html", f"{middle_chapter(lang)}.html", f"search.html?q={quote(SEARCH_WORDS[lang])}"]:
        visit.open(f"/{lang}/{path}")
        texts = visit.page.evaluate(INTERFACE_TEXTS)
        bad = foreign_texts(texts, lang)
        if lang.startswith("zh"):
            bad += sorted({text for text, _ in texts if any(word in text for word in traditional)})
        if bad:
            report[path] = bad
    assert not report, f"{lang}: interface texts in another language: {report}"


def section_number(page):
    """The number of the section that the page's #anchor points into (its heading's "6.2." part)."""
    return page.evaluate("""() => {
      const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
      const section = target && target.closest("section");
      const number = section && section.querySelector(
        ":scope > h1 .section-number, :scope > h2 .section-number, :scope > h3 .section-number");
      return number ? number.textContent.trim() : null;
    }""")


def test_language_switch_keeps_the_section(visit):
    """Switching language on chapter/#section lands on the same section (section ids differ by language)."""
    first, other = LANGS[0], LANGS[1]
    name = middle_chapter(first)
    visit.open(f"/{first}/{name}.html")
    sections = visit.page.locator("article section > section")
    anchors = [sections.nth(position).get_attribute("id") for position in (1, 2)]
    for anchor in anchors:
        visit.open(f"/{first}/{name}.html#{anchor}")
        number = section_number(visit.page)
        assert number, f"{first}/{name}.html#{anchor} is not in a numbered section"
        visit.click_away(visit.page.locator("a.book-language-switch"))
        assert path_of(visit.page.url) == f"/{other}/{name}.html"
        assert urlsplit(visit.page.url).fragment, f"the switch from #{anchor} drops the anchor: {visit.page.url}"
        assert section_number(visit.page) == number, (
            f"the switch from {first}/{name}.html#{anchor} (section {number}) lands on {visit.page.url}, "
            f"section {section_number(visit.page)}")
    assert not visit.problems, visit.problems


# TeX as the page's source writes it: math delimiters and commands (code's "\t" is not TeX).
TEX = re.compile(r"\\[()\[\]]|\\(?:times|frac|text|math[a-z]+|left|right|sum|cdot|sigma|alpha|partial)\b")


@pytest.mark.parametrize("lang", LANGS)
def test_search(visit, lang):
    """Search finds chapters; the result snippets are the page's prose: no raw TeX, no header buttons."""
    word = SEARCH_WORDS[lang]
    visit.open(f"/{lang}/search.html?q={quote(word)}")
    results = visit.page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=15000)
    visit.page.locator("#search-results .search-summary").wait_for(timeout=30000)
    visit.page.wait_for_load_state("networkidle")
    found = [path_of(results.nth(i).locator("a").first.get_attribute("href")) for i in range(results.count())]
    chapters = {f"{name}.html" for name in chapter_pages(lang)}
    assert {Path(f).name for f in found} & chapters, f"searching {word!r} in {lang} finds {found}"
    snippets = visit.page.locator("#search-results ul.search li p.context").all_text_contents()
    assert snippets, "the search results have no snippets"
    header = [CONFIG["languages"][lang]["ui"]["colab"], "Ctrl+K", ".ipynb"]
    # The snippet text of a page full of math and buttons, as search makes it from any page.
    nin = visit.page.evaluate("async () => Search.htmlToText(await (await fetch('09-nin.html')).text())")
    for text in snippets + [nin]:
        assert not TEX.search(text), f"raw TeX in a search snippet: {TEX.search(text)[0]!r} in {text[:300]!r}"
        assert not [h for h in header if h in text], f"header button text in a search snippet: {text[:300]!r}"
    assert not visit.problems, visit.problems


@pytest.mark.parametrize("lang", LANGS)
def test_screenshot_of_a_chapter(visit, lang):
    """A picture to look at: the first chapter both languages have (see _build/screenshots/)."""
    shared = [name for name in chapter_pages(LANGS[0]) if all(name in chapter_pages(l) for l in LANGS)]
    if not shared:
        pytest.skip("no chapter exists in every language yet")
    name = shared[0]
    visit.open(f"/{lang}/{name}.html")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    visit.page.screenshot(path=str(SCREENSHOTS / f"{lang}-{name}.png"))
    figure = visit.page.locator("img[src*='_images/'][src$='.svg']").first
    if figure.count():
        figure.scroll_into_view_if_needed()
        visit.page.screenshot(path=str(SCREENSHOTS / f"{lang}-{name}-figure.png"))
    assert not visit.problems, visit.problems
