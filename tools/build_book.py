"""Build the book's website: one Jupyter Book site per language, plus a root page that offers them.

    python tools/build_book.py             # every language -> _build/html/<lang>/, and _build/html/index.html
    python tools/build_book.py --lang en   # one language (the root page is rewritten too)
    python tools/build_book.py --fresh     # forget earlier builds, read every page again
    python tools/build_book.py --if-changed  # do nothing when no input changed since the last full build

`_config.yml` and `_toc.yml` are the one source. For each language <lang> this script writes
`_build/<lang>/_config.yml` (the shared settings with `languages.<lang>` merged on top, paths made absolute,
`repository.path_to_book: chapters/<lang>`, the texts and targets of the language switch) and
`_build/<lang>/_toc.yml` (that language's captions, only the files that exist), then runs Jupyter Book's
Sphinx build with `chapters/<lang>/` as the source folder, warnings as errors (after `--keep-going`, so
every warning is listed). Languages build in parallel processes. Each site is built in `_build/<lang>/html`
(Jupyter Book keeps notebook outputs beside its output folder, so two sites cannot share one) and then
copied to `_build/html/<lang>/`, the folder that gets published, less the theme files no page loads.
MathJax is published once, in `_build/html/mathjax/`, for every language.

A later run is incremental (Sphinx reads only changed pages). A failed build forgets its saved state, so the
next run reads every page again and reports every warning again. A successful build of every language writes
a digest of its inputs to `_build/html/.build-stamp.json`; `--if-changed` compares against it (the tests use
this, so one pytest session builds at most once).
"""
import argparse
import copy
import hashlib
import html
import json
import os
import shutil
import string
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
SITE = BUILD / "html"
CONFIG = ROOT / "_config.yml"
TOC = ROOT / "_toc.yml"
# Sphinx settings that hold paths relative to the repository root (where _config.yml lives).
PATH_LISTS = ("templates_path", "html_static_path", "html_extra_path")
PATH_VALUES = ("html_logo", "html_favicon")
# Jupyter Book loads these, the book does not use them. sphinx_thebe (live code on the page) is not used: the
# book runs in Colab. Its inline <script> declares a const and Sphinx 7.4 emits it twice on every page (a
# script registered after the builder starts is added again), which is a JavaScript error on every page.
UNUSED_EXTENSIONS = ("sphinx_thebe",)
# MathJax 3 is served once for both languages, from _build/html/mathjax/ (mathjax_path in _config.yml): the
# files of the pinned sphinx-mathjax-offline, only the tex-chtml component that pages load and what it loads
# on demand (TeX extensions, its fonts, the accessibility menu's explorer and speech rules).
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "a11y", "sre", "ui")
# What the themes copy into every site and no page loads: their translation catalogs, source maps, the Font
# Awesome script (_templates/layout.html leaves it out: the CSS draws the icons from the web fonts), the
# TrueType copies of those fonts (browsers take the WOFF2 ones) and template macros.
UNUSED_STATIC = ("locales", "scripts/fontawesome.js", "scripts/fontawesome.js.LICENSE.txt",
                 "webpack-macros.html", "sbt-webpack-macros.html", "**/*.map", "vendor/fontawesome/webfonts/*.ttf")
# The site's own look and interface texts (a change here changes every page, though no source changed).
CHROME = ("_static", "_templates", "locale")


def load_yaml(path):
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def write_yaml(data, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def merge(base, update):
    """`base` updated recursively with `update` (dicts merge, everything else is replaced)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def pdf_name(lang, config=None):
    """The file name of this language's PDF (tools/build_pdf.py): the repository's name and the language."""
    config = load_yaml(CONFIG) if config is None else config
    return f"{Path(urlsplit(config['repository']['url']).path).name}-{lang}.pdf"


def languages(config=None):
    """The site languages, in the order of `_config.yml` (the first one is the book's main language)."""
    config = load_yaml(CONFIG) if config is None else config
    return list(config["languages"])


def source_dir(lang):
    return ROOT / "chapters" / lang


def toc_files(toc):
    """Every file the toc names, root first, in reading order."""
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    files += [entry["file"] for entry in toc.get("chapters", [])]
    return files


def doc_exists(lang, name):
    return any((source_dir(lang) / f"{name}{ext}").is_file() for ext in (".ipynb", ".md"))


def derive_toc(toc, lang):
    """This language's toc: captions picked for `lang`, files that do not exist left out."""
    if not doc_exists(lang, toc["root"]):
        raise SystemExit(f"chapters/{lang}/{toc['root']}.md is missing: it is the root page of the {lang} site")
    out = {key: value for key, value in toc.items() if key not in ("parts", "chapters")}
    parts = []
    for part in toc.get("parts", []):
        part = dict(part)
        if isinstance(part.get("caption"), dict):
            part["caption"] = part["caption"][lang]
        part["chapters"] = [entry for entry in part.get("chapters", []) if doc_exists(lang, entry["file"])]
        if part["chapters"]:
            parts.append(part)
    if parts:
        out["parts"] = parts
    chapters = [entry for entry in toc.get("chapters", []) if doc_exists(lang, entry["file"])]
    if chapters:
        out["chapters"] = chapters
    return out


def absolute(path):
    return path if "://" in str(path) else str((ROOT / path).resolve())


def derive_config(config, toc, lang):
    """This language's Jupyter Book config: shared settings, `languages.<lang>` on top, paths absolute."""
    langs = config["languages"]
    shared = {key: value for key, value in config.items() if key != "languages"}
    own = {key: value for key, value in langs[lang].items() if key != "ui"}
    out = merge(shared, own)
    out.setdefault("repository", {})["path_to_book"] = f"chapters/{lang}"

    sphinx = out.setdefault("sphinx", {})
    local = sphinx.get("local_extensions") or {}
    sphinx["local_extensions"] = {name: absolute(path) for name, path in local.items()} or None
    conf = sphinx.setdefault("config", {}) or {}
    sphinx["config"] = conf
    for key in PATH_LISTS:
        if key in conf:
            conf[key] = [absolute(p) for p in conf[key]]
    for key in PATH_VALUES:
        if conf.get(key):
            conf[key] = absolute(conf[key])
    if out.get("logo"):
        out["logo"] = absolute(out["logo"])
    if (out.get("html") or {}).get("favicon"):
        out["html"]["favicon"] = absolute(out["html"]["favicon"])

    # The language switch: for every other language, the pages it has (so a page links to its counterpart,
    # or to that site's home page while the counterpart is not written yet).
    switches = []
    for other in langs:
        if other == lang:
            continue
        pages = [name for name in toc_files(toc) if doc_exists(other, name)] + ["search", "genindex"]
        ui = langs[other].get("ui", {})
        code = langs[other].get("sphinx", {}).get("config", {}).get("language", other).replace("_", "-")
        switches.append({"lang": other, "hreflang": code, "label": ui.get("name", other),
                         "tooltip": ui.get("switch_tooltip", ""),
                         "root": toc["root"], "pages": pages})
    context = conf.setdefault("html_context", {})
    context["book_ui"] = langs[lang].get("ui", {})
    context["book_switches"] = switches
    context["book_pdf"] = pdf_name(lang, config)  # published in _build/html/pdf/ by tools/build_pdf.py
    return out


def prepare(lang):
    """Write _build/<lang>/_config.yml and _toc.yml. Return their paths and whether the toc changed."""
    config, toc = load_yaml(CONFIG), load_yaml(TOC)
    work = BUILD / lang
    write_yaml(derive_config(config, toc, lang), work / "_config.yml")
    toc_path = work / "_toc.yml"
    old = toc_path.read_text(encoding="utf-8") if toc_path.exists() else None
    write_yaml(derive_toc(toc, lang), toc_path)
    return work / "_config.yml", toc_path, old != toc_path.read_text(encoding="utf-8")


def build_one(lang, fresh=False):
    """Build one site into _build/<lang>/html (runs in its own process). Return Sphinx's exit status."""
    from jupyter_book.config import get_final_config
    from jupyter_book.sphinx import build_sphinx
    from sphinx.util.console import nocolor

    if not sys.stdout.isatty():
        nocolor()
    config_path, toc_path, toc_changed = prepare(lang)
    work = BUILD / lang
    # sphinx-external-toc puts the toctrees into the pages when it reads them, so pages that did not
    # change would keep an old toc: read them all again whenever the toc changes.
    fresh = fresh or toc_changed
    if fresh:  # also drop pages of files that are gone
        for folder in ("doctrees", "html", "jupyter_execute"):
            shutil.rmtree(work / folder, ignore_errors=True)
    # Sphinx writes no page, and copies no static file, when no source changed: a change to the site's own
    # static files, templates or interface texts alone must rewrite every page.
    chrome_stamp = work / "chrome-digest"
    chrome = digest_of(f for folder in CHROME for f in sorted((ROOT / folder).rglob("*")) if f.is_file())
    force_all = not chrome_stamp.is_file() or chrome_stamp.read_text() != chrome
    overrides = {"external_toc_path": toc_path.as_posix(), "latex_individualpages": False}
    # Jupyter Book's extensions and ours, less those in UNUSED_EXTENSIONS.
    final, _ = get_final_config(user_yaml=config_path, cli_config=dict(overrides), sourcedir=source_dir(lang))
    overrides["extensions"] = [ext for ext in final["extensions"] if ext not in UNUSED_EXTENSIONS]
    status = build_sphinx(
        source_dir(lang), work / "html",
        doctreedir=work / "doctrees",
        noconfig=True,
        path_config=str(config_path),
        confoverrides=overrides,
        warningiserror=True,
        keep_going=True,
        freshenv=fresh,
        force_all=force_all,
    )
    if status != 0:
        # Sphinx saved the pages it read; without this the next run would skip them and their warnings.
        shutil.rmtree(work / "doctrees", ignore_errors=True)
        chrome_stamp.unlink(missing_ok=True)
        return 1
    chrome_stamp.write_text(chrome)
    return 0


def write_root_page(langs, config):
    """_build/html/index.html: one link per language (texts from `languages.<lang>` in _config.yml)."""
    favicon = Path(config.get("html", {}).get("favicon") or "favicon.ico").name
    template = string.Template((ROOT / "_templates" / "root-index.html").read_text(encoding="utf-8"))
    choices, titles = [], []
    for lang in langs:
        spec = config["languages"][lang]
        ui, title = spec.get("ui", {}), spec.get("title", config.get("title", ""))
        html_lang = spec.get("sphinx", {}).get("config", {}).get("language", lang).replace("_", "-")
        titles.append(html.escape(title))
        choices.append(
            f'<li><a class="choice" href="{lang}/index.html" lang="{html_lang}" hreflang="{html_lang}">'
            f'<span class="name">{html.escape(ui.get("name", lang))}</span>'
            f'<span class="title">{html.escape(title)}</span>'
            f'<span class="go">{html.escape(ui.get("chooser", ""))} &rarr;</span></a></li>')
    page = template.substitute(title=" · ".join(titles), favicon=favicon, choices="\n      ".join(choices))
    SITE.mkdir(parents=True, exist_ok=True)
    (SITE / "index.html").write_text(page, encoding="utf-8")
    (SITE / ".nojekyll").write_text("", encoding="utf-8")
    favicon = config.get("html", {}).get("favicon")
    if favicon:
        shutil.copy2(ROOT / favicon, SITE / Path(favicon).name)


def input_files(config):
    """Every file the sites are built from (a change to any of them means the sites are out of date)."""
    files = [CONFIG, TOC, Path(__file__).resolve(), ROOT / "requirements.txt"]
    folders = [ROOT / folder for folder in CHROME] + [ROOT / "images"]
    folders += [source_dir(lang) for lang in config["languages"]]
    local = (config.get("sphinx") or {}).get("local_extensions") or {}
    for name, path in local.items():
        folder = ROOT / path
        files.append(folder / f"{name}.py")
        folders.append(folder / name)
    for folder in folders:
        if folder.is_dir():
            files += [f for f in folder.rglob("*") if f.is_file() and ".ipynb_checkpoints" not in f.parts
                      and "__pycache__" not in f.parts]
    return sorted({f for f in files if f.is_file()})


def digest_of(paths):
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def inputs_digest(config):
    return digest_of(input_files(config))


STAMP = SITE / ".build-stamp.json"


def up_to_date(config, digest):
    try:
        stamp = json.loads(STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp.get("inputs") == digest and (SITE / "mathjax" / MATHJAX_PARTS[0]).is_file() and all(
        (SITE / lang / "index.html").is_file() and (BUILD / lang / "_toc.yml").is_file()
        for lang in config["languages"])


def publish(lang):
    """Copy the built site to _build/html/<lang>/, less the static files no page loads."""
    target = SITE / lang
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(BUILD / lang / "html", target)
    for pattern in UNUSED_STATIC:
        for path in (target / "_static").glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def publish_mathjax():
    """_build/html/mathjax/: the parts of MathJax the pages use (MATHJAX_PARTS), shared by every language."""
    from importlib.metadata import distribution

    source = Path(distribution("sphinx-mathjax-offline").locate_file("sphinx-mathjax-offline/static/mathjax"))
    target = SITE / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", action="append", help="build only this language (repeatable)")
    parser.add_argument("--fresh", action="store_true", help="read every page again")
    parser.add_argument("--if-changed", action="store_true",
                        help="do nothing when no input changed since the last successful full build")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: build one language in this process
    args = parser.parse_args(argv)
    if args.one:
        return build_one(args.one, fresh=args.fresh)

    config = load_yaml(CONFIG)
    langs = args.lang or languages(config)
    unknown = set(langs) - set(config["languages"])
    if unknown:
        parser.error(f"unknown language(s) {sorted(unknown)}; _config.yml has {languages(config)}")

    def run(lang):
        start = time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", lang] + (["--fresh"] if args.fresh else [])
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"})
        return lang, proc.returncode, proc.stdout, time.perf_counter() - start

    digest = inputs_digest(config)
    full = set(langs) == set(config["languages"])
    if args.if_changed and full and not args.fresh and up_to_date(config, digest):
        print(f"{SITE} is up to date (no input changed since the last build)")
        return 0
    STAMP.unlink(missing_ok=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(langs)) as pool:
        results = list(pool.map(run, langs))
    failed = []
    for lang, code, output, seconds in results:
        log = BUILD / lang / "build.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(output, encoding="utf-8")
        if code == 0:
            publish(lang)
            print(f"{lang}: built in {seconds:.1f} s -> {SITE / lang} (log: {log.relative_to(ROOT)})")
        else:
            failed.append(lang)
            print(f"==== {lang}: FAILED after {seconds:.1f} s " + "=" * 40 + f"\n{output.rstrip()}\n")
    write_root_page(languages(config), config)
    publish_mathjax()
    total = time.perf_counter() - start
    if failed:
        print(f"build failed for {', '.join(failed)} (warnings count as errors; see above)", file=sys.stderr)
        return 1
    if full:
        STAMP.write_text(json.dumps({"inputs": digest, "seconds": round(total, 1)}) + "\n", encoding="utf-8")
    print(f"built {', '.join(langs)} in {total:.1f} s: open {SITE / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
