"""Output paths are checked before anything is written, and a run is never overwritten unasked."""

import datetime as dt

import pytest

from udatune.errors import ConfigError
from udatune.outputs import check_output_file, check_output_folder, check_sweep_name, check_writable_folder, new_run_folder


def test_an_earlier_run_is_refused_unless_overwrite(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    check_output_folder(run, "--out")  # empty: fine
    (run / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match="--out .* already holds files.*--overwrite"):
        check_output_folder(run, "--out")
    check_output_folder(run, "--out", overwrite=True)
    assert (run / "metrics.jsonl").read_text() == "{}\n"  # checking writes nothing


def test_a_file_where_a_folder_goes_is_named(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_folder(afile, "--out")
    with pytest.raises(ConfigError, match="afile is a file, not a folder"):
        check_output_folder(afile / "below", "--out")  # a folder cannot be made under a file
    with pytest.raises(ConfigError, match="--storage .* is a file"):
        check_writable_folder(str(afile), "--storage", "the folder where sweeps are kept")
    check_writable_folder("s3://bucket/sweeps", "--storage", "the folder where sweeps are kept")  # URIs: the filesystem's job


def test_a_folder_where_a_file_goes_is_named(tmp_path):
    with pytest.raises(ConfigError, match="--csv .* is a folder"):
        check_output_file(tmp_path, "--csv")
    check_output_file(tmp_path / "new" / "t.csv", "--csv")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x" * 101, "a..b", "/abs"])
def test_sweep_names_stay_one_folder_inside_the_storage(name):
    with pytest.raises(ConfigError, match="--name"):
        check_sweep_name(name)


@pytest.mark.parametrize("name", ["camvid-1", "sweep-20261201-101500", "A.b_c"])
def test_ordinary_sweep_names_pass(name):
    check_sweep_name(name)


def test_new_run_folders_never_collide(tmp_path):
    now = dt.datetime(2026, 12, 1, 10, 15, 0)
    first = new_run_folder(tmp_path, now)
    assert first.name == "20261201-101500"
    first.mkdir()
    second = new_run_folder(tmp_path, now)
    assert second.name == "20261201-101500-2" and not second.exists()
