# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv if missing, install requirements.txt, train on the synthetic default
#   make test   the same install, then the whole test suite (problem_unittests.py included)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-requirements

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m facegan train --preset demo

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf runs/demo .pytest_cache
