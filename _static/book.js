/* The book's own behaviour on every page (registered in _config.yml, html_js_files). */
"use strict";

/* The language switch lands on the same section. Section ids come from the titles, so they differ by
   language; tools/sphinx_site.py gives every section a second id from its position (sec-2-1), the same in
   both languages. Exercise anchors (exercise-3) are the same in both languages already. */
function sameSectionHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  const target = id && document.getElementById(id);
  if (!target) return "";
  if (/^(sec(-\d+)+|exercise-\d+)$/.test(id)) return "#" + id;
  const section = target.closest("section");
  const position = section && section.querySelector(":scope > span[id^='sec-']");
  return position ? "#" + position.id : "";
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a.book-language-switch");
  if (link) link.hash = sameSectionHash();
});

/* Search result snippets show the page's prose only: Sphinx takes the text of the whole main area, which
   here also holds the header buttons, the printed table of contents and the previous/next links, and
   writes math as its TeX source. */
const TEX_SYMBOLS = {
  times: "×", cdot: "·", to: "→", rightarrow: "→", leftarrow: "←", le: "≤", leq: "≤", ge: "≥", geq: "≥",
  approx: "≈", neq: "≠", in: "∈", sum: "∑", infty: "∞", partial: "∂", alpha: "α", beta: "β", gamma: "γ",
  delta: "δ", epsilon: "ε", eta: "η", lambda: "λ", mu: "μ", sigma: "σ", theta: "θ", ldots: "…", dots: "…",
  sqrt: "√",
};
// Commands that only format their argument: dropped, the argument stays. Any other command (\max, \log)
// is written as its name.
const TEX_FORMATTING = new Set(["text", "mathrm", "mathbf", "mathtt", "mathit", "mathcal", "boldsymbol",
  "operatorname", "frac", "left", "right", "big", "Big", "displaystyle", "hat", "tilde", "bar", "quad",
  "qquad", "begin", "end"]);

function plainMath(tex) {
  return tex
    .replace(/^\s*(\\\(|\\\[|\$\$?)|(\\\)|\\\]|\$\$?)\s*$/g, "")
    .replace(/\\([A-Za-z]+)/g, (match, name) => TEX_SYMBOLS[name] ?? (TEX_FORMATTING.has(name) ? "" : name))
    .replace(/\\([_%&#$])/g, "$1")
    .replace(/\\[,;:! ]/g, " ")
    .replace(/[{}]/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined" || !Search.htmlToText) return;  // search pages only
  const htmlToText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    doc.querySelectorAll(".bd-header-article, #jb-print-docs-body, .prev-next-area, .bd-footer-article, button")
      .forEach((element) => element.remove());
    doc.querySelectorAll(".math").forEach((math) => { math.textContent = plainMath(math.textContent); });
    return htmlToText(doc.documentElement.outerHTML, anchor);
  };
});
