# Every target sets up .venv itself on a clean machine (about a minute: torch is pinned to the
# CPU wheel that `pip install torch==2.13.0` takes from local disk).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup browser demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev,ui]"
	@$(MAKE) --no-print-directory browser
	touch $(STAMP)

setup: $(STAMP)

# Headless Chromium and its driver from the OS packages, for tests/test_ui_browser.py. Installed only where
# the machine allows it (root with apt-get); elsewhere that test is skipped and says why (pytest -rs).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium + chromium-driver with apt-get (for the browser test)"; \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) >/dev/null \
			|| echo "apt-get could not install chromium chromium-driver: the browser test will be skipped"; \
	else echo "not root or no apt-get: install chromium and chromium-driver to run the browser test (skipped otherwise)"; fi

# The main job on the offline default model: a batch over the sample images into outputs/.
# THREADS=1 (torch CPU threads) is often much faster on a machine busy with other jobs; same pixels.
THREADS ?=
demo: setup
	$(BIN)/inpaint-kit infer --model builtin --batch_imgs_dir imgs --batch_masks_dir masks \
		--output_dir outputs --size 320 --rows 3 --seed 1 --save_rows --overwrite $(if $(THREADS),--threads $(THREADS))

test: setup
	$(BIN)/python -m pytest -rs

bench: setup
	$(BIN)/python bench/bench_infer.py
	$(BIN)/python bench/bench_train.py

clean:
	rm -rf $(VENV) outputs/*.png outputs/manifest.jsonl .pytest_cache
