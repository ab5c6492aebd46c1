"""What a module will import, read from its source with ``ast``; nothing is run.

The master sends these along with the module (from the same top-level
package only), so that an import statement costs one round trip, not one
per module. Source the master's Python cannot parse (2.7-only syntax on a
3.x master) simply gets no prefetch.
"""
import ast


def _package_of(name, is_package):
    return name if is_package else name.rpartition(".")[0]


def _prefixes(dotted):
    parts = dotted.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def imported_names(source, name, is_package):
    """Absolute dotted names ``name``'s source may import, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, TypeError):
        return []
    package = _package_of(name, is_package)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.extend(_prefixes(alias.name))
                if package:  # Python 2's implicit relative import: pkg.alias
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
