# Two commands do all the set-up:  `make demo`  and  `make test`.
# Each creates the virtual environment .venv on first use and installs requirements.txt into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test doctor lab book student-copy bench clean

$(STAMP): requirements.txt requirements-course.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)                ## the main job: source model -> target task, scratch vs features vs fine-tuning
	$(PY) -m tltutor demo

test: $(STAMP)                ## unit tests + every notebook (solution and student versions)
	$(PY) -m pytest

doctor: $(STAMP)
	$(PY) -m tltutor doctor

lab: $(STAMP)                 ## start the course in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

book: $(STAMP)                ## the Jupyter Book site in book/_build/html (executes every notebook)
	$(PY) scripts/build_book.py

student-copy: $(STAMP)        ## notebooks without solutions, in student/
	$(PY) -m tltutor student-copy notebooks -o student

bench: $(STAMP)
	$(PY) bench/bench.py --quick --json out/bench.json

clean:
	rm -rf $(VENV) out student book/_build book/notebooks book/_toc.yml book/_generated .pytest_cache
