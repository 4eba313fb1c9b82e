"""Sphinx extension: the site speaks its page's language, and the language switch keeps the section.

1. Interface texts. The themes leave some texts in English on a Chinese site (sphinx-book-theme's
   "Launch on", its hard-coded "Toggle primary sidebar"; pydata-sphinx-theme's "Color mode"; Sphinx's own
   "Link to this heading") and translate "Print to PDF" in Traditional wording. `locale/<language>.po`
   (one file per site language, e.g. locale/zh_CN.po) holds the book's translations of those texts. When the
   configuration is read, its messages are put in front of the catalogs of Sphinx ("sphinx", which the
   templates use through `_()`) and of sphinx-book-theme ("booktheme"), so they win over the themes' own.
   The templates _templates/toggle-*.html, sbt-sidebar-nav.html and layout.html pass the theme's
   hard-coded English texts through `_()`.
2. Sections get a second id that does not depend on the language: `sec-2-1` is the first subsection of the
   page's second section (positions, not titles). The language switch (_static/book.js) uses it to land on
   the same section in the other language.

Register it in _config.yml:  sphinx: local_extensions: {sphinx_site: tools/}
"""
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from docutils import nodes
from sphinx import locale

__version__ = "1.0"

LOCALE = Path(__file__).resolve().parent.parent / "locale"
DOMAINS = ("sphinx", "booktheme")  # Sphinx's and pydata-sphinx-theme's texts; sphinx-book-theme's


def catalog(language):
    """The book's translations for `language` (a GNUTranslations), or None if locale/ has none."""
    po = LOCALE / f"{language}.po"
    if not po.is_file():
        return None
    with po.open("rb") as f:
        messages = read_po(f, locale=language)
    mo = io.BytesIO()
    write_mo(mo, messages)
    mo.seek(0)
    return gettext.GNUTranslations(mo)


def put_book_texts_first(app, config):
    """Our catalog in front of Sphinx's and the themes' (they stay as fallbacks for everything else)."""
    if not config.language or catalog(config.language) is None:
        return
    for domain in DOMAINS:
        ours = catalog(config.language)  # one object per domain: add_fallback() changes it
        theirs = locale.translators.get(("general", domain))
        if theirs is not None:
            ours.add_fallback(theirs)
        locale.translators["general", domain] = ours
        if domain == "sphinx":
            app.translator = ours  # the templates' `_()` is installed from this one


def add_position_ids(app, doctree):
    """Each section also gets the id sec-<position>-<position>... (1-based among its sibling sections)."""
    def visit(parent, prefix):
        sections = [child for child in parent.children if isinstance(child, nodes.section)]
        for position, section in enumerate(sections, start=1):
            anchor = f"{prefix}-{position}"
            if anchor not in doctree.ids:
                section["ids"].append(anchor)
                doctree.ids[anchor] = section
            visit(section, anchor)

    visit(doctree, "sec")


def setup(app):
    app.connect("config-inited", put_book_texts_first)
    app.connect("doctree-read", add_position_ids)
    return {"version": __version__, "env_version": 1, "parallel_read_safe": True, "parallel_write_safe": True}
