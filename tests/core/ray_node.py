"""``ray start`` for the test cluster (tests/core/cluster_kit.py), with Ray's agents in minimal mode.

The full dashboard agent (metrics, its HTTP server) imports so much that on a busy 2-core machine
it misses the raylet's fixed start-up deadline and the node dies; the tests need none of it.
Ray picks minimal mode when ``ray.dashboard.optional_deps`` does not import, so this hides it.
"""

import importlib.abc
import sys


class _HideDashboardDeps(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "ray.dashboard.optional_deps":
            raise ImportError("hidden by tests/core/ray_node.py: minimal agents for the test cluster")
        return None


sys.meta_path.insert(0, _HideDashboardDeps())

from ray.scripts.scripts import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "ray"
    sys.exit(main())
