# ldct-notebooks: `make book` (main job) and `make test`.
# Both create .venv and install the pinned requirements when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
ONLY ?=
STAMP := $(VENV)/.installed
PIP_QUIET := -q --disable-pip-version-check
export JUPYTER_PREFER_ENV_PATH := 1
export PYTHONUNBUFFERED := 1

.PHONY: book notebooks html test install clean help
.NOTPARALLEL:  # `make -j book` must still execute the notebooks before building the HTML

help:
	@echo "make book [PROFILE=cpu|smoke|gpu|mayo2016...] [ONLY=01,04]  execute the notebooks and build _build/html"
	@echo "make test                                                 run the test suite"

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing requirements into $(VENV) (a few minutes the first time)"
	@set -o pipefail; $(PY) -m pip install $(PIP_QUIET) -r requirements.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@$(PY) -c "import torch, torchvision, papermill, jupyter_book" || (echo "install failed: see the pip output above" && exit 1)
	@set -o pipefail; $(PY) -m pip install $(PIP_QUIET) --no-deps --no-build-isolation -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@cd notebooks && $(abspath $(PY)) -c "import ldct_nb" || (echo "editable install of ldct_nb failed: see the pip output above" && exit 1)
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ldct-notebooks)" >/dev/null
	@touch $(STAMP)

notebooks: $(STAMP)
	$(PY) -m ldct_nb run --profile $(PROFILE) $(if $(ONLY),--only $(ONLY))

html: $(STAMP)
	$(VENV)/bin/jupyter-book build . --path-output . --warningiserror --keep-going -q

book: notebooks html
	@echo "book: open _build/html/index.html"

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf _build book/executed
