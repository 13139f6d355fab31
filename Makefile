# The two commands a newcomer needs:  make run   and   make test
.PHONY: setup run dev-model test test-slow bench lint clean

PY := .venv/bin/python
DATA ?= ./data

setup:
	bash scripts/setup.sh

## Start the embedded default: DATA/input is the bucket, DATA/output the outputs, SQLite the documents.
dev-model: setup
	$(PY) -m voicecloning dev-model models/dev-tiny

run: setup
	$(PY) -m voicecloning serve --data $(DATA)

## Set up and run every test of the default run (a few minutes).
test: setup
	bash scripts/setup-deploy-checks.sh
	bash scripts/setup-web.sh
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow" -q

## Heavy checks left out of the default run.
test-slow: setup
	$(PY) -m pytest -m slow -q

## Speed and memory against stock coqui-tts (prints figures; minutes).
bench: setup
	$(PY) -m voicecloning bench

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf .venv .venv-* .pytest_cache data
