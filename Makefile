# The two commands of the README. Both create or reuse .venv/ at the repository root.
#   make demo   segment the real lung tumour of lung2 from a text description
#   make test   the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.textlesionseg-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test venv clean

venv: $(STAMP)

# torch==2.13.0 first: a CPU wheel of it is on this kind of machine; a bare "torch" would pull
# several GB of CUDA packages. Runtime requirements only state ranges.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	OMP_NUM_THREADS=1 MPLCONFIGDIR=$$(mktemp -d) $(PY) -m pytest -n 2 --dist loadfile -q

demo: $(STAMP)
	$(PY) -m TextLesionSegLib.sample_data --out .cache/data
	mkdir -p out
	$(VENV)/bin/textlesionseg segment .cache/data/lung2_image.nrrd \
		--text "a mass in the left lung" --model lsms-demo \
		--output out/lung2.seg.nrrd --labelmap out/lung2_labelmap.nii.gz \
		--report out/lung2_report.json --overlay out/lung2_overlay.png --overwrite
	$(VENV)/bin/textlesionseg segment .cache/data/lung2_image.nrrd \
		--text "a mass in the left lung" --model malenia-demo \
		--output out/lung2_malenia.seg.nrrd --report out/lung2_malenia_report.json \
		--overlay out/lung2_malenia_overlay.png --overwrite
	@echo "demo outputs in out/: lung2.seg.nrrd, lung2_labelmap.nii.gz, lung2_report.json, lung2_overlay.png (LSMS);"
	@echo "lung2_malenia.seg.nrrd, lung2_malenia_report.json, lung2_malenia_overlay.png (Malenia)"

clean:
	rm -rf $(VENV) .cache out
