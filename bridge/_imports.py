"""What a module will import, read from its source with ``ast``; nothing is run.

The master sends these along with the module, so that an import statement
costs one round trip, not one per module. Only statements that run when the
module is imported count: module level, including ``if``/``try``/``with``
blocks and class bodies, but not function bodies (lazy imports stay lazy, so
an optional heavy dependency is not dragged along). Source the master's
Python cannot parse (2.7-only syntax on a 3.x master) gets no prefetch.
"""
import ast


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
    ``implicit_relative``: also Python 2's guesses (``import x`` in package ``p``: ``p.x``)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, TypeError):
        return []
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
    seen = set()
    return [each for each in found if not (each in seen or seen.add(each))]
