"""The book as a PDF per language (tools/build_pdf.py): printed from the built site by Debian's Chromium.

The PDFs are built once per test session from the site that tests/test_site.py builds (or reuses), and
only when the site changed since they were printed. They are read back with pypdf: bookmarks, fonts, images,
and the text of the pages that each check needs (reading all of them would take a minute).
"""
import functools
import html
import os
import re
import subprocess
import sys
import time

import pytest

from test_site import LANGS, ROOT, SITE, build_site, chapter_pages, site_pages
from tools import build_pdf
from tools.build_book import pdf_name

pypdf = pytest.importorskip("pypdf", reason="pip install pypdf (requirements.txt)")

CJK = re.compile(r"[\u4e00-\u9fff]")
COMPATIBILITY = re.compile(r"[\u2e80-\u2fdf\ufb00-\ufb06]")  # radicals, ligatures (tools/build_pdf.py)
EXERCISES = {"zh": "练习", "en": "Exercises"}
SOLUTION = {"zh": "解答", "en": "Solution"}


@functools.cache
def build_pdfs():
    """Print both PDFs unless they are newer than the site's build."""
    if not build_pdf.CHROMIUM.exists():
        message = f"{build_pdf.CHROMIUM} is missing: apt-get install -y chromium fonts-noto-cjk (.ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    build_site()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "tools/build_pdf.py", "--if-changed"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        pytest.fail(f"tools/build_pdf.py failed:\n{proc.stdout[-20000:]}", pytrace=False)
    print(f"\n{proc.stdout.strip()}\nPDF build (or up-to-date check): {time.perf_counter() - start:.1f} s")


@functools.cache
def reader(lang):
    build_pdfs()
    return pypdf.PdfReader(build_pdf.PDF / pdf_name(lang))


@functools.cache
def page_text(lang, index, layout=False):
    """The text of page `index` (0-based); layout mode also reads the math that MathJax drew."""
    return reader(lang).pages[index].extract_text(extraction_mode="layout" if layout else "plain")


def squeeze(text):
    """Text without tags and white space (lines wrap differently in the PDF)."""
    return re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]+>", "", text)))


def article(lang, name):
    page = (SITE / lang / f"{name}.html").read_text(encoding="utf-8")
    return page[page.index('<article class="bd-article">'):]


def chapter_title(lang, name):
    """The page's heading as the site shows it, e.g. "6. 卷积神经网络（LeNet）"."""
    return squeeze(re.search(r"<h1>(.*?)<a class=\"headerlink\"", article(lang, name), re.S).group(1))


@functools.cache
def bookmarks(lang):
    """[(depth, squeezed title, 0-based page)] of the PDF's bookmarks, in order."""
    pdf = reader(lang)

    def walk(items, depth):
        for item in items:
            if isinstance(item, list):
                yield from walk(item, depth + 1)
            else:
                yield depth, squeeze(item.title), pdf.get_destination_page_number(item)
    return list(walk(pdf.outline, 0))


def pages_of(lang, name):
    """range of the 0-based pages that the site page `name` fills in the PDF."""
    top = [(title, page) for depth, title, page in bookmarks(lang) if depth == 0]
    starts = [page for title, page in top]
    first = dict(top)[chapter_title(lang, name)]
    later = [page for page in starts if page > first]
    return range(first, later[0] + 1 if later else len(reader(lang).pages))


def text_of(lang, pages, layout=False):
    return "".join(page_text(lang, i, layout) for i in pages)


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_has_a_bookmark_for_every_page_and_section(lang):
    top = [title for depth, title, _ in bookmarks(lang) if depth == 0]
    missing = [name for name in site_pages(lang) if chapter_title(lang, name) not in top]
    assert not missing, f"{pdf_name(lang)}: no bookmark for {missing}; the bookmarks are {top}"
    sections = sum(depth == 1 for depth, _, _ in bookmarks(lang))
    assert sections >= 3 * len(chapter_pages(lang)), f"only {sections} section bookmarks"
    pages = len(reader(lang).pages)
    print(f"\n{pdf_name(lang)}: {pages} pages")
    assert pages >= 5 * len(chapter_pages(lang)), f"{pages} pages for {len(chapter_pages(lang))} chapters"


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_pages_are_numbered(lang):
    count = len(reader(lang).pages)
    for number in (2, count // 2, count):
        last_line = page_text(lang, number - 1).strip().splitlines()[-1].strip()
        assert last_line == str(number), f"page {number} ends with {last_line!r}, not with its number"


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_text_is_the_sites_text(lang):
    """Each chapter's first page has its title and first sentence as text (selectable, searchable), Chinese
    written with the ideographs, not with the look-alike radicals, and no ligature characters."""
    for name in chapter_pages(lang):
        first_page = pages_of(lang, name)[0]
        text = squeeze(page_text(lang, first_page))
        paragraph = squeeze(re.sub(r"\\\(.*?\\\)", "", re.search(r"<p>(.*?)</p>", article(lang, name), re.S).group(1)))
        assert chapter_title(lang, name) in text, f"{name}: its title is not on page {first_page + 1}"
        assert paragraph[:20] in text, f"{name}: its first paragraph ({paragraph[:20]!r}) is not in the text"
        assert not COMPATIBILITY.search(text), f"page {first_page + 1}: {COMPATIBILITY.findall(text)[:10]}"


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_fonts_are_embedded(lang):
    """Every font's glyphs are in the file (font programs, or Type 3 glyph procedures where Chromium draws
    an OpenType CFF font like Noto CJK), each with a Unicode map; the Chinese book's ideographs among them."""
    not_embedded, cjk = set(), False
    for page in reader(lang).pages:
        for font in build_pdf.fonts_of(page.get("/Resources")):
            if font.get("/Subtype") == "/Type3":
                embedded = "/CharProcs" in font
            else:
                descriptor = font["/DescendantFonts"][0].get_object() if font.get("/Subtype") == "/Type0" else font
                embedded = any(k in descriptor["/FontDescriptor"] for k in ("/FontFile", "/FontFile2", "/FontFile3"))
            if not embedded or "/ToUnicode" not in font:
                not_embedded.add(str(font.get("/BaseFont")))
            elif not cjk:
                cmap = font["/ToUnicode"].get_object().get_data().decode("latin-1")
                cjk = any(CJK.search(text) for _, text in build_pdf.cmap_mappings(cmap))
    assert not not_embedded, f"fonts not embedded or without a Unicode map: {sorted(not_embedded)}"
    if lang.startswith("zh"):
        assert cjk, "no font with Chinese glyphs in the zh PDF"


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_has_typeset_math_and_every_plot(lang):
    """Chapter 1's formulas a×b are typeset (the TeX source is not in the text); every plot of the site is
    an image in the PDF."""
    first = chapter_pages(lang)[0]
    formulas = re.findall(r"\\\((\d+)\\times (\d+)\\\)", article(lang, first))
    assert formulas, f"{lang}/{first}.html has no formula a\\times b to look for"
    a, b = formulas[0]
    pages = pages_of(lang, first)[:3]
    text = text_of(lang, pages, layout=True)
    assert re.search(rf"{a}\s*×\s*{b}", text), f"{lang}: the formula {a}×{b} is not on pages {list(pages)}"
    assert "\\times" not in text and "\\(" not in text, f"{lang}: TeX source in the PDF"
    plots = {src for name in site_pages(lang) for src in re.findall(r'src="(_images/[^"]+\.png)"', article(lang, name))}
    images = {x.indirect_reference.idnum for page in reader(lang).pages
              for x in [o.get_object() for o in (page.get("/Resources", {}).get("/XObject") or {}).values()]
              if x.get("/Subtype") == "/Image"}
    assert len(images) >= len(plots), f"{lang}: {len(images)} images in the PDF, {len(plots)} plots on the site"


def test_zh_pdf_has_the_zh_figures():
    """The Chinese book shows the figures' Chinese variants (images/zh/): their labels are its text."""
    used = [(name, ROOT / "images" / "zh" / svg) for name in chapter_pages("zh")
            for svg in re.findall(r'src="_images/([^"]+\.svg)"', article("zh", name))
            if (ROOT / "images" / "zh" / svg).is_file()]
    assert used, "no zh chapter shows a figure from images/zh/"
    name, figure = used[0]
    labels = [squeeze(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", figure.read_text(encoding="utf-8"))
              if CJK.search(t)]
    text = squeeze(text_of("zh", pages_of("zh", name)))
    assert labels and all(label in text for label in labels), (
        f"{figure.name} (in {name}): labels not in the PDF: {[label for label in labels if label not in text]}")


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_has_the_worked_solutions(lang):
    """The solutions, collapsed on the site, are printed after their exercises at the end of the chapter."""
    name = next(n for n in chapter_pages(lang) if "cnn-solution" in article(lang, n))
    solution = article(lang, name)
    solution = solution[solution.index('<details class="cnn-solution'):]
    code = squeeze(re.search(r"<pre>(.*?)</pre>", solution[:solution.index("</details>")], re.S).group(1))
    pages = pages_of(lang, name)
    start = next(page for depth, title, page in bookmarks(lang)
                 if depth == 1 and page in pages and EXERCISES[lang] in title)
    text = squeeze(text_of(lang, range(start, pages[-1] + 1)))
    assert SOLUTION[lang] in text and code[:60] in text, f"{name}: its first solution is not printed"


def test_each_site_links_its_pdf():
    """Each site's header links its language's PDF, published beside the sites; the site workflow builds them."""
    build_pdfs()
    for lang in LANGS:
        target = SITE / "pdf" / pdf_name(lang)
        assert target.is_file(), f"{target} is missing"
        for name in chapter_pages(lang)[:1] + ["index"]:
            page = (SITE / lang / f"{name}.html").read_text(encoding="utf-8")
            hrefs = re.findall(r'<a class="btn btn-sm book-pdf" href="([^"]+)"', page)
            assert [(SITE / lang / h).resolve() for h in hrefs] == [target.resolve()], f"{lang}/{name}.html: {hrefs}"
    assert "make pdf" in (ROOT / ".github" / "workflows" / "site.yml").read_text(encoding="utf-8"), (
        "the site workflow does not build and publish the PDFs")
