"""Whatever arrives on the request channel, the master answers and keeps serving."""
import hashlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge._locate import SearchPath
from bridge._policy import Policy
from bridge._responder import Responder, Stats
from bridge.compat import protocol
from conftest import write_tree

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
# Names built from the pieces path tricks are made of.
name_parts = st.sampled_from(["..", ".", "/", "\\", "\0", "secret", "good", "pkg", "etc",
                              "passwd", "a" * 300, "", " ", "~", "%2e", u"\u00e9"])
tricky_names = st.lists(name_parts, min_size=1, max_size=6).map("".join)
requests = st.one_of(
    plain,
    st.fixed_dictionaries({"kind": st.sampled_from(protocol.KINDS + ("bogus",)),
                           "id": st.one_of(st.integers(), st.text(), st.none()),
                           "name": st.one_of(tricky_names, plain)}),
    st.builds(lambda name: protocol.message(protocol.FIND, id=1, name=name), tricky_names),
)


def make_responder(base):
    served = write_tree(os.path.join(base, "served"),
                        {"good.py": "X = 1\n", "pkg/__init__.py": "", "pkg/data.txt": "d\n"})
    secret = write_tree(os.path.join(base, "secret"), {"passwd.py": "SECRET = 1\n"})
    if not os.path.exists(os.path.join(served, "secret")):
        os.symlink(secret, os.path.join(served, "secret"))
    return Responder(SearchPath([served]), {"version": [3, 11, 0]}, Stats(),
                     policy=Policy()), served


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=requests)
def test_every_request_gets_one_reply_and_nothing_leaves_the_path(tmp_path_factory, msg):
    responder, served = make_responder(str(tmp_path_factory.getbasetemp()))
    reply = responder.reply(msg)
    assert protocol.kind_of(reply) in protocol.REPLY_KINDS
    if protocol.kind_of(reply) == protocol.MODULE:
        for record in reply[protocol.MODULES]:
            for path, sha, data in record[protocol.FILES]:
                assert protocol.relative_path_problem(path) is None
                real = os.path.realpath(os.path.join(served, path))
                assert real.startswith(os.path.realpath(served) + os.sep)
                assert data is None or hashlib.sha256(data).hexdigest() == sha
    good = responder.reply(protocol.message(protocol.FIND, id=5, name="good"))
    assert protocol.kind_of(good) == protocol.MODULE and good["id"] == 5
