"""What the master serves: allow/deny rules, size limits, only files inside its path."""
import os

import pytest

import bridge
from bridge._locate import SearchPath
from bridge._policy import Policy
from conftest import remote_value, served_folders, write_tree
from trees import shop_tree

TRY = """
out = []
for name in %r:
    try:
        __import__(name)
        out.append([name, "ok"])
    except ImportError as error:
        out.append([name, str(error)])
channel.send(out)
"""


def attempt(gateway, *names):
    return dict(remote_value(gateway, TRY % (list(names),)))


def test_deny_rules_exact_and_prefix(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root,
                   deny=["shop.cart.*", "standalone"])
    out = attempt(gateway, "shop", "shop.cart", "shop.cart.items", "standalone")
    assert out["shop"] == "ok"
    assert "denied by the master's rule 'shop.cart.*'" in out["shop.cart"]
    assert "denied by the master's rule 'shop.cart.*'" in out["shop.cart.items"]
    assert "denied by the master's rule 'standalone'" in out["standalone"]


def test_allow_list_serves_only_what_it_matches(gateway, tmp_path, cache_root):
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root,
                            allow=["shop.*"], deny=["shop.broken"])
    out = attempt(gateway, "shop.cart", "standalone", "shop.broken")
    assert out["shop.cart"] == "ok"
    assert "not in the master's allow list" in out["standalone"]
    assert "denied by the master's rule 'shop.broken'" in out["shop.broken"]
    assert handle.stats.refused == 2


def test_a_refusal_is_asked_once_and_repeated_with_its_reason(gateway, tmp_path, cache_root):
    """simplejson tries `from ._speedups import ...` in four modules: one round trip."""
    handle = bridge.install(gateway, path=[shop_tree(tmp_path)], cache_root=cache_root,
                            deny=["standalone"])
    first = attempt(gateway, "standalone")["standalone"]
    requests = handle.stats.requests
    again = attempt(gateway, "standalone", "standalone")["standalone"]
    assert "denied by the master's rule 'standalone'" in first
    assert again == first
    assert handle.stats.requests == requests and handle.stats.refused == 1


def test_policy_rules_are_checked_before_any_lookup(tmp_path):
    policy = Policy(allow=["a.*", "b"], deny=["a.secret.*"])
    assert policy.problem("a") is None and policy.problem("a.x.y") is None
    assert policy.problem("b") is None
    assert policy.problem("b.c") == "not in the master's allow list"
    assert policy.problem("ab") == "not in the master's allow list"
    assert "denied" in policy.problem("a.secret") and "denied" in policy.problem("a.secret.k")
    for rule in ("a/b", "../x", "", "a..b", "*"):
        with pytest.raises(ValueError):
            Policy(deny=[rule])


def test_a_reply_over_the_size_limit_is_refused_with_the_numbers(gateway, tmp_path,
                                                                 cache_root):
    entry = write_tree(tmp_path / "sized", {"small.py": "X = 1\n", "large/__init__.py": "",
                                            "large/blob.txt": "x" * 20000})
    bridge.install(gateway, path=[entry], cache_root=cache_root, max_reply_bytes=5000)
    out = attempt(gateway, "small", "large")
    assert out["small"] == "ok"
    assert "'large' is too large to send" in out["large"] and "limit is 5000" in out["large"]


def test_data_that_resolves_outside_the_path_is_never_sent(gateway, tmp_path, cache_root):
    served = write_tree(tmp_path / "served", {"pkg/__init__.py": "", "pkg/ok.txt": "fine\n"})
    secret = write_tree(tmp_path / "secret", {"password.txt": "hunter2\n"})
    os.symlink(os.path.join(secret, "password.txt"), os.path.join(served, "pkg", "leak.txt"))
    os.symlink(secret, os.path.join(served, "pkg", "leakdir"))
    handle = bridge.install(gateway, path=[served], cache_root=cache_root)
    assert remote_value(gateway, """
        import os, pkg
        here = os.path.dirname(pkg.__file__)
        channel.send(sorted(name for name in os.listdir(here) if name != "__pycache__"))
    """) == ["__init__.py", "ok.txt"]
    for holder in served_folders(handle):
        for folder, _, files in os.walk(holder):
            for name in files:
                with open(os.path.join(folder, name), "rb") as stream:
                    assert b"hunter2" not in stream.read()
    assert SearchPath([served]).data_files(SearchPath([served]).locate("pkg")) == ["pkg/ok.txt"]


def test_a_module_left_out_of_a_reply_for_its_size_comes_whole_when_asked(gateway, tmp_path,
                                                                         cache_root):
    """The reply to ``pkg`` has room for ``pkg.a`` but not ``pkg.b`` (max_reply_bytes):
    ``pkg.b``'s bodies were never sent, so its own reply must carry them (one request,
    not a retry for bodies the master wrongly thought the slave held)."""
    entry = write_tree(tmp_path / "budget", {
        "pkg/__init__.py": "from . import a, b\n",
        "pkg/a/__init__.py": "A = 1\n", "pkg/a/data.txt": "a" * 20000,
        "pkg/b/__init__.py": "B = 2\n", "pkg/b/data.txt": "b" * 20000})
    handle = bridge.install(gateway, path=[entry], cache_root=cache_root,
                            max_reply_bytes=30000)
    assert remote_value(gateway, "import pkg; channel.send(pkg.a.A + pkg.b.B)") == 3
    assert handle.stats.requests == 2  # pkg (with pkg.a), then pkg.b
    assert handle.stats.bytes_sent >= 40000


def test_a_body_two_modules_share_counts_once_against_the_limit(gateway, tmp_path,
                                                               cache_root):
    """``pkg.a`` and ``pkg.b`` each carry the same 20 kB data file (numpy's extensions
    share their libraries): the reply to ``pkg`` sends it once, so both fit in a 30 kB
    limit and the import costs one request, where counting it twice left ``pkg.b`` out."""
    entry = write_tree(tmp_path / "shared", {
        "pkg/__init__.py": "from . import a, b\n",
        "pkg/a/__init__.py": "A = 1\n", "pkg/a/data.txt": "s" * 20000,
        "pkg/b/__init__.py": "B = 2\n", "pkg/b/data.txt": "s" * 20000})
    handle = bridge.install(gateway, path=[entry], cache_root=cache_root,
                            max_reply_bytes=30000)
    assert remote_value(gateway, "import pkg; channel.send(pkg.a.A + pkg.b.B)") == 3
    assert handle.stats.requests == 1
    assert 20000 <= handle.stats.bytes_sent < 30000
