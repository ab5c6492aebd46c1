"""What a module will import, read from its source with ``ast``; nothing is run.

The master sends these along with the module, so that an import statement
costs one round trip, not one per module. Only statements that run when the
module is imported count: module level, including ``if``/``try``/``with``
blocks and class bodies, but not function bodies (lazy imports stay lazy, so
an optional heavy dependency is not dragged along). Source the master's
Python cannot parse (2.7-only syntax on a 3.x master, 3.12 syntax on a 3.6 master)
gets no prefetch, and no master keeps that as what it imports (``Planner``).
"""
import ast

import six


def _package_of(name, is_package):
    return name if is_package else name.rpartition(".")[0]


def _prefixes(dotted):
    parts = dotted.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


LAZY = (ast.FunctionDef, ast.Lambda) + ((ast.AsyncFunctionDef,) if hasattr(
    ast, "AsyncFunctionDef") else ())


def _run_at_import(tree):
    """Every node executed by importing the module: not inside a function."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        pending.extend(child for child in ast.iter_child_nodes(node)
                       if not isinstance(child, LAZY))


def imported_names(source, name, is_package, implicit_relative=True):
    """Absolute dotted names ``name``'s source may import, in source order;
    ``implicit_relative``: also Python 2's guesses (``import x`` in package ``p``: ``p.x``).
    None where this Python cannot parse the source: unknown, not "nothing"."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, TypeError):
        return None
    package = _package_of(name, is_package)
    found = []
    for node in _run_at_import(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.extend(_prefixes(alias.name))
                if package and implicit_relative:  # Python 2's implicit relative import
                    found.append(package + "." + alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                base = ".".join(part for part in (base, node.module or "") if part)
            else:
                base = node.module or ""
            if not base:
                continue
            found.extend(_prefixes(base))
            found.extend(base + "." + alias.name for alias in node.names if alias.name != "*")
    found.extend(dynamic_imports(tree))
    seen = set()
    return [each for each in found if not (each in seen or seen.add(each))]


IMPORT_FUNCTIONS = ("__import__", "import_module")


def _string(node):
    """The text of a string literal node, or None. By the node's class name: ``ast.Str``
    (before 3.8) and its ``.s`` warn when touched on 3.12+, where literals are Constant."""
    kind = type(node).__name__
    value = node.value if kind == "Constant" else node.s if kind == "Str" else None
    return value if isinstance(value, six.string_types) else None


def _imported_by_call(node):
    """The argument node of ``__import__(x)`` / ``importlib.import_module(x)``, or None."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    function = node.func
    name = getattr(function, "id", None) or getattr(function, "attr", None)
    return node.args[0] if name in IMPORT_FUNCTIONS else None


def dynamic_imports(tree):
    """Names imported at import time by a call with a literal name, or with a loop
    variable over literal names (``for p in ("urllib3", "idna"): __import__(p)``)."""
    found = []
    for node in _run_at_import(tree):
        argument = _imported_by_call(node)
        if argument is not None and _string(argument) and not _string(argument).startswith("."):
            found.extend(_prefixes(_string(argument)))
        if not (isinstance(node, ast.For) and isinstance(node.target, ast.Name)
                and isinstance(node.iter, (ast.Tuple, ast.List))):
            continue
        names = [_string(item) for item in node.iter.elts]
        if not names or None in names:
            continue
        for inner in _run_at_import(ast.Module(body=node.body)):
            argument = _imported_by_call(inner)
            if isinstance(argument, ast.Name) and argument.id == node.target.id:
                for name in names:
                    if not name.startswith("."):
                        found.extend(_prefixes(name))
    return found
