"""The website: one Jupyter Book site per language from the one _config.yml/_toc.yml (tools/build_book.py).

The first group of tests reads the sources only. The rest use the `site` fixture, which builds both sites
once per test session (warnings are errors) or reuses a build whose inputs have not changed since.
tests/test_browser.py opens the same build in a real browser.
"""
import functools
import html.parser
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from jupyter_book.config import get_validator

from tools import build_book
from tools.nbtools import CHAPTERS, chapter_paths, code_cells, load, source

ROOT = build_book.ROOT
SITE = build_book.SITE
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
LANGS = build_book.languages(CONFIG)
REPO_URL = CONFIG["repository"]["url"]


def site_pages(lang):
    """The pages of this language's built site, in reading order: the toc it was built from (the toc's
    files that existed then; `build_site()` rebuilds whenever a chapter appears or changes)."""
    return build_book.toc_files(yaml.safe_load((build_book.BUILD / lang / "_toc.yml").read_text(encoding="utf-8")))


def chapter_pages(lang):
    return [name for name in site_pages(lang) if (SITE / lang / "_sources" / f"{name}.ipynb").is_file()]


def colab_url(lang, name):
    org_repo = urlsplit(REPO_URL).path.strip("/")
    colab = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{org_repo}/blob/{CONFIG['repository']['branch']}/chapters/{lang}/{name}.ipynb"


@functools.cache
def build_site():
    """Build both sites unless an up-to-date build exists; return the seconds it took. At most once per
    test session (tests/test_browser.py calls it too): the session tests the build it started with."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "tools/build_book.py", "--if-changed"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        pytest.fail(f"tools/build_book.py failed (Sphinx warnings count as errors):\n{proc.stdout[-20000:]}",
                    pytrace=False)
    return time.perf_counter() - start


@pytest.fixture(scope="session")
def site():
    seconds = build_site()
    print(f"\nsite build (or up-to-date check): {seconds:.1f} s")
    return SITE


class Page(html.parser.HTMLParser):
    """The parts of a built page the tests look at: <html lang>, <title>, scripts, styles, links, images."""

    def __init__(self, path):
        super().__init__()
        self.lang, self.title, self._in_title = None, "", False
        self.scripts, self.styles, self.links, self.images = [], [], [], []
        self.feed(Path(path).read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "title":
            self._in_title = True
        elif tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        elif tag == "link" and a.get("rel") == "stylesheet":
            self.styles.append(a["href"])
        elif tag == "a" and a.get("href"):
            self.links.append(a)
        elif tag == "img":
            self.images.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def links_with_class(self, cls):
        return [a["href"] for a in self.links if cls in (a.get("class") or "").split()]


def search_index(lang):
    text = (SITE / lang / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1:text.rindex(")")])


# ---------------------------------------------------------------- sources: config, toc, chapters

def test_toc_lists_every_chapter():
    listed = build_book.toc_files(TOC)
    assert len(listed) == len(set(listed)), f"a file is listed twice in _toc.yml: {listed}"
    for lang in LANGS:
        missing = [p.stem for p in chapter_paths(lang) if p.stem not in listed]
        assert not missing, f"chapters/{lang}/ has chapters that _toc.yml does not list: {missing}"
    assert build_book.doc_exists(LANGS[0], TOC["root"]), (
        f"the root page chapters/{LANGS[0]}/{TOC['root']}.md is missing")


def test_toc_lists_the_instructor_guide():
    if not any((CHAPTERS / lang / "instructor-guide.md").is_file() for lang in LANGS):
        pytest.skip("no instructor guide yet (chapters/<lang>/instructor-guide.md)")
    assert "instructor-guide" in build_book.toc_files(TOC)


def test_toc_captions_name_every_language():
    for part in TOC["parts"]:
        assert isinstance(part["caption"], dict) and set(part["caption"]) == set(LANGS), (
            f"each caption in _toc.yml needs one text per language {LANGS}: {part['caption']}")


def test_derived_toc_picks_captions_and_leaves_out_missing_files(tmp_path, monkeypatch):
    monkeypatch.setattr(build_book, "source_dir", lambda lang: tmp_path / lang)
    for lang in LANGS:
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "index.md").write_text("# x\n")
    (tmp_path / LANGS[0] / "01-a.ipynb").write_text("{}")
    toc = {"format": "jb-book", "root": "index", "parts": [
        {"caption": {lang: f"P1-{lang}" for lang in LANGS}, "chapters": [{"file": "01-a"}, {"file": "02-b"}]},
        {"caption": {lang: f"P2-{lang}" for lang in LANGS}, "chapters": [{"file": "03-c"}]}]}
    first = build_book.derive_toc(toc, LANGS[0])
    assert first["parts"] == [{"caption": f"P1-{LANGS[0]}", "chapters": [{"file": "01-a"}]}]
    assert "parts" not in build_book.derive_toc(toc, LANGS[1])


@pytest.mark.parametrize("lang", LANGS)
def test_derived_config_is_valid_jupyter_book_config(lang):
    derived = build_book.derive_config(CONFIG, TOC, lang)
    errors = sorted(e.message for e in get_validator().iter_errors(derived))
    assert not errors, f"Jupyter Book rejects the derived {lang} config: {errors}"
    assert derived["title"] == CONFIG["languages"][lang]["title"]
    assert derived["repository"]["path_to_book"] == f"chapters/{lang}"
    assert derived["repository"]["url"] == REPO_URL
    assert derived["execute"]["execute_notebooks"] == "off"
    for path in derived["sphinx"]["config"]["templates_path"] + derived["sphinx"]["config"]["html_static_path"]:
        assert Path(path).is_absolute() and Path(path).is_dir(), path


def test_titles():
    assert CONFIG["languages"]["zh"]["title"] == "卷积神经网络：从 corr2d 到 DenseNet"
    assert CONFIG["languages"]["en"]["title"] == "Convolutional Neural Networks: from corr2d to DenseNet"
    assert CONFIG["languages"]["zh"]["sphinx"]["config"]["language"] == "zh_CN"
    assert CONFIG["languages"]["en"]["sphinx"]["config"]["language"] == "en"


@pytest.mark.parametrize("path", [p for lang in LANGS for p in chapter_paths(lang)],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_install_cell_uses_the_configured_repository(path):
    """The repository URL lives in _config.yml only; each chapter's install cell must name that one."""
    first = source(code_cells(load(path))[0])
    found = re.findall(r'"(git\+[^"]+)"', first)
    assert found == [f"git+{REPO_URL}"], (
        f"{path.relative_to(ROOT)}: the first code cell installs from {found}, expected git+{REPO_URL} "
        f"(repository.url in _config.yml)")
    assert "CNNLIB_INSTALL_SOURCE" in first and 'find_spec("cnnlib") is None' in first


def test_repository_url_is_written_once():
    """The site's machinery takes the repository from _config.yml; pages that show an install command
    (the instructor guide, say) must name that same repository."""
    machinery = [ROOT / "_toc.yml", ROOT / "tools" / "build_book.py"]
    machinery += [p for d in ("_static", "_templates") for p in (ROOT / d).rglob("*") if p.is_file()]
    offenders = [str(p.relative_to(ROOT)) for p in machinery
                 if REPO_URL in p.read_text(encoding="utf-8", errors="ignore")]
    assert not offenders, f"{REPO_URL} is written in {offenders}; take it from repository.url in _config.yml"
    for page in [p for lang in LANGS for p in (CHAPTERS / lang).glob("*.md")]:
        for url in re.findall(r"git\+(https?://[^\s\"'@)]+)", page.read_text(encoding="utf-8")):
            assert url.rstrip("/").removesuffix(".git") == REPO_URL, (
                f"{page.relative_to(ROOT)} installs from {url}, but repository.url in _config.yml is {REPO_URL}")


# ---------------------------------------------------------------- the built sites

def test_root_page_offers_every_language(site):
    page = Page(site / "index.html")
    targets = [a["href"] for a in page.links]
    assert targets == [f"{lang}/index.html" for lang in LANGS]
    for lang in LANGS:
        assert (site / lang / "index.html").is_file()
        assert CONFIG["languages"][lang]["title"] in page.title


@pytest.mark.parametrize("lang", LANGS)
def test_site_has_every_chapter(site, lang):
    missing = [p.stem for p in chapter_paths(lang) if not (site / lang / f"{p.stem}.html").is_file()]
    assert not missing, f"chapters/{lang}/ has chapters that its site lacks: {missing}"
    assert (site / lang / f"{TOC['root']}.html").is_file()


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_is_built_in_its_language(site, lang):
    expected_lang = CONFIG["languages"][lang]["sphinx"]["config"]["language"].replace("_", "-")
    title = CONFIG["languages"][lang]["title"]
    for name in site_pages(lang):
        page = Page(site / lang / f"{name}.html")
        assert page.lang == expected_lang, f"{lang}/{name}.html: <html lang={page.lang!r}>"
        assert title in page.title, f"{lang}/{name}.html: title {page.title!r} lacks the book title"
    options = (site / lang / "_static" / "documentation_options.js").read_text(encoding="utf-8")
    assert f"LANGUAGE: '{expected_lang}'" in options


@pytest.mark.parametrize("lang", LANGS)
def test_sidebar_lists_the_toc_in_order(site, lang):
    text = (site / lang / "index.html").read_text(encoding="utf-8")
    nav = text[text.index('bd-docs-nav'):]
    found = re.findall(r'class="reference internal" href="([^"#]+)\.html"', nav)
    expected = [name for name in site_pages(lang) if name != TOC["root"]]
    assert [n for n in found if n in expected][:len(expected)] == expected
    for part in TOC["parts"]:
        if any(e["file"] in expected for e in part["chapters"]):
            assert part["caption"][lang] in nav


@pytest.mark.parametrize("lang", LANGS)
def test_chapter_pages_have_colab_language_switch_and_download(site, lang):
    others = [other for other in LANGS if other != lang]
    for name in chapter_pages(lang):
        page = Page(site / lang / f"{name}.html")
        where = f"{lang}/{name}.html"
        assert page.links_with_class("book-colab-button") == [colab_url(lang, name)], where
        # the theme's launch menu holds the same link
        assert colab_url(lang, name) in [a["href"] for a in page.links if "dropdown-item" in (a.get("class") or "")]
        switches = page.links_with_class("book-language-switch")
        assert len(switches) == len(others), where
        for other, href in zip(others, switches):
            target = (site / lang / href).resolve()
            counterpart = name if name in site_pages(other) else TOC["root"]
            assert target == (site / other / f"{counterpart}.html").resolve(), f"{where}: switch goes to {href}"
            assert target.is_file()
        downloads = [a["href"] for a in page.links if a["href"].startswith("_sources/")]
        assert f"_sources/{name}.ipynb" in downloads, f"{where}: no download link for the notebook"
        served = json.loads((site / lang / "_sources" / f"{name}.ipynb").read_text(encoding="utf-8"))
        assert served == load(CHAPTERS / lang / f"{name}.ipynb")


@pytest.mark.parametrize("lang", LANGS)
def test_pages_need_nothing_from_other_hosts(site, lang):
    """Scripts and styles (MathJax included) come from the site itself, so pages work offline. MathJax is
    one copy that both languages share."""
    mathjax = (site / "mathjax" / "tex-chtml.js").resolve()
    assert mathjax.is_file(), "MathJax is not served from the site"
    assert not (site / lang / "_static" / "mathjax").exists(), f"{lang} has a MathJax of its own"
    for name in site_pages(lang) + ["search", "genindex"]:
        page = Page(site / lang / f"{name}.html")
        external = [u for u in page.scripts + page.styles if "://" in u or u.startswith("//")]
        assert not external, f"{lang}/{name}.html loads {external}"
        if 'class="math' in (site / lang / f"{name}.html").read_text(encoding="utf-8"):
            assert any((site / lang / u.split("?")[0]).resolve() == mathjax for u in page.scripts), (
                f"{lang}/{name}.html has math but does not load the site's MathJax")


@pytest.mark.parametrize("lang", LANGS)
def test_figures_are_copied_and_referenced(site, lang):
    for name in chapter_pages(lang):
        nb_text = (CHAPTERS / lang / f"{name}.ipynb").read_text(encoding="utf-8")
        figures = set(re.findall(r"\.\./\.\./images/([\w./-]+\.svg)", nb_text))  # images/zh/x.svg: zh variant
        page = Page(site / lang / f"{name}.html")
        for figure in figures:
            shown = f"_images/{Path(figure).name}"
            assert shown in page.images, f"{lang}/{name}.html does not show {figure}"
            assert (site / lang / shown).read_bytes() == (ROOT / "images" / figure).read_bytes()
        for src in page.images:
            if "://" not in src and not src.startswith("data:"):
                assert (site / lang / src).is_file(), f"{lang}/{name}.html shows a missing image {src}"


@pytest.mark.parametrize("lang", LANGS)
def test_code_has_copy_buttons(site, lang):
    for name in chapter_pages(lang):
        page = Page(site / lang / f"{name}.html")
        assert any(u.split("?")[0] == "_static/copybutton.js" for u in page.scripts), f"{lang}/{name}.html"


def test_chinese_search_finds_chinese_words(site):
    """Sphinx splits Chinese text with jieba; without it, the zh index holds no Chinese word at all."""
    index = search_index("zh")
    docs = index["docnames"]
    hits = set()
    for table in ("terms", "titleterms"):
        found = index[table].get("卷积", [])
        hits |= {docs[i] for i in ([found] if isinstance(found, int) else found)}
    chapters = set(chapter_pages("zh"))
    assert hits & chapters, f"searching 卷积 finds {sorted(hits)} in the zh index, no chapter"
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", term)) for term in index["terms"]) > 100


def test_english_search_finds_english_words(site):
    index = search_index("en")
    found = index["terms"].get("convolut", [])
    found = [found] if isinstance(found, int) else found
    assert {index["docnames"][i] for i in found} & set(chapter_pages("en"))


@pytest.mark.parametrize("lang", LANGS)
def test_solutions_show_no_nbgrader_markers(site, lang):
    """The notebooks keep nbgrader's markers (student copies need them); the site shows the solution only."""
    assert any("### BEGIN SOLUTION" in (CHAPTERS / lang / f"{n}.ipynb").read_text(encoding="utf-8")
               for n in chapter_pages(lang))
    shown = [name for name in chapter_pages(lang)
             if re.search(r"### (BEGIN|END) SOLUTION", (site / lang / f"{name}.html").read_text(encoding="utf-8"))]
    assert not shown, f"{lang}: nbgrader's solution markers are shown on {shown}"


@pytest.mark.parametrize("lang", LANGS)
def test_printed_output_is_one_box_per_cell_output(site, lang):
    """A cell that printed in several writes (stored as consecutive stream outputs) shows one box."""
    split = {}
    for name in chapter_pages(lang):
        text = (site / lang / f"{name}.html").read_text(encoding="utf-8")
        boxes = re.findall(r'<div class="output (stream|stderr)[^"]*"><div class="highlight"><pre>(?:(?!</pre>).)*'
                           r'</pre></div>\s*</div>\s*<div class="output \1', text, flags=re.S)
        if boxes:
            split[name] = len(boxes)
    assert not split, f"{lang}: pages with a printed output split into several boxes: {split}"
