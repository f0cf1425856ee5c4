"""The scripts in examples/ run and print what they promise; myproject builds.

Each example runs in a fresh interpreter in an empty folder, as a user would
run it. ``examples/myproject`` is installed with plain ``pip install`` (PEP 517
build isolation) into a new virtual environment, with a persist-kv wheel of
this checkout offered through ``--find-links`` (persist-kv is not on PyPI),
and must then serve its classes with the compiled codecs it built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import python_env

import persist
from persist import codegen

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

HEADER = "go-persist 1\n"

# script -> (its exact output, the exact text of each file it leaves behind)
EXPECTED: dict[str, tuple[str, dict[str, str]]] = {
    "quick_start.py": (
        "User: User(name='Alice Smith', email='alice@example.com', age=28)\n"
        "Total users: 1\n"
        "Key: alice, User: User(name='Alice Smith', email='alice@example.com', "
        "age=29)\n",
        {
            "users.db": HEADER
            + 'S :alice\n{"Name":"Alice Smith","Email":"alice@example.com","Age":28}\n'
            + 'S :alice\n{"Name":"Alice Smith","Email":"alice@example.com","Age":29}\n'
            + "D :alice\n\n"
        },
    ),
    "multiple_maps.py": (
        "users=1 products=1 sessions=1\n",
        {
            "app.db": HEADER
            + 'S users:u1\n{"Name":"Admin","Age":35}\n'
            + 'S products:p1\n{"Name":"Widget","Price":19.99}\n'
            + 'S sessions:sess123\n{"UserID":"u1","Expiration":1718557123}\n'
        },
    ),
    "basic_store.py": (
        "Config: Debug=True, MaxConnections=100\n",
        {
            "app.db": HEADER
            + 'S system_config\n{"Debug":true,"MaxConnections":100}\n'
            + 'S system_config\n{"Debug":true,"MaxConnections":200}\n'
        },
    ),
    "reader.py": (
        "at open: [('ACME', Price(symbol='ACME', cents=1250))]\n"
        "set INIT 990: RefreshResult(records=1, reloaded=False) "
        "[('ACME', Price(symbol='ACME', cents=1250)), "
        "('INIT', Price(symbol='INIT', cents=990))]\n"
        "set ACME 1300: RefreshResult(records=1, reloaded=False) "
        "[('ACME', Price(symbol='ACME', cents=1300)), "
        "('INIT', Price(symbol='INIT', cents=990))]\n"
        "delete INIT: RefreshResult(records=1, reloaded=False) "
        "[('ACME', Price(symbol='ACME', cents=1300))]\n"
        "shrink: RefreshResult(records=1, reloaded=True) "
        "[('ACME', Price(symbol='ACME', cents=1300))]\n"
        "writing here: ReadOnlyError\n",
        {"prices.db": HEADER + 'S :ACME\n{"Symbol":"ACME","Cents":1300}\n'},
    ),
    "session_store.py": (
        "expired: 2\n"
        "logged in: user0 (300 requests), user1 (300 requests), "
        "user2 (300 requests)\n"
        "counters: {'/': 300, '/cart': 300, '/search': 300}\n",
        {},
    ),
    "schema_evolution.py": (
        "ada: ProfileV2(display_name='Ada Lovelace', email='ada@example.com', "
        "verified=False)\n"
        "alan: ProfileV2(display_name='Alan Turing', email='alan@example.com', "
        "verified=False)\n"
        + HEADER
        + 'S :ada\n{"fullname":"Ada Lovelace","email":"ada@example.com",'
        '"nickname":"ada"}\n'
        'S :alan\n{"fullname":"Alan Turing","email":"alan@example.com",'
        '"nickname":"prof"}\n'
        'S :grace\n{"fullname":"Grace Hopper","email":"grace@example.com",'
        '"verified":true}\n',
        {},
    ),
}


def run(
    command: Sequence[object], cwd: Path, timeout: float, env: dict[str, str]
) -> str:
    """Run ``command`` in ``cwd``; return its output, failing the test on exit != 0."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


# scripts that take a Redis URL: run against the test server
REDIS_EXPECTED = {
    "redis_counters.py": "/: 400 views\n/about: 400 views\n/pricing: 400 views\n",
}


def test_every_example_script_is_checked() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(
        [*EXPECTED, *REDIS_EXPECTED]
    )


@pytest.mark.parametrize("script", sorted(REDIS_EXPECTED))
def test_redis_example_prints_what_it_promises(
    script: str, tmp_path: Path, redis_url: str
) -> None:
    command = [sys.executable, "-P", EXAMPLES / script, redis_url]
    assert run(command, tmp_path, 300, python_env()) == REDIS_EXPECTED[script]
    assert list(tmp_path.iterdir()) == []  # nothing on disk: it all lives in Redis


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_prints_and_writes_what_it_promises(
    script: str, tmp_path: Path
) -> None:
    output, files = EXPECTED[script]
    command = [sys.executable, "-P", EXAMPLES / script]
    assert run(command, tmp_path, 120, python_env()) == output
    for name, text in files.items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("name", "fence"),
    [("pyproject.toml", "toml"), ("setup.py", "python"), (".gitignore", "gitignore")],
)
def test_readme_shows_myproject_as_it_is(name: str, fence: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    text = (EXAMPLES / "myproject" / name).read_text(encoding="utf-8")
    assert f"```{fence}\n# {name}\n{text}```\n" in readme


@pytest.mark.parametrize("root", [".", "src"])
def test_cythonize_schemas_imports_from_the_project_root(
    root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As under PEP 517: setup.py's folder is the current directory, not on sys.path.
    package = tmp_path / root / "rootpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "schemas.py").write_text(
        "import attrs\n\n@attrs.frozen\nclass Point:\n    x: int\n    y: int\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "rootpkg", raising=False)
    monkeypatch.delitem(sys.modules, "rootpkg.schemas", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # setuptools appends to it

    # Cython finds persist/_cjson.pxd on sys.path, which an editable install
    # of persist is not on: name the folder holding persist.
    persist_parent = str(Path(persist.__file__).parent.parent)
    [extension] = codegen.cythonize_schemas(
        ["rootpkg.schemas"], root=root, include_path=[persist_parent], quiet=True
    )

    assert extension.name == "rootpkg._persist_schemas"
    assert extension.sources == [str(Path(root, "rootpkg", "_persist_schemas.c"))]
    assert (package / "_persist_schemas.pyx").is_file()
    assert str((tmp_path / root).resolve()) not in sys.path
    assert sys.modules["rootpkg.schemas"].__file__ == str(package / "schemas.py")


def test_cythonize_schemas_without_the_module_fails_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModuleNotFoundError, match="nosuchpkg"):
        codegen.cythonize_schemas(["nosuchpkg.schemas"])


@pytest.fixture(scope="session")
def persist_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one persist-kv wheel, built from this checkout."""
    wheels = tmp_path_factory.mktemp("wheels")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
    # The running environment has the build requirements (the test extra):
    # building without isolation reuses it and the checkout's build/ folder.
    command = [*pip_wheel, "--no-build-isolation", "-w", wheels, ROOT]
    run(command, ROOT, 900, python_env())
    assert len(list(wheels.glob("persist_kv-*.whl"))) == 1
    return wheels


def test_myproject_installs_under_build_isolation_with_compiled_codecs(
    persist_wheels: Path, tmp_path: Path
) -> None:
    # A copy: an in-tree build leaves build/, *.c and *.pyx in the project.
    project = shutil.copytree(EXAMPLES / "myproject", tmp_path / "myproject")
    # The new environment sees only what pip installed into it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], tmp_path, 300, env)
    pip_install = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
    run([*pip_install, "--find-links", persist_wheels, project], tmp_path, 900, env)

    output = run([venv / "bin" / "myproject", tmp_path / "b.db"], tmp_path, 120, env)

    assert output == (
        "go: Bookmark(url='https://go.dev', title='Go', tags=['lang', 'go'], "
        "visits=0)\n"
        "py: Bookmark(url='https://python.org', title='Python', tags=['lang'], "
        "visits=1)\n"
        "codec: compiled\n"
    )
    where = "import myproject._persist_schemas as m; print(m.__file__)"
    compiled = run([venv / "bin" / "python", "-P", "-c", where], tmp_path, 120, env)
    assert compiled.startswith(str(venv / "lib"))
    assert compiled.rstrip().endswith(".so")
