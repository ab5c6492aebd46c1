"""A test suite on pytest-xdist workers that are bare and bridged, against local
workers that have the packages installed (issue 9, target 6).

    python benchmarks/xdist_suite.py --site DIR [--python PATH] [--workers 2] [--runs 3]

Run it with a Python that has pytest, pytest-xdist and execnet-bridge
installed (ci/bench.sh makes .venv-bench-xdist: xdist brings execnet 2, which
starts these 3.x workers). It writes a suite of 40 tests that import pieces of
requests, jinja2, docutils and sympy, then times whole pytest runs, wall
clock, from start to exit:

- local: ``-n WORKERS``, workers of this Python with DIR on their path (PYTHONPATH);
- bridged cold: ``-p bridge.xdist --tx WORKERS*popen//python=<bare> -E -S``,
  bare workers (a ``venv --without-pip`` of --python) that import pytest,
  xdist and DIR's packages from the controller; their cache (under their
  TMPDIR) empty;
- bridged warm: the same, a new pytest run with the cache of the cold run;
- remote cold and warm (issue 21): the same bare workers, each in a private mount namespace
  (``unshare -m``, root only) where the suite's folder is empty, as on a host that never
  saw the project: the project travels too (the bridged rows keep it home with
  ``-o bridge_project=false``, their workers see it).

- far (issue 21): FAR workers that each take REACH seconds to start (a wrapper that sleeps,
  as an ssh connection would), local against bridged warm: xdist makes its gateways one
  after another, the bridge's plugin makes and sets them up at once.

Every run must pass all 40 tests. Seconds are medians of N runs with their spread
(largest minus smallest); "x" is against local. A cold cache is a new folder,
removed when the benchmark ends (benchmarks/scratch.py: a create right after a
removal costs many times more on this host's disk).
"""
from __future__ import print_function

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import scratch
from imports import bare_venv, median

TESTS = {
    "test_http.py": '''
import pytest


@pytest.mark.parametrize("page", range(4))
def test_prepared_url_carries_the_query(page):
    import requests
    url = requests.Request("GET", "http://example.com/items", params={"page": page}).prepare().url
    assert url == "http://example.com/items?page=%d" % page


def test_basic_auth_sets_the_header():
    from requests.auth import HTTPBasicAuth
    from requests.models import PreparedRequest
    request = PreparedRequest()
    request.prepare(method="GET", url="http://example.com/", auth=HTTPBasicAuth("a", "b"))
    assert request.headers["Authorization"].startswith("Basic ")


def test_headers_ignore_case():
    from requests.structures import CaseInsensitiveDict
    assert CaseInsensitiveDict({"Content-Type": "text/plain"})["content-type"] == "text/plain"


def test_cookie_jar_holds_a_cookie():
    from requests.cookies import RequestsCookieJar
    jar = RequestsCookieJar()
    jar.set("session", "abc", domain="example.com")
    assert jar.get("session") == "abc"


def test_json_body_is_encoded():
    import requests
    request = requests.Request("POST", "http://example.com/", json={"a": 1}).prepare()
    assert request.body in (b'{"a": 1}', '{"a": 1}')


def test_status_codes_have_names():
    from requests import codes
    assert codes.ok == 200 and codes.not_found == 404


def test_url_quoting():
    from requests.utils import requote_uri
    assert requote_uri("http://example.com/a b") == "http://example.com/a%20b"
''',
    "test_templates.py": '''
import pytest


@pytest.mark.parametrize("count", range(4))
def test_loop_renders_every_item(count):
    import jinja2
    template = jinja2.Environment().from_string("{% for i in items %}{{ i }},{% endfor %}")
    assert template.render(items=range(count)) == "".join("%d," % i for i in range(count))


def test_autoescape():
    from jinja2 import Environment
    assert Environment(autoescape=True).from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_filters():
    from jinja2 import Environment
    assert Environment().from_string("{{ 'abc'|upper|reverse }}").render() == "CBA"


def test_macro():
    from jinja2 import Environment
    source = "{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}{{ twice('ab') }}"
    assert Environment().from_string(source).render() == "abab"


def test_undefined_is_strict_when_asked():
    from jinja2 import Environment, StrictUndefined, UndefinedError
    with pytest.raises(UndefinedError):
        Environment(undefined=StrictUndefined).from_string("{{ missing }}").render()


def test_sandbox_hides_private_attributes():
    from jinja2.sandbox import SandboxedEnvironment
    assert SandboxedEnvironment().from_string("{{ f.__globals__ }}").render(f=len) == ""


def test_dict_loader():
    from jinja2 import DictLoader, Environment
    environment = Environment(loader=DictLoader({"page": "Hello {{ name }}"}))
    assert environment.get_template("page").render(name="you") == "Hello you"
''',
    "test_documents.py": '''
import pytest


@pytest.mark.parametrize("level", range(1, 5))
def test_title_becomes_a_section(level):
    from docutils.core import publish_doctree
    tree = publish_doctree("Title %d\\n=======\\n\\ntext\\n" % level)
    assert tree.astext().startswith("Title %d" % level)


def test_html_writer():
    from docutils.core import publish_string
    html = publish_string("*emphasis*", writer="html").decode("utf-8")
    assert "<em>emphasis</em>" in html


def test_parts():
    from docutils.core import publish_parts
    assert "strong" in publish_parts("**bold**", writer="html")["body"]


def test_bullet_list():
    from docutils import nodes
    from docutils.core import publish_doctree
    tree = publish_doctree("- a\\n- b\\n")
    assert len(list(tree.findall(nodes.list_item))) == 2


def test_literal_block():
    from docutils import nodes
    from docutils.core import publish_doctree
    tree = publish_doctree("code::\\n\\n    x = 1\\n")
    assert list(tree.findall(nodes.literal_block))


def test_table():
    from docutils import nodes
    from docutils.core import publish_doctree
    tree = publish_doctree("=== ===\\n a   b\\n=== ===\\n")
    assert list(tree.findall(nodes.table))


def test_bad_markup_is_reported():
    from docutils.core import publish_doctree
    tree = publish_doctree("`unclosed", settings_overrides={"report_level": 5})
    assert "unclosed" in tree.astext()
''',
    "test_algebra.py": '''
import pytest


@pytest.mark.parametrize("power", range(1, 5))
def test_derivative_of_a_power(power):
    from sympy import Symbol, diff
    x = Symbol("x")
    assert diff(x ** power, x) == power * x ** (power - 1)


def test_integral():
    from sympy import Symbol, integrate
    x = Symbol("x")
    assert integrate(2 * x, x) == x ** 2


def test_solve_a_quadratic():
    from sympy import Symbol, solve
    x = Symbol("x")
    assert sorted(solve(x ** 2 - 4, x)) == [-2, 2]


def test_matrix_determinant():
    from sympy import Matrix
    assert Matrix([[1, 2], [3, 4]]).det() == -2


def test_factor():
    from sympy import Symbol, factor
    x = Symbol("x")
    assert factor(x ** 2 - 1) == (x - 1) * (x + 1)


def test_limit():
    from sympy import Symbol, limit, sin
    x = Symbol("x")
    assert limit(sin(x) / x, x, 0) == 1


def test_rational_arithmetic():
    from sympy import Rational
    assert Rational(1, 3) + Rational(1, 6) == Rational(1, 2)
''',
}
TEST_COUNT = 40


def write_suite(folder):
    for name, source in TESTS.items():
        with open(os.path.join(folder, name), "w") as stream:
            stream.write(source)


def pytest_run(suite, arguments, environment):
    """Wall seconds of one pytest run, which must pass every test."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + arguments
    started = time.perf_counter()
    process = subprocess.run(command, cwd=suite, env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=900)
    seconds = time.perf_counter() - started
    output = process.stdout.decode("utf-8", "replace")
    if process.returncode != 0 or "%d passed" % TEST_COUNT not in output:
        raise RuntimeError("pytest %s failed:\n%s" % (" ".join(arguments), output[-3000:]))
    return seconds


HIDING_WORKER = """#!/bin/sh
exec unshare -m sh -c 'mount -t tmpfs none "$0" && cd "$0" && exec "$@"' \\
    %(suite)s %(python)s -E -S "$@"
"""


def hiding_worker(python, suite, folder):
    """A worker executable that sees an empty folder where ``suite`` is, or None (not
    root, or no unshare)."""
    if os.geteuid() != 0:
        return None
    path = os.path.join(folder, "remote-worker.sh")
    with open(path, "w") as stream:
        stream.write(HIDING_WORKER % dict(suite=suite, python=python))
    os.chmod(path, 0o755)
    probe = subprocess.run([path, "-c", "import os, sys; sys.exit(len(os.listdir('.')))"])
    return path if probe.returncode == 0 else None


FAR_WORKER = """#!/bin/sh
sleep %(reach)s
exec %(python)s %(flags)s "$@"
"""


def far_worker(python, flags, reach, folder, name):
    """A worker executable that starts ``python`` after ``reach`` seconds."""
    path = os.path.join(folder, name)
    with open(path, "w") as stream:
        stream.write(FAR_WORKER % dict(reach=reach, python=python, flags=flags))
    os.chmod(path, 0o755)
    return path


def environments(site, cache):
    """(local workers' environment, bridged workers'): the site on the controller's
    path either way; bare workers ignore PYTHONPATH (-E) and keep their cache in TMPDIR."""
    base = dict(os.environ)
    base.pop("PYTHONPATH", None)
    local = dict(base, PYTHONPATH=site)
    return local, dict(local, TMPDIR=cache)


def measure_far(python, site, suite, workers, runs, reach, folder):
    """Local and bridged warm workers that each take ``reach`` seconds to start."""
    local = far_worker(sys.executable, "", reach, folder, "far-local.sh")
    bare = far_worker(python, "-E -S", reach, folder, "far-bare.sh")
    local_args = ["--dist", "load", "--tx", "%d*popen//python=%s" % (workers, local)]
    bridged_args = ["-p", "bridge.xdist", "-o", "bridge_project=false", "--dist", "load",
                    "--tx", "%d*popen//python=%s" % (workers, bare)]
    rows = {"far local": [], "far warm": []}
    local_environment, bridged = environments(site, scratch.folder("bench-xdist-"))
    pytest_run(suite, bridged_args, bridged)  # the cache filled: the rows are warm
    for _ in range(runs):
        rows["far local"].append(pytest_run(suite, local_args, local_environment))
        rows["far warm"].append(pytest_run(suite, bridged_args, bridged))
    return medians_and_spreads(rows)


def measure(python, site, suite, workers, runs, remote):
    local_args = ["-n", str(workers)]
    bridged_args = ["-p", "bridge.xdist", "-o", "bridge_project=false", "--dist", "load",
                    "--tx", "%d*popen//python=%s -E -S" % (workers, python)]
    remote_args = ["-p", "bridge.xdist", "--dist", "load", "--tx",
                   "%d*popen//python=%s" % (workers, remote)]
    rows = {"local": [], "cold": [], "warm": [], "remote cold": [], "remote warm": []}
    primer = tempfile.mkdtemp(prefix="bench-xdist-")
    try:
        pytest_run(suite, local_args, environments(site, primer)[0])  # .pyc written
    finally:
        shutil.rmtree(primer, ignore_errors=True)
    for _ in range(runs):
        local, bridged = environments(site, scratch.folder("bench-xdist-"))
        rows["local"].append(pytest_run(suite, local_args, local))
        rows["cold"].append(pytest_run(suite, bridged_args, bridged))
        rows["warm"].append(pytest_run(suite, bridged_args, bridged))
        if remote is None:
            continue
        remote_environment = environments(site, scratch.folder("bench-xdist-"))[1]
        for kind in ("remote cold", "remote warm"):
            rows[kind].append(pytest_run(suite, remote_args, remote_environment))
    return medians_and_spreads(rows)


def medians_and_spreads(rows):
    """{kind: (median seconds, largest minus smallest)} of the kinds that ran."""
    return dict((kind, (median(values), max(values) - min(values)))
                for kind, values in rows.items() if values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="requests, jinja2, docutils, sympy")
    parser.add_argument("--python", default=sys.executable, help="the workers' interpreter")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--far", type=int, default=4, help="workers in the far rows (0: none)")
    parser.add_argument("--reach", type=float, default=0.3, help="seconds a far one takes")
    args = parser.parse_args()
    python = bare_venv(args.python)
    suite = tempfile.mkdtemp(prefix="bench-xdist-suite-")
    scripts = tempfile.mkdtemp(prefix="bench-xdist-workers-")
    try:
        write_suite(suite)
        remote = hiding_worker(python, suite, scripts)
        row = measure(python, args.site, suite, args.workers, args.runs, remote)
        far = measure_far(python, args.site, suite, args.far, args.runs, args.reach,
                          scripts) if args.far else {}
    finally:
        shutil.rmtree(suite, ignore_errors=True)
        shutil.rmtree(scripts, ignore_errors=True)
    print("pytest-xdist: %d tests on %d workers, whole runs, wall seconds, medians of %d; "
          "bridged workers: bare %s" % (TEST_COUNT, args.workers, args.runs, python))
    print("%-34s %8s %7s %7s" % ("workers", "seconds", "x", "spread"))
    for kind, label in (("local", "local (packages on their path)"),
                        ("cold", "bridged, bare, cold cache"), ("warm", "bridged, bare, warm"),
                        ("remote cold", "remote (no project), cold cache"),
                        ("remote warm", "remote (no project), warm")):
        if kind not in row:
            print("%-34s %8s  (a private mount namespace needs root)" % (label, "n/a"))
            continue
        seconds, spread = row[kind]
        print("%-34s %8.3f %6.2fx %7.3f" % (label, seconds, seconds / row["local"][0], spread))
    if far:
        print("%d workers that each take %.1f s to start (as over ssh), x against such local "
              "ones:" % (args.far, args.reach))
        for kind, label in (("far local", "local, far"), ("far warm", "bridged, bare, warm, far")):
            seconds, spread = far[kind]
            print("%-34s %8.3f %6.2fx %7.3f" % (label, seconds, seconds / far["far local"][0],
                                                spread))
    return 0


if __name__ == "__main__":
    sys.exit(main())
