"""The two commands stay true: the Makefile parses and CI runs what the README says."""
import ast
import functools
import os
import shutil
import subprocess
import sys
import zipfile
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


def test_the_readmes_nginx_example_sets_the_address_the_app_trusts():
    # SENDAUTH_PROXY_FIX_X_FOR=1 trusts the last X-Forwarded-For entry: the proxy must write it,
    # or a client's own header picks the address its sign-in attempts are counted under.
    readme = (ROOT / "README.md").read_text()
    nginx = readme.split("```nginx", 1)[1].split("```", 1)[0]
    blocks = nginx.split("location ")[1:]
    assert blocks
    for block in blocks:
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in block, block


def test_ci_lints_before_it_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make lint" in ci and ci.index("make lint") < ci.index("make test")


SERVE_FROM_THE_WHEEL = """
import sys
from sendauth_dashboard import create_app

app = create_app({"TESTING": True, "SECRET_KEY": "wheel test",
                  "SQLALCHEMY_DATABASE_URI": "sqlite://", "DISPATCHER": "off"})
assert app.template_folder.startswith(sys.argv[1]), app.template_folder
with app.app_context():  # the sign-in page reads whether single sign-on is set up
    from sendauth_dashboard.extensions import db
    db.create_all()
client = app.test_client()
login = client.get("/login")
assert login.status_code == 200 and "Sign in" in login.text, login.status_code
assert client.get("/static/css/app.css").status_code == 200
print("served")
"""


def test_a_wheel_built_from_the_repository_serves_pages(tmp_path):
    """A wheel has no repository around it: its templates and static files are inside it."""
    # Built from a copy: a build/ folder left in the repository would be reused otherwise.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "instance", "*.egg-info", "__pycache__", ".*cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("sendauth_dashboard-*.whl")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    # -S: no site-packages hooks, so the repository's editable install cannot answer instead;
    # the dependencies come from this environment's site-packages, after the wheel.
    dependencies = [p for p in sys.path if p.endswith("site-packages")]
    result = subprocess.run(
        [sys.executable, "-S", "-c", SERVE_FROM_THE_WHEEL, str(unpacked)], cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(unpacked), *dependencies]),
             "SENDAUTH_INSTANCE_PATH": str(tmp_path / "instance")},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "served" in result.stdout, result.stderr[-2000:]


# What imports what, by folder. The floor (core/) and what it stands on import nothing above
# them; channels/ imports no service; services import no page, API or app plumbing. A module
# may import its own layer and those below it, never one above.
LAYERS = (
    ("plumbing below everything", ("config", "extensions", "runtime")),
    ("models", ("models",)),
    ("the floor", ("core",)),
    ("channels", ("channels",)),
    ("services", ("services",)),
)
TOP_LAYER = "pages, the API, the CLI and the app's plumbing"
PACKAGE = "sendauth_dashboard"
IMPORT_ROOTS = (PACKAGE, "bench", "tests")


def layer_of(module):
    """The index and name of ``module``'s layer (a module of the package, by dotted name)."""
    first = module.split(".")[1] if module.count(".") else ""
    for index, (name, folders) in enumerate(LAYERS):
        if first in folders:
            return index, name
    return len(LAYERS), TOP_LAYER


def _module_imports(path, root):
    """The dotted name of the module at ``path`` and the modules (of the package, bench and
    tests) it imports, anywhere in it."""
    module = ".".join(path.relative_to(root).with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module[: -len(".__init__")]
        package = module
    else:
        package = module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] in IMPORT_ROOTS:
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in IMPORT_ROOTS)
    return module, found


@functools.cache
def import_graph(root=ROOT):
    """{module: the modules it imports}, for every module of the package (migrations left
    out), bench and tests. A package's own ``__init__`` importing its modules (a blueprint's
    views registering themselves) is not an arrow."""
    paths = [p for top in IMPORT_ROOTS for p in (root / top).rglob("*.py")
             if "migrations" not in p.parts]
    graph = dict(_module_imports(p, root) for p in paths)
    return {m: {d for d in deps if d in graph and d != m and not d.startswith(m + ".")}
            for m, deps in graph.items()}


def cycles_in(graph):
    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    return sorted(m for m in graph if reaches(m, m, set()))


def arrows_up(graph):
    """Imports of the package that point from a lower layer to a higher one."""
    found = []
    for module, deps in sorted(graph.items()):
        if not module.startswith(PACKAGE + ".") or module == PACKAGE:
            continue
        here, here_name = layer_of(module)
        for dep in sorted(deps):
            there, there_name = layer_of(dep)
            if dep.startswith(PACKAGE + ".") and there > here:
                found.append(f"{module} ({here_name}) imports {dep} ({there_name})")
    return found


def test_the_code_has_no_import_cycle():
    """No circle anywhere in the tree: the package, the benchmarks and the tests."""
    assert cycles_in(import_graph()) == []


def test_imports_point_down_the_layers():
    """Pages → services → channels → the floor → models: no arrow runs back up."""
    assert arrows_up(import_graph()) == []


def test_the_layer_and_cycle_checks_catch_an_import_added_back(tmp_path):
    """The checks above fail on the faults they are for: a copy of the tree where the floor
    imports a service (an arrow up, and a circle)."""
    for top in IMPORT_ROOTS:
        shutil.copytree(ROOT / top, tmp_path / top,
                        ignore=shutil.ignore_patterns("__pycache__", "results"))
    event_log = tmp_path / PACKAGE / "core" / "event_log.py"
    event_log.write_text(event_log.read_text() + "\nfrom ..services.people import accounts\n")
    channel = tmp_path / PACKAGE / "channels" / "base.py"
    channel.write_text(channel.read_text() + "\nfrom ..services.requests import risks\n")
    graph = import_graph(tmp_path)
    assert f"{PACKAGE}.core.event_log" in cycles_in(graph)
    arrows = arrows_up(graph)
    assert f"{PACKAGE}.channels.base (channels) imports {PACKAGE}.services.requests.risks " \
        "(services)" in arrows
    assert f"{PACKAGE}.core.event_log (the floor) imports {PACKAGE}.services.people.accounts " \
        "(services)" in arrows
    assert {arrow.partition(" (")[0] for arrow in arrows} == {
        f"{PACKAGE}.channels.base", f"{PACKAGE}.core.event_log"}


def _code_map():
    """The README's map of the code: the block under "The code: where things are"."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The code: where things are"):]
    return section.split("```")[1]


def test_the_readmes_code_map_matches_the_tree():
    """Every module and folder of the package is on the map, and every file the map names is
    in the tree: a newcomer reading it finds each rule where it says."""
    code_map = _code_map()
    words = set(code_map.replace("(", " ").replace(")", " ").replace(",", " ").split())
    package = ROOT / PACKAGE
    missing = []
    for path in sorted(package.rglob("*")):
        if "migrations" in path.parts or "__pycache__" in path.parts:
            continue
        if path.is_dir() and f"{path.name}/" not in words:
            missing.append(f"{path.relative_to(ROOT)}/")
        elif path.suffix == ".py" and path.name != "__init__.py" and path.name not in words:
            missing.append(str(path.relative_to(ROOT)))
    names = {p.name for p in package.rglob("*.py")} | {p.name for p in ROOT.glob("*.py")} \
        | {p.name for p in (ROOT / "tests").glob("*.py")}
    stale = sorted(w for w in words if w.endswith(".py") and w not in names)
    assert (missing, stale) == ([], [])


MAX_MODULES_PER_FOLDER = 10
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _package_modules():
    return [p for p in sorted((ROOT / PACKAGE).rglob("*.py")) if "migrations" not in p.parts]


def test_rooms_stay_small():
    """A newcomer reads a folder, a module and a function whole: at most 10 modules to a
    folder, 400 lines to a module, 60 lines to a function (migrations left out)."""
    crowded = {}
    for path in _package_modules():
        if path.name != "__init__.py":
            crowded.setdefault(str(path.parent.relative_to(ROOT)), []).append(path.name)
    long_modules, long_functions = [], []
    for path in _package_modules():
        source = path.read_text()
        name = str(path.relative_to(ROOT))
        if len(source.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(f"{name}: {len(source.splitlines())} lines")
        long_functions += [
            f"{name}: {node.name}, {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert [f"{folder}: {len(names)} modules" for folder, names in crowded.items()
            if len(names) > MAX_MODULES_PER_FOLDER] == []
    assert long_modules == []
    assert long_functions == []


def test_the_channel_registry_is_what_the_database_accepts():
    from sendauth_dashboard import channels
    from sendauth_dashboard.models import DELIVERY_CHANNELS, User

    assert channels.names() == DELIVERY_CHANNELS
    for name in channels.names():
        assert hasattr(User, f"notify_{name}")
