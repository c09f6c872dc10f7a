"""vcl_fast ships ``py.typed``: the typed surface (pyproject.toml's ``[tool.mypy] files``: the public API and the
inference path) type-checks, and a user's type checker sees the API's types through ``from vcl_fast import``."""
import textwrap
from pathlib import Path

import pytest

import vcl_fast

mypy_api = pytest.importorskip("mypy.api")
ROOT = Path(vcl_fast.__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file(), reason="needs the source tree (pyproject.toml)")


def _mypy(*args: str) -> tuple[str, int]:
    out, err, status = mypy_api.run([*args])
    return out + err, status


def test_the_package_is_marked_typed():
    assert (ROOT / "vcl_fast" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()  # installed with the package (package-data)


def test_the_typed_surface_type_checks(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    report, status = _mypy("--cache-dir", str(tmp_path / "cache"))
    assert status == 0, report


def test_a_user_sees_the_api_types(tmp_path, monkeypatch):
    """Two mistakes in a user's script are found, and nothing else: the classes are not ``Any``."""
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent("""\
        from vcl_fast import Localizer

        loc = Localizer()
        result = loc.localize("query.mp4", "reference.mp4", return_map=True)
        first: float = result.segments[0].q_start
        edges = result.map_edges
        wrong: int = result.segments
        loc.localize_many("query.mp4", "reference.mp4", return_map="yes")
    """))
    (tmp_path / "mypy.ini").write_text("[mypy]\n")  # mypy's defaults, as a user's project starts with
    monkeypatch.setenv("MYPYPATH", str(ROOT))  # an editable install hides the package from mypy's search
    report, status = _mypy("--cache-dir", str(tmp_path / "cache"), "--follow-imports", "silent",
                           "--config-file", str(tmp_path / "mypy.ini"), str(script))
    assert status == 1
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert len(errors) == 2, report
    assert 'user.py:7: error: Incompatible types in assignment (expression has type "list[Segment]"' in errors[0]
    assert 'user.py:8: error: Argument "return_map" to "localize_many"' in errors[1] and 'expected "bool"' in errors[1]
