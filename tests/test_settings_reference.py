"""One source for every setting: the reader's table (config/env.py and apps/*/conf.py), what the
code reads, `.env.example` and docs/settings.md agree, and each default is written once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from config.env import Derived, EnvError, Var, env_value, parse, reference, variables

ROOT = Path(__file__).resolve().parent.parent
# The code a site runs, where every variable must be read through the reader.
RUNTIME_CODE = sorted(
    path
    for path in [*ROOT.glob("config/**/*.py"), *ROOT.glob("apps/**/*.py"), *ROOT.glob("deploy/*.py")]
    if "tests" not in path.relative_to(ROOT).parts and "app_template" not in path.parts
)
# Django's own: the entry points choose their profile before any settings exist.
READ_BEFORE_SETTINGS = {"DJANGO_SETTINGS_MODULE"}
SAMPLES = {
    "str": (" text ", "text"),
    "int": ("7", 7),
    "float": ("2.5", 2.5),
    "bool": ("off", False),
    "list": ("a, b c", ["a", "b", "c"]),
}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]


def _function_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _env_name_arguments(call: ast.Call) -> list[str]:
    """Variable names a call reads: env_value("X"), env.get("X", ...), as_int(env, "X", ...)."""
    names = [_string(argument) for argument in call.args[:2]]
    return [name for name in names if name and re.fullmatch(r"[A-Z][A-Z0-9_]+", name)]


def _name_index(call: ast.Call) -> int:
    """Where the variable's name is: first, or second after the mapping (as_int(env, "X", 30))."""
    return 0 if call.args and _string(call.args[0]) is not None else 1


def _reads_the_environment(call: ast.Call) -> bool:
    if _function_name(call) in {"env_value", "env_is_set", "getenv"}:
        return True
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    is_env_mapping = isinstance(receiver, ast.Name) and receiver.id == "env"
    first_is_env = bool(call.args) and isinstance(call.args[0], ast.Name) and call.args[0].id == "env"
    return is_env_mapping or first_is_env


@pytest.mark.parametrize("var", variables().values(), ids=lambda var: var.name)
def test_the_reader_gives_each_variable_its_declared_default_and_type(var: Var):
    for profile in [None, *var.profiles]:
        default = var.default_for(profile)
        value = env_value(var.name, profile=profile, environ={})
        if isinstance(default, Derived):
            assert (value is None) == (default.compute is None), (var.name, profile)
        else:
            assert value == default, (var.name, profile)
    if var.type == "path":
        assert env_value(var.name, environ={var.name: "~/x"}) == Path.home() / "x"
        return
    raw, parsed = SAMPLES[var.type]
    assert env_value(var.name, environ={var.name: raw}) == parsed
    # An empty value counts as unset.
    assert env_value(var.name, environ={var.name: " "}) == env_value(var.name, environ={})
    if var.type in {"int", "float", "bool"}:
        with pytest.raises(EnvError, match=var.name):
            parse(var, "not-a-value")


def test_the_reference_is_generated_from_the_declarations():
    assert (ROOT / "docs" / "settings.md").read_text() == reference(), "run make settings-doc"


def test_the_reference_lists_every_variable_once_with_its_type():
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (\w+) \|", (ROOT / "docs" / "settings.md").read_text(), re.M)
    assert sorted(name for name, _ in rows) == sorted(variables())
    assert dict(rows) == {name: var.type for name, var in variables().items()}


def test_env_example_sets_only_declared_variables_each_once_with_examples_not_defaults():
    text = (ROOT / ".env.example").read_text()
    assignments = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=(.*)$", text, re.M)
    names = [name for name, _ in assignments]
    assert names, "no variable found in .env.example"
    assert len(names) == len(set(names)), [name for name in names if names.count(name) > 1]
    assert set(names) <= set(variables()), set(names) - set(variables())
    for name, value in assignments:
        var = variables()[name]
        if value.strip():
            defaults = [var.default_for(profile) for profile in [None, *var.profiles]]
            assert parse(var, value) not in defaults, f"{name}: a default belongs in config/env.py only"
    assert "docs/settings.md" in text
    assert len(text.splitlines()) < 100


@pytest.mark.parametrize("path", RUNTIME_CODE, ids=_rel)
def test_every_variable_the_code_reads_is_declared(path: Path):
    read = {
        name for call in _calls(path) if _reads_the_environment(call) for name in _env_name_arguments(call)
    }
    assert read <= set(variables()) | READ_BEFORE_SETTINGS, read - set(variables())


@pytest.mark.parametrize("path", RUNTIME_CODE, ids=_rel)
def test_no_default_is_written_outside_the_reader(path: Path):
    if _rel(path) == "config/env.py":
        return
    second_copies = [
        f"{_rel(path)}:{call.lineno}"
        for call in _calls(path)
        if _reads_the_environment(call)
        and set(_env_name_arguments(call)) - READ_BEFORE_SETTINGS
        and (len(call.args) > _name_index(call) + 1 or any(k.arg == "default" for k in call.keywords))
    ]
    assert not second_copies


@pytest.mark.parametrize("path", RUNTIME_CODE, ids=_rel)
def test_only_the_reader_reads_the_process_environment(path: Path):
    if _rel(path) == "config/env.py":
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _function_name(node) in {"get", "getenv"}:
            func = node.func
            receiver = func.value if isinstance(func, ast.Attribute) else None
            if (isinstance(receiver, ast.Attribute) and receiver.attr == "environ") or _function_name(
                node
            ) == "getenv":
                names = set(_env_name_arguments(node))
                assert names, (
                    f"{_rel(path)}:{node.lineno} reads the environment itself; use config.env.env_value"
                )
                assert names <= READ_BEFORE_SETTINGS, f"{_rel(path)}:{node.lineno}: use config.env.env_value"
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            value = node.value
            if isinstance(value, ast.Attribute) and value.attr == "environ":
                assert _string(node.slice) in READ_BEFORE_SETTINGS, f"{_rel(path)}:{node.lineno}"


def test_every_declared_variable_is_read_somewhere():
    code = "\n".join(
        path.read_text()
        for path in [*RUNTIME_CODE, ROOT / "Makefile", *ROOT.glob("tests/**/*.py")]
        if _rel(path) != "config/env.py"
    )
    external = {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "DJANGO_SUPERUSER_EMAIL",
        "DJANGO_SUPERUSER_PASSWORD",
    }
    unread = [name for name in variables() if name not in external and not re.search(rf"\b{name}\b", code)]
    assert not unread


def test_the_reader_reads_the_env_file_under_the_process_environment(tmp_path, monkeypatch):
    from config import env

    env_file = tmp_path / ".env"
    env_file.write_text("export GUNICORN_THREADS=9\nGUNICORN_TIMEOUT='45'\n# GUNICORN_KEEPALIVE=1\n")
    monkeypatch.setattr(env, "ENV_FILE", env_file)
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    monkeypatch.setenv("GUNICORN_TIMEOUT", "50")
    monkeypatch.delenv("GUNICORN_KEEPALIVE", raising=False)
    assert env_value("GUNICORN_THREADS") == 9
    assert env_value("GUNICORN_TIMEOUT") == 50
    assert env_value("GUNICORN_KEEPALIVE") == variables()["GUNICORN_KEEPALIVE"].default
