# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv if missing, install requirements.txt, train on the synthetic default
#   make test   the same install, then the linter (ruff) and the whole test suite (problem_unittests.py included);
#               the web page's test drives Debian's chromium, installed here when missing and root
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-requirements

.PHONY: demo test install browser clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m facegan train --preset demo

test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest

# chromium + chromedriver for tests/commands/test_explorer.py; without them (and without root to install
# them) that one test is skipped with a note saying how to install them.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver for the browser test (apt-get)"; \
	  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } || \
	  echo "note: could not install chromium; the browser test will be skipped"; \
	else echo "note: the browser test needs chromium and chromedriver (sudo apt-get install chromium chromium-driver)"; fi

clean:
	rm -rf runs/demo .pytest_cache
