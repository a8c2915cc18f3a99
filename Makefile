# Every target runs `setup` first; setup is a no-op (seconds) when pyproject.toml has not changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARCH   ?= edge
MODE   ?= int8
SOURCE ?= auto
DIR    ?=
PHOTOS_DIR ?= ../shared/datasets/real-photos
PHOTOS_REPORT ?= build/eval-photos

COMPAT := .venv-compat
HOST   ?=

.PHONY: setup train convert publish test run classify eval-photos bench test-edge-compat test-aarch64 check-deploy deploy clean help

help:
	@echo "make setup      create .venv with pinned dependencies (implicit in every target)"
	@echo "make train      train the default CNN on MNIST into build/model (ARCH=seed for the classic seed CNN)"
	@echo "make convert    quantize build/model/digit_cnn.keras to .tflite and validate (MODE=int8|float16|dynamic|float32|all)"
	@echo "make publish    copy the validated model from build/model to models/ (refuses a less accurate one)"
	@echo "make test       run the test suite"
	@echo "make run        read digits from a camera or video (SOURCE=auto|picamera|0|file|url)"
	@echo "make classify   classify a folder of images (DIR=path)"
	@echo "make eval-photos score reading on labelled real photos (PHOTOS_DIR, default ../shared/datasets/real-photos)"
	@echo "make bench      measure every speed and size claim (QUICK=1: under a minute)"
	@echo "make test-edge-compat   edge, classify, hostile-input and live-view tests on a Pi OS-like stack (numpy 1.24, OpenCV 4.6, tflite-runtime 2.14)"
	@echo "make test-aarch64       the int8 model and folder classifier as an aarch64 program under qemu = x86's answers"
	@echo "make check-deploy       shellcheck + dry run of the Pi installer, systemd-analyze verify of the unit"
	@echo "make deploy HOST=pi@raspberrypi.local   copy edge/ and models/ to a Pi and run the installer there"

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

# build/model -> models/: only modes that passed the gate, never a less accurate model (FORCE=1 to override).
publish: setup
	$(PY) -m convert.publish $(if $(FORCE),--force) $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

run: setup
	$(PY) -m edge --source $(SOURCE) $(ARGS)

classify: setup
	@test -n "$(DIR)" || { echo "usage: make classify DIR=folder [ARGS=...]" >&2; exit 2; }
	$(PY) -m edge.classify "$(DIR)" $(ARGS)

# The rows go to build/ (untracked); the per-photo table goes to stderr, box pictures to PHOTOS_REPORT.
eval-photos: setup
	@if [ ! -f "$(PHOTOS_DIR)/labels.json" ]; then echo "eval-photos: no labelled photos at $(PHOTOS_DIR) (set PHOTOS_DIR); nothing to score"; exit 0; fi; \
	mkdir -p $(PHOTOS_REPORT) && $(PY) -m edge.classify "$(PHOTOS_DIR)" --labels "$(PHOTOS_DIR)/labels.json" \
		--workers 1 --report $(PHOTOS_REPORT) --out $(PHOTOS_REPORT)/rows.csv $(ARGS); \
	status=$$?; [ $$status -le 3 ] || exit $$status

# A second venv shaped like Raspberry Pi OS bookworm's Python stack: Debian's numpy 1.24 and
# OpenCV 4.6, tflite-runtime 2.14 (which fails under numpy 2), no TensorFlow, no ai-edge-litert.
$(COMPAT)/.installed: Makefile
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT)/bin/python -m pip install --quiet "numpy==1.24.2" "opencv-python-headless==4.6.0.66" \
		"tflite-runtime==2.14.0" "pytest==8.*" "Pillow==10.*"
	touch $@

test-edge-compat: $(COMPAT)/.installed
	EXPECT_BACKEND=tflite_runtime $(COMPAT)/bin/python -m pytest -q -p no:cacheprovider \
		tests/test_edge.py tests/test_classify.py tests/test_hostile.py tests/test_live.py $(ARGS)

AARCH64_CACHE ?= $(HOME)/.cache/digit-edge/aarch64

test-aarch64: setup
	bash tests/aarch64/setup.sh $(AARCH64_CACHE) $(CURDIR)/$(VENV)/bin/pip
	AARCH64_CACHE=$(AARCH64_CACHE) $(PY) -m pytest -q -p no:cacheprovider tests/aarch64/check_aarch64.py $(ARGS)

check-deploy:
	@for tool in shellcheck systemd-analyze; do command -v $$tool >/dev/null || \
		{ echo "check-deploy needs $$tool: install it (Debian/Ubuntu: sudo apt-get install shellcheck systemd)" >&2; exit 1; }; done
	shellcheck edge/deploy/install-pi.sh
	bash edge/deploy/install-pi.sh --dry-run --prefix /tmp/digit-edge-dry-run >/dev/null
	tmp=$$(mktemp -d) && sed "s#/opt/digit-edge#$(CURDIR)#g" edge/deploy/digit-reader.service > $$tmp/digit-reader.service \
		&& systemd-analyze verify $$tmp/digit-reader.service && rm -r $$tmp

deploy:
	@test -n "$(HOST)" || { echo "usage: make deploy HOST=pi@raspberrypi.local" >&2; exit 2; }
	tar czf - --exclude=__pycache__ edge models | ssh $(HOST) 'mkdir -p digit-edge && tar xzf - -C digit-edge'
	ssh -t $(HOST) 'bash digit-edge/edge/deploy/install-pi.sh'

clean:
	rm -rf $(VENV) $(COMPAT) .pytest_cache

# Results go to build/bench/ (untracked); bench/results.* are the figures the README quotes
# (refresh them with ARGS="--out bench/results.json").
bench: setup
	$(PY) -m bench $(if $(QUICK),--quick) $(ARGS)
