"""The command line's error lines: one line, exit status 2, no traceback, saying what to do."""
import pytest

from vcl_fast import cli
from vcl_fast.cli import error_message, main


def run_info_as(monkeypatch, func):
    """``main(["info"])`` with the info command's function replaced by ``func``."""
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["info"].set_defaults(func=func)
    return main(["info"])


def test_error_message_forms():
    assert error_message(KeyError("unknown video id 'x'")) == "unknown video id 'x'"
    missing = FileNotFoundError(2, "No such file or directory", "a.csv")
    assert error_message(missing) == "a.csv: No such file or directory"
    assert error_message(OSError("disk on fire")) == "disk on fire"
    assert error_message(ValueError("bad")) == "bad"
    assert error_message(RuntimeError("a library's text\n\n  over lines\n")) == "a library's text over lines"


@pytest.mark.parametrize("module, advice", [
    ("torch", "pip install 'vcl_fast[torch]'"), ("timm.models", "pip install 'vcl_fast[torch]'"),
    ("faiss", "pip install 'vcl_fast[search]'"), ("onnxsim", "pip install 'vcl_fast[export]'"),
    ("left_pad", "install the package that provides 'left_pad'"),
])
def test_a_missing_optional_module_says_what_to_install(monkeypatch, capsys, module, advice):
    def needs_it(args):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    assert run_info_as(monkeypatch, needs_it) == 2
    top = module.partition(".")[0]
    assert capsys.readouterr().err == (f"vcl-fast info: error: this command needs the module {top!r}, which is not "
                                       f"installed: {advice}\n")


@pytest.mark.parametrize("exc, said", [(MemoryError("Unable to allocate 73.0 GiB"), "Unable to allocate 73.0 GiB"),
                                       (MemoryError(), "no details")])
def test_out_of_memory_is_one_line(monkeypatch, capsys, exc, said):
    def runs_out(args):
        raise exc

    assert run_info_as(monkeypatch, runs_out) == 2
    assert capsys.readouterr().err == (f"vcl-fast info: error: out of memory ({said}): a lower --fps, shorter videos "
                                       "or fewer at once need less\n")


def test_warnings_are_one_line(monkeypatch, capsys):
    import warnings

    def warns(args):
        warnings.warn("a.mp4: damaged video data", UserWarning)
        return 0

    assert run_info_as(monkeypatch, warns) == 0
    assert capsys.readouterr().err == "warning: a.mp4: damaged video data\n"


def test_an_unexpected_error_is_one_line_unless_asked_for_the_traceback(monkeypatch, capsys):
    class Surprise(Exception):
        pass

    def fails(args):
        raise Surprise("the unforeseen")

    monkeypatch.delenv("VCL_FAST_TRACEBACK", raising=False)
    assert run_info_as(monkeypatch, fails) == 1
    assert capsys.readouterr().err == ("vcl-fast info: internal error: Surprise: the unforeseen (a bug in vcl_fast, "
                                       "or an input it should have refused; VCL_FAST_TRACEBACK=1 shows where: please "
                                       "report it)\n")
    monkeypatch.setenv("VCL_FAST_TRACEBACK", "1")
    with pytest.raises(Surprise, match="the unforeseen"):
        run_info_as(monkeypatch, fails)


def test_a_missing_module_of_our_own_is_not_hidden(monkeypatch):
    def broken(args):
        raise ModuleNotFoundError("No module named 'vcl_fast.gone'", name="vcl_fast.gone")

    with pytest.raises(ModuleNotFoundError, match="vcl_fast.gone"):
        run_info_as(monkeypatch, broken)


def test_version_and_help_lead_with_localize(capsys):
    from vcl_fast import __version__

    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out == f"vcl-fast {__version__}\n"
    with pytest.raises(SystemExit):
        main(["--help"])
    commands = capsys.readouterr().out.split("  COMMAND\n", 1)[1]
    assert commands.split()[0] == "localize" and "Start with: vcl-fast localize QUERY REFERENCE" in commands
