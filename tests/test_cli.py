"""The ``jaxmix`` command line and the ``jaxmix demo`` report it writes."""

import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxmix import cli, demo
from jaxmix.demo import comparison, model_selection

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED_HEADINGS = [
    "# jaxmix demo",
    "## 1. A Gaussian mixture in 2-D: samples",
    "## 2. Its log-density",
    "## 3. Posterior responsibilities and the ELBO",
    "## 4. A mixture of exponentials",
    "## 5. Fitting a Gaussian mixture by EM",
    "## 6. k-means and fuzzy c-means",
    "## 7. Choosing K with BIC",
    "## 8. EM against gradient ascent on the ELBO",
    "## 9. Spectral clustering: two moons",
    "## 10. A variational autoencoder on the digits",
    "## 11. Online EM against minibatch gradient ascent",
]
EXPECTED_IMAGES = [
    "gmm_samples.png",
    "gmm_log_density.png",
    "gmm_responsibilities.png",
    "exponential_mixture.png",
    "gmm_em_fit.png",
    "kmeans_fuzzy.png",
    "bic_selection.png",
    "em_vs_gradient.png",
    "spectral_moons.png",
    "vae_digits.png",
    "online_em.png",
]


def run_demo(args, timeout=600):
    """``python -m jaxmix demo ARGS`` in a child under a deadline, with this run's compilation cache;
    its stdout."""
    cache = jax.config.jax_compilation_cache_dir or "none"
    result = subprocess.run([sys.executable, "-m", "jaxmix", "demo", "--compilation-cache", cache, *args],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_demo_writes_report_with_its_figures(tmp_path):
    # One process (0.75 GB, where two section processes and their parent take 1.3 GB beside the other
    # tests); test_section_processes_write_the_same_report_and_figures checks the processes.
    out = run_demo(["--out", str(tmp_path), "--workers", "1"])

    report = (tmp_path / "report.md").read_text()
    headings = [line for line in report.splitlines() if line.startswith("#")]
    assert headings == EXPECTED_HEADINGS
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", report)
    assert images == EXPECTED_IMAGES
    assert len(demo.SECTIONS) == len(EXPECTED_HEADINGS) - 1
    for name in images:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, name

    # The ELBO table: equal to the score at the posterior, lower at a uniform q.
    rows = re.findall(r"^\| (.+?) \| (-?\d+\.\d+) \|$", report, re.MULTILINE)
    value = {label: float(number) for label, number in rows}
    score = value["score = (1/N) sum_i log p(x_i)"]
    assert value["ELBO at q = posterior"] == pytest.approx(score, abs=1e-4)
    assert value["ELBO at q = uniform (1/3 each)"] < score - 1.0

    # Section 5: EM converged; its history is plotted without the NaN padding.
    assert re.search(r"n_iter = \d+ iterations and converged = True", report)
    # Section 7: select_components' table, one row per candidate, the lowest BIC marked once.
    candidates = [(k, cov) for k in model_selection.SELECTION_K for cov in model_selection.SELECTION_COVARIANCES]
    table = re.findall(r"^\| (\d+) \| (\w+) \| (-?\d+\.\d+) \| (-?\d+\.\d) \| (-?\d+\.\d) \| (.*) \|$",
                       report, re.MULTILINE)
    assert [(int(k), cov) for k, cov, *_ in table] == candidates
    bic = [float(row[3]) for row in table]
    assert [row[5] for row in table].count("best BIC") == 1
    assert table[int(np.argmin(bic))][5] == "best BIC"

    # Section 8: compare_fits' table, EM first, then the demo's optimizers; EM reaches the optimum.
    methods = re.findall(r"^\| (\w+) \| (-?\d+\.\d+) \| (-?\d+\.\d+) \| (\d+)/(\d+) \|", report, re.MULTILINE)
    assert [m[0] for m in methods] == ["em", *comparison.OPTIMIZERS]
    assert methods[0][3:] == (str(comparison.N_STARTS), str(comparison.N_STARTS))

    for i in range(1, len(demo.SECTIONS) + 1):
        assert f"[{i}/{len(demo.SECTIONS)}]" in out


LIGHT_SECTIONS = """
import sys
import jax
from jaxmix.demo import report
report.SECTIONS = report.SECTIONS[:4]  # samples, log-density, posterior, exponential: a few seconds
report.run(sys.argv[1], jax.random.key(3), int(sys.argv[2]))
"""


def test_section_processes_write_the_same_report_and_figures(tmp_path):
    """``run(..., workers=2)`` (sections in this process and a spawned one, finishing in any order)
    writes the report and figures of ``workers=1``, byte for byte."""
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / str(workers)
        subprocess.run([sys.executable, "-c", LIGHT_SECTIONS, str(out), str(workers)], check=True, timeout=300,
                       capture_output=True)
        outputs[workers] = {path.name: path.read_bytes() for path in out.iterdir()}
    assert sorted(outputs[1]) == ["exponential_mixture.png", "gmm_log_density.png", "gmm_responsibilities.png",
                                  "gmm_samples.png", "report.md"]
    assert outputs[2] == outputs[1]


FAILING_SECTION = """
import operator
import sys
import jax
from jaxmix.demo import report
# The last section goes to the spawned process; truediv(key, out_dir) raises TypeError there.
report.SECTIONS = [report.SECTIONS[0], ("fails", operator.truediv)]
try:
    report.run(sys.argv[1], jax.random.key(3), 2)
except TypeError as err:
    print("raised:", err)
"""


def test_a_section_failing_in_a_spawned_process_fails_the_run(tmp_path):
    """The spawned process's exception reaches ``run``'s caller, which then exits (no hang: timeout)."""
    done = subprocess.run([sys.executable, "-c", FAILING_SECTION, str(tmp_path)], check=True, timeout=300,
                          capture_output=True, text=True)
    assert "raised: unsupported operand type(s) for /" in done.stdout
    assert not (tmp_path / "report.md").exists()


@pytest.mark.parametrize(
    "argv, out, seed, caches, workers",
    [
        (["demo"], "report", 0, [None], None),
        (["demo", "--out", "elsewhere", "--seed", "7"], "elsewhere", 7, [None], None),
        (["demo", "--seed", str(2**32 - 1), "--compilation-cache", "none"], "report", 2**32 - 1, [], None),
        (["demo", "--compilation-cache", "programs", "--workers", "1"], "report", 0, ["programs"], 1),
        (["demo", "--workers", "3"], "report", 0, [None], 3),
    ],
)
def test_demo_arguments_reach_run(monkeypatch, argv, out, seed, caches, workers):
    """Default workers: the usable cores, at most ``cli.MAX_DEMO_WORKERS``."""
    expected_workers = min(len(os.sched_getaffinity(0)), cli.MAX_DEMO_WORKERS) if workers is None else workers
    calls, enabled = [], []
    monkeypatch.setattr(demo, "run", lambda out_dir, key, workers: calls.append((out_dir, key, workers)))
    monkeypatch.setattr(cli, "enable_compilation_cache", enabled.append)  # the cache is process-wide
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=2")  # the caller's: read last, so they win
    assert cli.main(argv) == 0
    [(out_dir, key, workers)] = calls
    assert out_dir == out and enabled == caches and workers == expected_workers
    assert os.environ["XLA_FLAGS"] == f"{cli.DEMO_XLA_FLAGS} --xla_backend_optimization_level=2"
    np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(jax.random.key(seed)))


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"]])
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out
    if argv[0] == "demo":
        assert "--out" in out and "--seed" in out


def test_missing_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["jaxmix", "jaxmix.cli"])
def test_module_runs_as_a_script(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.startswith("usage: jaxmix ") and "demo" in result.stdout


def no_demo(out_dir, key, workers):
    raise AssertionError("the demo must not start on bad arguments")


def assert_one_line_error(stderr, argument):
    """stderr is one line: ``jaxmix demo: error: <argument> ...`` (no usage, no traceback)."""
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert stderr.startswith(f"jaxmix demo: error: {argument}"), stderr


@pytest.mark.parametrize("seed", [2**70, 2**32, -1])
def test_seed_out_of_range_is_a_one_line_error(monkeypatch, capsys, seed):
    """Seeds outside 0 .. 2**32 - 1 overflowed (2**70: OverflowError traceback) or aliased another seed
    (JAX keeps the low 32 bits: 2**32 gave the key of 0, -1 that of 2**32 - 1)."""
    monkeypatch.setattr(demo, "run", no_demo)
    assert cli.main(["demo", "--seed", str(seed)]) == 2
    assert_one_line_error(capsys.readouterr().err, "--seed")


@pytest.mark.parametrize("workers", [0, -2])
def test_workers_below_one_is_a_one_line_error(monkeypatch, capsys, workers):
    monkeypatch.setattr(demo, "run", no_demo)
    assert cli.main(["demo", "--workers", str(workers)]) == 2
    assert_one_line_error(capsys.readouterr().err, "--workers")


@pytest.mark.parametrize("below", ["", "sub", "sub/deeper"])
def test_out_at_or_below_a_file_is_a_one_line_error(tmp_path, monkeypatch, capsys, below):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    out = os.path.join(a_file, below) if below else str(a_file)
    monkeypatch.setattr(demo, "run", no_demo)
    assert cli.main(["demo", "--out", out]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, "--out")
    assert (f"lies below the file {a_file}" if below else "is a file") in err
    assert a_file.read_text() == "keep me"


def test_out_without_write_permission_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    """os.access stands in for a read-only directory, which root (as in CI containers) could write."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: path != str(tmp_path) and real_access(path, mode))
    monkeypatch.setattr(demo, "run", no_demo)
    for out in (tmp_path, tmp_path / "new" / "report"):
        assert cli.main(["demo", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert_one_line_error(err, "--out")
        assert f"no permission to write into {tmp_path}" in err
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_out_in_a_read_only_directory_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    read_only = tmp_path / "read_only"
    read_only.mkdir(mode=0o555)
    monkeypatch.setattr(demo, "run", no_demo)
    assert cli.main(["demo", "--out", str(read_only / "report")]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out")


def test_os_error_while_writing_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    def full_disk(out_dir, key, workers):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(demo, "run", full_disk)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    expected = f"cannot write the report to {tmp_path}: [Errno 28] No space left on device"
    assert err == f"jaxmix demo: error: {expected}\n"


def test_bad_out_from_the_shell_exits_fast_without_traceback(tmp_path):
    """End to end through ``python -m jaxmix``: a bad --out costs an import, not the ~50 s demo."""
    a_file = tmp_path / "a_file"
    a_file.touch()
    result = subprocess.run([sys.executable, "-m", "jaxmix", "demo", "--out", str(a_file / "report")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "--out")
    assert os.listdir(tmp_path) == ["a_file"]
