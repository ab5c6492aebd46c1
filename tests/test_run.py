"""bridge.remote_exec: a master-only module runs on the slave by name, in its package."""
import bridge
from conftest import write_tree

TOOLS = {
    "tools/__init__.py": "",
    "tools/helpers.py": "def double(x):\n    return 2 * x\n",
    "tools/job.py": '''
        from .helpers import double
        value = channel.receive()
        channel.send([__name__, __package__, double(value)])
        ''',
    "tools/execnet_style.py": '''
        if __name__ == "__channelexec__":
            channel.send("ran as __channelexec__")
        ''',
    "lazy.py": '''
        import sys

        class Lazy(object):
            """Replaces its module in sys.modules, as apipkg does."""
            def __getattr__(self, name):
                return "lazy " + name

        sys.modules[__name__] = Lazy()
        ''',
}


def test_a_module_runs_by_name_with_its_relative_imports(gateway, tmp_path, cache_root):
    entry = write_tree(tmp_path / "master", TOOLS)
    channel = bridge.remote_exec(gateway, "tools.job", path=[entry], cache_root=cache_root)
    channel.send(21)
    assert channel.receive(30) == ["tools.job", "tools", 42]
    channel = bridge.remote_exec(gateway, "tools.execnet_style", run_name="__channelexec__")
    assert channel.receive(30) == "ran as __channelexec__"


def test_a_module_that_replaces_itself_in_sys_modules(gateway, tmp_path, cache_root):
    bridge.install(gateway, path=[write_tree(tmp_path / "master", TOOLS)],
                   cache_root=cache_root)
    channel = gateway.remote_exec("import lazy, sys\nchannel.send([lazy.anything, "
                                  "type(sys.modules['lazy']).__name__])")
    assert channel.receive(30) == ["lazy anything", "Lazy"]
