"""Print the book as one PDF per language, from the built site, with the Chromium the browser test uses.

    python tools/build_pdf.py               # every language -> _build/pdf/<name>-<lang>.pdf
    python tools/build_pdf.py --lang en     # one language
    python tools/build_pdf.py --if-changed  # nothing to do when the PDFs are newer than the site's build

The PDF holds what the site shows, so it is never out of date: every page of the toc in its order (stored
outputs, figures in the page's language, math, code, exercises with their worked solutions opened), after a
title page and a table of contents. For each language:

1. `_build/pdf/<lang>.html`, one document: title page, table of contents (chapters and their sections, as
   links), then each page's article from `_build/html/<lang>/` with a page break before it. Ids get the
   page's name as prefix so they stay unique, and links between pages become links inside the document.
   Styles, figures and MathJax are the site's own files.
2. Chromium (/usr/bin/chromium, driven by Playwright) opens it, MathJax typesets the math, the solutions are
   opened, and `printToPDF` writes A4 pages with page numbers in the footer, bookmarks from the headings
   (chapters and sections) and a tagged structure. Chromium embeds the fonts it used as subsets (Noto Sans CJK
   for Chinese, with their Unicode mapping), so the text can be selected and searched.

The PDFs are also copied to `_build/html/pdf/`, where each site's "PDF" button links to them. pypdf rewrites
two things Chromium gets wrong (see `finish_pdf`).
"""
import argparse
import functools
import html
import re
import shutil
import subprocess
import sys
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import build_book  # noqa: E402

PDF = build_book.BUILD / "pdf"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FOOTER = ('<div style="width:100%; font-size:8pt; color:#555; text-align:center;">'
          '<span class="pageNumber"></span></div>')
# The document's own print styles, after the site's: no buttons or permalinks, code and outputs wrapped
# instead of cut at the page edge, a new page for each chapter, figures kept whole.
PRINT_CSS = """
@page { size: A4; margin: 16mm 15mm 18mm; }
html { font-size: 10pt; }
body { margin: 0; background: #fff; }
.headerlink, button, .copybtn, #jb-print-docs-body { display: none !important; }
.book-title-page { break-after: page; padding-top: 30vh; text-align: center; }
.book-title-page .title { font-size: 2.4rem; font-weight: 700; line-height: 1.3; }
.book-title-page .author { margin-top: 2rem; font-size: 1.1rem; }
.book-toc { break-after: page; }
.book-toc ol { list-style: none; padding-left: 0; }
.book-toc ol ol { padding-left: 1.8rem; font-size: .92em; }
.book-toc li { margin: .15rem 0; }
.book-toc .part { margin-top: .8rem; font-weight: 700; }
.book-part { break-before: page; padding-top: 35vh; text-align: center; font-size: 1.8rem; font-weight: 700; }
.book-page { break-before: page; }
pre, .highlight pre { white-space: pre-wrap; overflow-wrap: anywhere; overflow: visible; }
div.cell_output, .cell_output .output { overflow: visible !important; max-height: none !important; }
img, figure, mjx-container[display="true"] { break-inside: avoid; }
h1, h2, h3, h4 { break-after: avoid; }
details.cnn-solution > summary { list-style: none; }
details.cnn-solution > summary::-webkit-details-marker { display: none; }
"""


def toc_of(lang):
    """This language's toc as [(part caption or None, [page names])], in reading order."""
    toc = build_book.load_yaml(build_book.BUILD / lang / "_toc.yml")
    parts = [(None, [toc["root"]])]
    parts += [(part["caption"], [e["file"] for e in part["chapters"]]) for part in toc.get("parts", [])]
    if toc.get("chapters"):
        parts.append((None, [e["file"] for e in toc["chapters"]]))
    return parts


ARTICLE = re.compile(r'<article class="bd-article">(.*?)</article>', re.S)
STYLESHEET = re.compile(r'<link\b[^>]*\brel="stylesheet"[^>]*>')
MATHJAX = re.compile(r'<script>window\.MathJax = .*?</script>|<script\b[^>]*src="[^"]*mathjax/tex-chtml\.js"[^>]*>'
                     r'</script>', re.S)


def local_page(href, pages):
    """The page name of a link to one of `pages` (e.g. "06-lenet.html"), or None."""
    name = href[:-5] if href.endswith(".html") else None
    return name if name in pages else None


def rewrite(article, name, pages, prefix):
    """One page's article for the book document: ids prefixed with the page's name, links between pages
    made links inside the document, the site's relative paths (figures, files) made relative to `prefix`."""
    def link(match):
        attr, url = match.group(1), html.unescape(match.group(2))
        if attr == "id":
            return f'id="{name}--{url}"'
        if "://" in url or url.startswith(("mailto:", "data:")):
            return match.group(0)
        path, _, anchor = url.partition("#")
        if attr == "href" and (not path or local_page(path, pages)):
            page = local_page(path, pages) or name
            return f'href="#{page}--{anchor}"' if anchor else f'href="#{page}"'
        return f'{attr}="{prefix}{html.escape(url)}"'
    return re.sub(r'\b(id|href|src)="([^"]*)"', link, article)


def headings(article, name):
    """(level, id, html) of the page's h1 and h2 headings (ids already prefixed), for the contents."""
    found = []
    for m in re.finditer(r'<section[^>]*\bid="([^"]+)"[^>]*>\s*(?:<span id="[^"]*"></span>)*\s*<h([12])>(.*?)'
                         r'<a class="headerlink"', article, re.S):
        found.append((int(m.group(2)), m.group(1), m.group(3).strip()))
    return found


def book_document(lang):
    """The whole book of one language as one HTML document (see the module's docstring), as a string."""
    config = build_book.load_yaml(build_book.CONFIG)
    spec = config["languages"][lang]
    site = build_book.SITE / lang
    prefix = Path("..", "html", lang).as_posix() + "/"
    parts = toc_of(lang)
    pages = {name for _, names in parts for name in names}

    first = (site / f"{parts[0][1][0]}.html").read_text(encoding="utf-8")
    head = [m.group(0) for m in STYLESHEET.finditer(first)] + MATHJAX.findall(first)
    head = [re.sub(r'\b(href|src)="(?!https?:)([^"]*)"', lambda m: f'{m.group(1)}="{prefix}{m.group(2)}"', tag)
            for tag in head]

    body, contents = [], []
    for caption, names in parts:
        if caption:
            body.append(f'<div class="book-part">{html.escape(caption)}</div>')
            contents.append(f'<li class="part">{html.escape(caption)}</li>')
        for name in names:
            text = (site / f"{name}.html").read_text(encoding="utf-8")
            found = ARTICLE.search(text)
            if not found:
                raise SystemExit(f"{site / name}.html has no <article class=\"bd-article\">: is the site built?")
            article = rewrite(found.group(1), name, pages, prefix)
            body.append(f'<div class="book-page" id="{name}">{article}</div>')
            entries = headings(article, name)
            chapter = [f'<li><a href="#{anchor}">{title}</a>' for level, anchor, title in entries if level == 1][:1]
            sections = [f'<li><a href="#{anchor}">{title}</a></li>' for level, anchor, title in entries if level == 2]
            if chapter:
                contents.append(chapter[0] + (f"<ol>{''.join(sections)}</ol>" if sections else "") + "</li>")

    ui = spec.get("ui", {})
    title = spec.get("title", config.get("title", ""))
    html_lang = spec.get("sphinx", {}).get("config", {}).get("language", lang).replace("_", "-")
    return f"""<!DOCTYPE html>
<html lang="{html_lang}" data-theme="light" data-mode="light">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
{chr(10).join(head)}
<style>{PRINT_CSS}</style>
</head>
<body>
<div class="book-title-page">
  <div class="title">{html.escape(title)}</div>
  <div class="author">{html.escape(config.get("author", ""))}</div>
</div>
<nav class="book-toc"><h1>{html.escape(ui.get("contents", "Contents"))}</h1><ol>{"".join(contents)}</ol></nav>
{chr(10).join(body)}
</body>
</html>
"""


def print_pdf(browser, document, target):
    """Open `document` (a file), typeset its math, open the solutions, print it to `target`."""
    start = time.perf_counter()
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(document.as_uri(), wait_until="load")
    page.evaluate("""async () => {
      if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
      document.querySelectorAll("details").forEach((d) => { d.open = true; });
      await document.fonts.ready;
      await Promise.all(Array.from(document.images, (img) => img.decode().catch(() => {})));
    }""")
    missing = page.evaluate("() => Array.from(document.images).filter(i => !i.naturalWidth).map(i => i.src)")
    errors += [f"image not found: {src}" for src in missing]
    if page.locator("mjx-merror").count():
        errors.append(f"MathJax errors: {page.locator('mjx-merror').all_inner_texts()}")
    if errors:
        raise SystemExit(f"{document}: " + "; ".join(errors))
    titles = page.evaluate("() => Array.from(document.querySelectorAll('h1, h2, h3, h4, h5, h6'),"
                           " (h) => h.textContent.replace(/#$/, '').replace(/\\s+/g, ' ').trim())")
    typeset = time.perf_counter()
    page.pdf(path=str(target), format="A4", print_background=True, outline=True, tagged=True,
             display_header_footer=True, header_template="<span></span>", footer_template=FOOTER,
             prefer_css_page_size=True)
    page.close()
    printed = time.perf_counter()
    finish_pdf(target, titles)
    print(f"  {target.name}: opened and typeset in {typeset - start:.1f} s, printed in {printed - typeset:.1f} s, "
          f"finished in {time.perf_counter() - printed:.1f} s")


# CJK Radicals Supplement and Kangxi Radicals, and the Latin ligatures (ﬁ, ﬂ...): NFKC gives the letters
COMPATIBILITY = re.compile("[\u2e80-\u2fdf\ufb00-\ufb06]")
CMAP_BODY = re.compile(r"\d+ begin(?:bfchar|bfrange).*end(?:bfchar|bfrange)\n?", re.S)


def cmap_mappings(cmap):
    """[(source code as hex, text)] of a ToUnicode CMap's bfchar and bfrange entries."""
    out = []
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        out += [(src, bytes.fromhex(dst).decode("utf-16-be")) for src, dst in re.findall(r"<(\w+)>\s*<(\w+)>", block)]
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(r"<(\w+)>\s*<(\w+)>\s*(\[.*?\]|<\w+>)", block, re.S):
            width, codes = len(lo), range(int(lo, 16), int(hi, 16) + 1)
            if dst.startswith("["):
                texts = [bytes.fromhex(d).decode("utf-16-be") for d in re.findall(r"<(\w+)>", dst)]
            else:
                first = bytes.fromhex(dst[1:-1]).decode("utf-16-be")
                texts = [first[:-1] + chr(ord(first[-1]) + i) for i in range(len(codes))]
            out += [(f"{code:0{width}X}", text) for code, text in zip(codes, texts)]
    return out


@functools.cache
def radical_ideographs():
    """{radical: ideograph} for the radicals that the system's CJK font draws with an ideograph's glyph (from
    the font's own character map; fontTools comes with matplotlib). NFKC covers the Kangxi radicals only, not
    the CJK Radicals Supplement (⻆ for 角)."""
    from fontTools.ttLib import TTCollection, TTFont

    found = subprocess.run(["fc-match", "-f", "%{file}", "sans-serif:lang=zh-cn"], capture_output=True, text=True)
    path = Path(found.stdout.strip())
    if found.returncode != 0 or not path.is_file():
        return {}
    table = {}
    for font in TTCollection(path).fonts if path.suffix.lower() == ".ttc" else [TTFont(path)]:
        cmap = font.getBestCmap()
        ideograph = {}
        for code, glyph in cmap.items():
            if 0x4E00 <= code <= 0x9FFF:
                ideograph.setdefault(glyph, chr(code))
        for code, glyph in cmap.items():
            if 0x2E80 <= code <= 0x2FDF and glyph in ideograph:
                table.setdefault(chr(code), ideograph[glyph])
    return table


def plain_letter(char):
    """The ideograph a radical stands for, the letters of a ligature."""
    return radical_ideographs().get(char) or unicodedata.normalize("NFKC", char)


def unified_cmap(cmap):
    """The CMap with radicals mapped to the ideographs they look like and ligatures to their letters, or None
    when it has neither.

    Noto CJK draws 一 (U+4E00) and the Kangxi radical ⼀ (U+2F00) with one glyph, and Chromium's PDF writer maps
    such glyphs back to the radical: the text would copy and search as ⼀⼤⽽ instead of 一大而. Likewise "float"
    would be "ﬂoat". `plain_letter` maps each of them to what it stands for."""
    mappings = cmap_mappings(cmap)
    if not any(COMPATIBILITY.search(text) for _, text in mappings):
        return None
    fixed = [(src, COMPATIBILITY.sub(lambda m: plain_letter(m.group(0)), text)) for src, text in mappings]
    blocks = []
    for i in range(0, len(fixed), 100):  # at most 100 entries per block
        chunk = fixed[i:i + 100]
        lines = "".join(f"<{src}> <{text.encode('utf-16-be').hex().upper()}>\n" for src, text in chunk)
        blocks.append(f"{len(chunk)} beginbfchar\n{lines}endbfchar\n")
    return CMAP_BODY.sub(lambda m: "".join(blocks), cmap, count=1)


def fonts_of(resources):
    """The fonts of a page's or form's resources, and of the forms it draws (an SVG figure is a form)."""
    resources = resources.get_object() if resources is not None else {}
    for font in (resources.get("/Font") or {}).values():
        yield font.get_object()
    for xobject in (resources.get("/XObject") or {}).values():
        xobject = xobject.get_object()
        if xobject.get("/Subtype") == "/Form":
            yield from fonts_of(xobject.get("/Resources"))


def finish_pdf(path, titles):
    """Fix what Chromium writes wrong: radicals and ligatures in the text (`unified_cmap`), bookmark titles that
    lost the spaces where the heading wrapped. `titles`: every heading's text as the document has it."""
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, TextStringObject

    writer = PdfWriter(str(path), incremental=True)  # appends the changed objects only
    done = set()
    for page in writer.pages:
        for font in fonts_of(page.get("/Resources")):
            cmap = font.get("/ToUnicode")
            if cmap is None or cmap.idnum in done:
                continue
            done.add(cmap.idnum)
            fixed = unified_cmap(cmap.get_object().get_data().decode("latin-1"))
            if fixed:
                cmap.get_object().set_data(fixed.encode("latin-1"))
    by_letters = {re.sub(r"\s", "", title): title for title in titles}
    item = writer.root_object.get("/Outlines", {}).get("/First")
    stack = []
    while item is not None:
        entry = item.get_object()
        title = str(entry["/Title"])
        entry[NameObject("/Title")] = TextStringObject(by_letters.get(re.sub(r"\s", "", title), title))
        if "/First" in entry:
            stack.append(entry.get("/Next"))
            item = entry["/First"]
        else:
            item = entry.get("/Next")
            while item is None and stack:
                item = stack.pop()
    writer.write(str(path))


def up_to_date(langs):
    """Whether every PDF is newer than the site's last full build (and is published with it)."""
    stamp = build_book.STAMP
    if not stamp.is_file():
        return False
    pdfs = [folder / build_book.pdf_name(lang) for lang in langs for folder in (PDF, build_book.SITE / "pdf")]
    return all(pdf.is_file() and pdf.stat().st_mtime > stamp.stat().st_mtime for pdf in pdfs)


def print_language(lang):
    """Write this language's document, print it, publish the PDF. Runs in its own process (see `main`)."""
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    document = PDF / f"{lang}.html"
    document.write_text(book_document(lang), encoding="utf-8")
    target = PDF / build_book.pdf_name(lang)
    partial = target.with_suffix(".part.pdf")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        print_pdf(browser, document, partial)
        browser.close()
    partial.replace(target)  # whole or not at all
    published = build_book.SITE / "pdf"
    published.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, published / target.name)
    print(f"{lang}: {target.relative_to(ROOT)} ({target.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", action="append", help="only this language (repeatable)")
    parser.add_argument("--if-changed", action="store_true",
                        help="do nothing when every PDF is newer than the site's last full build")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: print one language in this process
    args = parser.parse_args(argv)
    if args.one:
        return print_language(args.one)
    langs = args.lang or build_book.languages()
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-noto-cjk")
    if args.if_changed and up_to_date(langs):
        print(f"{PDF} is up to date (the site has not been rebuilt since)")
        return 0
    if build_book.main(["--if-changed"]) != 0:
        return 1

    PDF.mkdir(parents=True, exist_ok=True)

    def run(lang):  # languages print in parallel processes, as they build
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", lang]
        return subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(langs)) as pool:
        results = list(pool.map(run, langs))
    for lang, proc in zip(langs, results):
        print(proc.stdout.rstrip() if proc.returncode == 0 else f"==== {lang}: FAILED\n{proc.stdout.rstrip()}")
    if any(proc.returncode for proc in results):
        return 1
    print(f"printed {', '.join(langs)} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
