"""The two commands stay true: the Makefile parses and CI runs what the README says."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_make_knows_run_test_and_serve():
    result = subprocess.run(["make", "-n", "run", "test", "serve"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "flask --app wsgi db upgrade" in result.stdout
    assert "pytest" in result.stdout and "gunicorn -c gunicorn.conf.py wsgi:app" in result.stdout


def test_ci_runs_the_test_command_the_readme_gives():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
