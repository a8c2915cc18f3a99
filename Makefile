# Every target runs `setup` first; setup is a no-op (seconds) when pyproject.toml has not changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARCH   ?= edge
MODE   ?= int8
SOURCE ?= auto
DIR    ?=

.PHONY: setup train convert test run classify bench clean help

help:
	@echo "make setup      create .venv with pinned dependencies (implicit in every target)"
	@echo "make train      train the default CNN on MNIST (ARCH=seed for the classic seed CNN)"
	@echo "make convert    quantize models/digit_cnn.keras to .tflite and validate (MODE=int8|float16|dynamic|float32|all)"
	@echo "make test       run the test suite"
	@echo "make run        read digits from a camera or video (SOURCE=auto|picamera|0|file|url)"
	@echo "make classify   classify a folder of images (DIR=path)"
	@echo "make bench      measure every speed and size claim (QUICK=1: under a minute)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[train,edge,dev]"
	touch $(STAMP)

train: setup
	$(PY) -m train --arch $(ARCH) $(ARGS)

convert: setup
	$(PY) -m convert --mode $(MODE) $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

run: setup
	$(PY) -m edge --source $(SOURCE) $(ARGS)

classify: setup
	@test -n "$(DIR)" || { echo "usage: make classify DIR=folder [ARGS=...]" >&2; exit 2; }
	$(PY) -m edge.classify "$(DIR)" $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

bench: setup
	$(PY) -m bench $(if $(QUICK),--quick) $(ARGS)
