"""``jaxmix.enable_compilation_cache``: a second process loads the first one's programs instead of compiling.

Each process runs in a subprocess under a deadline (the cache is process-wide state, so the test process
itself never turns it on).
"""

import os
import subprocess
import sys

SCRIPT = """
import os, sys
import jax, jaxmix
folder = jaxmix.enable_compilation_cache(sys.argv[1])
x = jax.random.normal(jax.random.key(0), (300, 3))
jaxmix.fit(jax.random.key(1), jaxmix.KMeans(3), x, n_init=2).params.centers.block_until_ready()
print(folder, len(os.listdir(folder)))
"""


def run(folder, env=None):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], capture_output=True, text=True,
                          timeout=240, env=env)
    assert done.returncode == 0, done.stderr
    path, count = done.stdout.split()
    return path, int(count)


def test_a_second_process_reuses_the_first_ones_programs(tmp_path):
    folder = tmp_path / "cache"
    path, written = run(folder)
    assert path == str(folder) and written >= 2  # every program kept, the fast ones too
    files = {name: os.path.getmtime(folder / name) for name in os.listdir(folder)}
    assert run(folder) == (path, written)  # nothing compiled again
    assert {name: os.path.getmtime(folder / name) for name in os.listdir(folder)} == files


def test_the_default_folder_is_under_the_users_cache(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", "import jaxmix; print(jaxmix.enable_compilation_cache())"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "jaxmix" / "compilation")
