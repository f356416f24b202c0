"""``python -m TextLesionSegLib.sample_data``: copies lung2 from the shared folder, idempotently,
replaces a corrupted copy, and fails cleanly with no source (no network used in tests)."""

from __future__ import annotations

from TextLesionSegLib import sample_data


def test_copy_idempotent_and_repair(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sample_data, "shared_data_dirs", lambda: [shared_data])
    assert sample_data.main(["--out", str(tmp_path / "d"), "--no-download"]) == 0
    image = tmp_path / "d" / "lung2_image.nrrd"
    assert image.stat().st_size == (shared_data / "lung2_image.nrrd").stat().st_size
    stamp = image.stat().st_mtime_ns
    assert sample_data.main(["--out", str(tmp_path / "d"), "--no-download"]) == 0
    assert image.stat().st_mtime_ns == stamp  # already there: untouched
    image.write_bytes(b"corrupted")
    assert sample_data.main(["--out", str(tmp_path / "d"), "--no-download"]) == 0
    assert sample_data._ok(image)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["lung2_image.nrrd", "lung2_label.nrrd"]


def test_no_source_fails_cleanly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sample_data, "shared_data_dirs", lambda: [tmp_path / "absent"])
    assert sample_data.main(["--out", str(tmp_path / "d"), "--no-download"]) == 2
    assert "could not obtain" in capsys.readouterr().err
    assert list((tmp_path / "d").iterdir()) == []
