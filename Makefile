# The two commands of the README. Both create or reuse .venv/ at the repository root.
#   make demo   ask both demo models for a left- and a right-lung mass on the real lung2 CT, and one synthetic scene
#   make test   the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.textlesionseg-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

#: the synthetic scene of the demo (textlesionseg synth --reading --seed 777, case 5; chosen for the
#: picture among 7 scenes tried, see README) and its two descriptions
SCENE_TEXT_1 := large ill-defined ground-glass opacity in the left upper lobe
SCENE_TEXT_2 := ground-glass nodule in the right lower lobe, 4 cm

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
		--text "a mass in the left lung" --text "a mass in the right lung" --model lsms-demo \
		--output out/lung2.seg.nrrd --labelmap out/lung2_labelmap.nii.gz \
		--report out/lung2_report.json --overlay out/lung2_overlay.png --overwrite
	$(VENV)/bin/textlesionseg segment .cache/data/lung2_image.nrrd \
		--text "a mass in the left lung" --text "a mass in the right lung" --model malenia-demo \
		--output out/lung2_malenia.seg.nrrd --report out/lung2_malenia_report.json \
		--overlay out/lung2_malenia_overlay.png --overwrite
	test -d .cache/scenes777 || $(VENV)/bin/textlesionseg synth --reading --out .cache/scenes777 --count 6 --seed 777 --no-progress
	$(VENV)/bin/textlesionseg segment .cache/scenes777/imagesTr/reading_00005.nii.gz \
		--text "$(SCENE_TEXT_1)" --text "$(SCENE_TEXT_2)" --model lsms-demo \
		--output out/scene.seg.nrrd --overlay out/scene_overlay.png --report out/scene_report.json --overwrite
	@echo "demo outputs in out/: lung2.seg.nrrd, lung2_labelmap.nii.gz (+ .labels.csv), lung2_report.json, lung2_overlay.png (LSMS);"
	@echo "lung2_malenia.seg.nrrd, lung2_malenia_report.json, lung2_malenia_overlay.png (Malenia);"
	@echo "scene.seg.nrrd, scene_overlay.png, scene_report.json (two descriptions, one synthetic scan)"

clean:
	rm -rf $(VENV) .cache out
