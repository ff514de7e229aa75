"""The type stubs declare every name the package exports, the
exceptions with their bases, so a type checker knows what is raised."""

import ast
import inspect
from pathlib import Path

import movie_queue

STUBS = Path(movie_queue.__file__).with_name("__init__.pyi")


def test_every_exported_name_is_in_the_stubs_with_its_bases():
    tree = ast.parse(STUBS.read_text())
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            declared[node.name] = [ast.unparse(base) for base in node.bases]
        elif isinstance(node, (ast.AnnAssign, ast.Assign)):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            declared.update({target.id: None for target in targets if isinstance(target, ast.Name)})
    for name in movie_queue.__all__:
        assert name in declared, name + " is not in the stubs"
        exported = getattr(movie_queue, name)
        if inspect.isclass(exported) and issubclass(exported, BaseException):
            bases = [base.__name__ for base in exported.__bases__]
            assert declared[name] == bases, name
