# Two commands do all the set-up: `make serve` and `make test` (see README.md).
PYTHON3 ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
PY      := $(VENV)/bin/python
MODEL   ?= artifacts/model.joblib
CORPUS  := data/r-cran-janeaustenr/usr/lib/R/site-library/janeaustenr/data/Rdata.rdx
PORT    ?= 8000

.PHONY: install corpus model serve test bench lock clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON3) -m venv $(VENV) || { echo "make: could not create $(VENV); on Debian install the venv module: apt-get install python3-venv" >&2; exit 1; }
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed

$(CORPUS): | $(VENV)/.installed
	$(PY) training/fetch_corpus.py --data-dir data

corpus: $(CORPUS)

# Train the default model if none exists; a killed run continues from its checkpoint.
$(MODEL): | $(VENV)/.installed $(CORPUS)
	$(PY) training/train.py --out $(MODEL) $(if $(wildcard $(MODEL).ckpt),--resume)

model: $(MODEL)

serve: $(MODEL)
	RNNLM_MODEL=$(MODEL) RNNLM_BIND=$${RNNLM_BIND:-0.0.0.0:$(PORT)} $(VENV)/bin/gunicorn -c service/gunicorn.conf.py service.wsgi:app

test: $(VENV)/.installed $(CORPUS)
	$(PY) -m pytest

# requirements.lock: the image's dependencies pinned with their hashes, from pyproject.toml
# (pip-compile in a throwaway environment; the image installs it with --require-hashes)
lock:
	$(PYTHON3) -m venv .lock-venv && .lock-venv/bin/pip install --quiet pip-tools
	.lock-venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --build-deps-for=wheel --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	rm -rf .lock-venv

bench: $(VENV)/.installed
	$(PY) bench/train_speed.py

clean:
	rm -rf $(VENV) artifacts data
