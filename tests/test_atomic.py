import os

import pytest

from vcl_fast.atomic import atomic_save, atomic_write


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_save_with_path_writer(tmp_path):
    target = tmp_path / "w.bin"
    atomic_save(target, lambda p: open(p, "wb").write(b"abc"))
    assert target.read_bytes() == b"abc"
    with pytest.raises(ValueError):
        atomic_save(target, lambda p: (_ for _ in ()).throw(ValueError("bad")))
    assert target.read_bytes() == b"abc"


def test_atomic_write_rejects_read_mode(tmp_path):
    with pytest.raises(ValueError, match="write mode"):
        with atomic_write(tmp_path / "x", "r"):
            pass


def test_atomic_write_uses_normal_file_permissions(tmp_path):
    from vcl_fast.atomic import _process_umask

    with atomic_write(tmp_path / "out.json") as f:
        f.write("{}")
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o666 & ~_process_umask()


def test_atomic_save_uses_normal_file_permissions_when_the_writer_makes_its_own_file(tmp_path):
    from vcl_fast.atomic import _process_umask, atomic_save

    def write_private(path):  # as safetensors.save_file does: a new file, 0600
        os.unlink(path)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))

    atomic_save(tmp_path / "model.safetensors", write_private)
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~_process_umask()


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path):
    from vcl_fast.atomic import atomic_directory

    with atomic_directory(tmp_path / "out") as staging:
        (staging / "a.txt").write_text("a")
        assert not (tmp_path / "out").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.txt"]
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "failed") as staging:
            (staging / "b.txt").write_text("b")
            raise RuntimeError("interrupted")
    (tmp_path / "empty").mkdir()
    with atomic_directory(tmp_path / "empty") as staging:
        (staging / "c.txt").write_text("c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "out"]  # no staging directory left
    with pytest.raises(FileExistsError, match="not an empty folder"):
        with atomic_directory(tmp_path / "out"):
            pass


def test_atomic_directory_replaces_a_directory_as_a_whole(tmp_path):
    from vcl_fast.atomic import atomic_directory

    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(out, replace=True) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert [p.name for p in out.iterdir()] == ["old.txt"]  # a failed replacement leaves the old directory
    with atomic_directory(out, replace=True) as staging:
        (staging / "new.txt").write_text("new")
        assert (out / "old.txt").exists()
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    with atomic_directory(tmp_path / "fresh", replace=True) as staging:
        (staging / "a.txt").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "out"]  # nothing left aside
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        with atomic_directory(tmp_path / "file", replace=True):
            pass


def test_check_output_file_names_the_target(tmp_path):
    from vcl_fast.atomic import check_output_file

    assert check_output_file(tmp_path / "new" / "deeper" / "out.json") == tmp_path / "new" / "deeper" / "out.json"
    (tmp_path / "old.json").write_text("{}")
    assert check_output_file(tmp_path / "old.json") == tmp_path / "old.json"
    with pytest.raises(IsADirectoryError) as folder:
        check_output_file(tmp_path)
    assert folder.value.filename == str(tmp_path) and "give a file name" in folder.value.strerror
    with pytest.raises(NotADirectoryError) as under_file:
        check_output_file(tmp_path / "old.json" / "sub" / "out.json")
    assert under_file.value.filename == str(tmp_path / "old.json" / "sub" / "out.json")
    assert check_output_file(tmp_path, folder=True) == tmp_path
    with pytest.raises(NotADirectoryError, match="is a file; give a folder"):
        check_output_file(tmp_path / "old.json", folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]  # the probe files are gone


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc pseudo-filesystem here")
def test_check_output_file_tries_a_write_which_permission_bits_do_not_tell():
    from vcl_fast.atomic import check_output_file

    with pytest.raises(OSError, match=r"/proc/out.json") as caught:  # root too: nothing can be created in /proc
        check_output_file("/proc/out.json")
    assert "cannot write in /proc (" in str(caught.value)


@pytest.mark.parametrize("writer", ["write", "save"])
def test_atomic_errors_name_the_target_not_the_temporary_file(tmp_path, writer):
    (tmp_path / "file").write_text("x")
    for target, error in ((tmp_path, IsADirectoryError), (tmp_path / "file" / "out.json", NotADirectoryError)):
        with pytest.raises(error) as caught:
            if writer == "write":
                with atomic_write(target) as f:
                    f.write("new")
            else:
                atomic_save(target, lambda p: open(p, "wb").write(b"abc"))
        assert caught.value.filename == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_atomic_directory_errors_name_the_target(tmp_path):
    from vcl_fast.atomic import atomic_directory

    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "out"
    with pytest.raises(OSError) as caught:
        with atomic_directory(target):
            pass
    assert caught.value.filename == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
