"""python -m bridge run / doctor, as a user runs them."""
import sys

from conftest import run_bounded, write_tree

APP = {
    "app/__init__.py": "",
    "app/words.py": "WORD = 'master-only'\n",
    "app/__main__.py": '''
        import sys
        from . import words
        sys.stdout.write("%s %s\\n" % (words.WORD, " ".join(sys.argv[1:])))
        sys.exit(3)
        ''',
    "script.py": '''
        import sys
        sys.stderr.write("to stderr\\n")
        raise ValueError("boom from the script")
        ''',
}


def bridge_cli(tmp_path, *args):
    return run_bounded([sys.executable, "-m", "bridge"] + list(args), tmp_path)


def test_run_a_module_streams_output_and_exit_code(slave_python, tmp_path):
    master = write_tree(tmp_path / "master", APP)
    code, out, err = bridge_cli(tmp_path, "run", "--python", slave_python + " -E -S",
                                "--path", master, "-m", "app", "one", "two")
    assert (code, out) == (3, "master-only one two\n"), err


def test_run_a_script_shows_its_traceback_and_fails(slave_python, tmp_path):
    master = write_tree(tmp_path / "master", APP)
    code, out, err = bridge_cli(tmp_path, "run", "--python", slave_python + " -E -S",
                                "--path", master, master + "/script.py")
    assert code == 1 and out == ""
    assert err.startswith("to stderr\n")
    assert 'raise ValueError("boom from the script")' in err
    assert "ValueError: boom from the script" in err


def test_doctor_prints_both_sides_and_a_verdict_per_distribution(slave_python, tmp_path):
    code, out, err = bridge_cli(tmp_path, "doctor", "--python", slave_python + " -E -S")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("master: ") and "suffixes" in lines[0]
    assert any(line.startswith("slave %s -E -S: " % slave_python) for line in lines)
    verdicts = [line for line in lines if line.startswith("  ")]
    assert any(line.split()[0] == "execnet" and line.endswith("pure") for line in verdicts)
