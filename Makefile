# Two commands do all the set-up:  `make demo`  and  `make test`.
# Each creates the virtual environment .venv on first use and installs requirements.txt into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-backends doctor lab book student-copy bench lessons clean

$(STAMP): requirements.txt requirements-course.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)                ## the main job: source model -> target task, scratch vs features vs fine-tuning
	$(PY) -m tltutor demo

test: $(STAMP)                ## lint, unit tests, every notebook once (nbval), the book in Chromium if built
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -m "not slow"

doctor: $(STAMP)
	$(PY) -m tltutor doctor

lab: $(STAMP)                 ## start the course in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

book: $(STAMP)                ## the Jupyter Book site in book/_build/html (executes every notebook, two at a time; those with worker processes one at a time)
	$(PY) scripts/build_book.py

student-copy: $(STAMP)        ## notebooks without solutions, in student/
	$(PY) -m tltutor student-copy notebooks -o student

lessons: $(STAMP)              ## slow: every notebook with seeds 0, 1 (student copy), 2, and the tests marked slow
	$(PY) scripts/lessons.py --seeds 0 1 2 --json out/lessons.json
	$(PY) -m pytest -m slow tests

bench: $(STAMP)                ## speed ratios (cached features, fit overhead, tf.data; on a GPU: mixed precision, jit)
	$(PY) bench/bench.py --quick --json out/bench.json

# The unit suite on the other Keras backends (about 10 minutes each on 2 quiet cores; not part of
# `make test`): JAX in .venv, PyTorch (CPU, a large download) in its own .venv-torch without TensorFlow.
UNIT := tests -m "not slow and not book" --ignore=tests/test_notebooks.py
test-backends: $(STAMP)
	$(PY) -m pip install "jax[cpu]>=0.4.30"
	KERAS_BACKEND=jax $(PY) -m pytest $(UNIT)
	test -x .venv-torch/bin/python || $(PYTHON) -m venv .venv-torch
	.venv-torch/bin/python -m pip install -r requirements-course.txt torch
	KERAS_BACKEND=torch .venv-torch/bin/python -m pytest $(UNIT) -o addopts="-ra"

clean:
	rm -rf $(VENV) .venv-torch out student book/_build book/notebooks book/_toc.yml book/_generated .pytest_cache
