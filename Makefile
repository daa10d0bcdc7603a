# Every target sets up .venv itself on a clean machine (about a minute: torch is pinned to the
# CPU wheel that `pip install torch==2.13.0` takes from local disk).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# The main job on the offline default model: a batch over the sample images into outputs/.
demo: setup
	$(BIN)/inpaint-kit infer --model builtin --batch_imgs_dir imgs --batch_masks_dir masks \
		--output_dir outputs --size 256 --rows 3 --seed 1 --save_rows --overwrite

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/bench_infer.py
	$(BIN)/python bench/bench_train.py

clean:
	rm -rf $(VENV) outputs/*.png outputs/manifest.jsonl .pytest_cache
