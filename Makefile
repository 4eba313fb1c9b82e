# The two commands of the README: `make book` builds the site, `make test` runs every test.
# Both create the virtual environment in $(VENV) on first use and reuse it afterwards.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

# Tests read Fashion-MNIST from a local copy when one sits beside the checkout (CI); elsewhere cnnlib
# downloads it on first use. An explicit CNNLIB_DATA always wins.
CNNLIB_DATA ?= $(if $(wildcard ../shared/data/fashion-mnist),$(abspath ../shared/data/fashion-mnist))
export CNNLIB_DATA

.PHONY: venv book pdf serve lint test student clean

venv: $(STAMP)

# A reader who builds the site installs requirements.txt; the tests add requirements-test.txt.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

book: $(STAMP)
	$(PY) tools/build_book.py

# The book as a PDF per language, printed from the built site by Chromium (/usr/bin/chromium, with
# fonts-noto-cjk): _build/pdf/<name>-<lang>.pdf, also published in _build/html/pdf/ for the sites' PDF button.
pdf: book
	$(PY) tools/build_pdf.py

# Build, then serve both sites and the language chooser on http://127.0.0.1:8000/
serve: book
	$(PY) -m http.server --bind 127.0.0.1 --directory _build/html 8000

# ruff reads the notebooks' code cells itself; the rules are in pyproject.toml.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check cnnlib tools tests benchmarks chapters

test: lint
	CNNLIB_SMOKE=1 $(PY) -m pytest

# Student copies of every chapter, both languages, in _build/student/<lang>/ (solutions replaced by stubs).
student: $(STAMP)
	$(PY) tools/make_student.py

clean:
	rm -rf _build
