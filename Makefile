# Set-up is part of each target: a fresh clone needs nothing but Python 3.11 and these two commands.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

app: $(STAMP)
	$(VENV)/bin/streamlit run app.py

# (chromium is installed above, so a browser test that finds none fails instead of skipping: AELAB_REQUIRE_BROWSER)
test: $(STAMP) chromium
	AELAB_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests

.PHONY: app test chromium
