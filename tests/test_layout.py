"""The package layout: import layers, no import cycles, file sizes, the pinned public API.

Layers (a module may import only from its own or a lower layer):
0 ``jaxmix._*`` utilities < 1 ``protocol`` < 2 ``mixtures``, ``clustering`` < 3 ``inference``
< 4 ``spectral``, ``vae`` < 5 ``persistence``, ``demo`` < 6 ``sklearn``, ``cli``, ``__main__``, ``jaxmix`` itself.
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxmix"
MAX_LINES = 400
LAYERS = {"protocol": 1, "mixtures": 2, "clustering": 2, "inference": 3, "spectral": 4, "vae": 4,
          "persistence": 5, "demo": 5, "sklearn": 6, "cli": 6, "__main__": 6}
SEPARATE = [("jaxmix.mixtures", "jaxmix.clustering"), ("jaxmix.spectral", "jaxmix.vae")]


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_module(name):
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _targets(node, importer):
    """The jaxmix modules one import statement names.

    ``from jaxmix.pkg import name`` names ``jaxmix.pkg.name`` when that is a module or package, else
    ``jaxmix.pkg``; relative imports resolve against ``importer``'s package.
    """
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "jaxmix"]
    base = node.module or ""
    if node.level:  # relative: resolve against the importer's package
        package = importer.split(".") if FILES[importer].name == "__init__.py" else importer.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    if base.split(".")[0] != "jaxmix":
        return []
    names = (f"{base}.{a.name}" for a in node.names)
    return list(dict.fromkeys(name if _is_module(name) else base for name in names))


def _imports(module):
    """(imported module, inside a function?, line) for every jaxmix import in ``module``'s file."""
    found = []

    def visit(node, in_function):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.extend((t, in_function, node.lineno) for t in _targets(node, module) if t != module)
        nested = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, nested)

    visit(ast.parse(FILES[module].read_text(), filename=str(FILES[module])), False)
    return found


IMPORTS = {module: _imports(module) for module in FILES}


def _layer(module):
    parts = module.split(".")
    if len(parts) == 1:
        return 6
    return 0 if parts[1].startswith("_") and parts[1] != "__main__" else LAYERS.get(parts[1])


def _where(importer, line):
    return f"{FILES[importer].relative_to(ROOT)}:{line}"


def test_every_module_has_a_layer():
    unassigned = sorted({m for m in FILES} | {t for v in IMPORTS.values() for t, _, _ in v})
    unassigned = [m for m in unassigned if _layer(m) is None]
    assert not unassigned, f"modules outside every layer (add them to LAYERS in this test): {unassigned}"


def test_imports_point_down_the_layers():
    violations = [f"{m} -> {t} (layer {_layer(m)} -> {_layer(t)}) at {_where(m, line)}"
                  for m, found in IMPORTS.items() for t, _, line in found
                  if None not in (_layer(m), _layer(t)) and _layer(t) > _layer(m)]
    message = "imports of a higher layer (move the code down or the import up):\n"
    assert not violations, message + "\n".join(violations)


@pytest.mark.parametrize("a, b", SEPARATE)
def test_sibling_subpackages_do_not_import_each_other(a, b):
    def inside(name, package):
        return name == package or name.startswith(package + ".")

    violations = [f"{m} -> {t} at {_where(m, line)}" for m, found in IMPORTS.items() for t, _, line in found
                  for x, y in ((a, b), (b, a)) if inside(m, x) and inside(t, y)]
    assert not violations, f"{a} and {b} must not import each other:\n" + "\n".join(violations)


def _cycles(graph):
    """The cycles closed by the back edges of a depth-first search: at least one per cyclic group."""
    cycles, done = set(), set()

    def visit(v, path):
        for w in graph.get(v, ()):
            if w in path:
                cycle = path[path.index(w):]
                first = cycle.index(min(cycle))
                cycles.add(tuple(cycle[first:] + cycle[:first]))
            elif w not in done:
                visit(w, path + [w])
        done.add(v)

    for v in sorted(graph):
        if v not in done:
            visit(v, [v])
    return [[*c, c[0]] for c in sorted(cycles)]


@pytest.mark.parametrize("with_function_imports", [False, True], ids=["module-level", "with-in-function"])
def test_no_import_cycles(with_function_imports):
    graph = {m: sorted({t for t, in_function, _ in found if with_function_imports or not in_function})
             for m, found in IMPORTS.items()}
    cycles = "\n".join(" -> ".join(cycle) for cycle in _cycles(graph))
    assert not cycles, f"import cycles (break each by moving the shared code down a layer):\n{cycles}"


def test_no_file_over_the_size_limit():
    sizes = {p.relative_to(ROOT): len(p.read_text().splitlines()) for p in FILES.values()}
    too_long = [f"{p}: {n} lines" for p, n in sorted(sizes.items()) if n > MAX_LINES]
    message = f"files over {MAX_LINES} lines (split them by what they hold):\n"
    assert not too_long, message + "\n".join(too_long)


# The public API as of the layout commit; spectral and vae are pinned at the names their split kept.
PUBLIC = {name: names.split() for name, names in {
    "jaxmix": """CentroidStats ComparisonResult ConvergenceWarning EMResult ExponentialMixture
        ExponentialMixtureParams ExponentialMixtureUnconstrained ExponentialStats Family FitResult
        FuzzyCMeans FuzzyCMeansParams GaussianMixture GaussianMixtureParams GaussianMixtureUnconstrained
        GaussianStats GradientResult KMeans KMeansParams ModelSelection OnlineResult SpectralResult
        StochasticComparison VAE VAEParams combine_stats compare_fits compare_stochastic default_optimizers e_step
        elbo enable_compilation_cache fit fit_em fit_gradient fit_online global_rows indicator_matrix
        initialize knn_affinity laplacian load m_step_gradient normalized_cut protocol ratio_cut rbf_affinity
        save select_components spectral_clustering spectral_embedding vae""",
    "jaxmix.mixtures": """ExponentialMixture ExponentialMixtureParams ExponentialMixtureUnconstrained
        ExponentialStats GaussianMixture GaussianMixtureParams GaussianMixtureUnconstrained GaussianStats
        Mixture""",
    "jaxmix.clustering": "CentroidModel CentroidStats FuzzyCMeans FuzzyCMeansParams KMeans KMeansParams",
    "jaxmix.inference": """ComparisonResult ConvergenceWarning EMResult FitResult GradientResult
        ModelSelection OnlineResult StochasticComparison compare_fits compare_stochastic default_optimizers e_step
        elbo fit fit_em fit_gradient fit_online global_rows initialize m_step_gradient select_components""",
    "jaxmix.protocol": """ColumnFamily Combinable Family FitCheck LogJoint ParameterCount Stepwise ToleranceScale
        Unconstrained combine_stats require""",
    "jaxmix.spectral": """AFFINITIES ALGORITHMS BANDWIDTH_NEIGHBORS DENSE_EIGH_MAX LAPLACIANS METHODS MODES
        SpectralResult default_gamma default_neighbors indicator_matrix knn_affinity laplacian
        normalized_cut predict ratio_cut rbf_affinity spectral_clustering spectral_embedding""",
    "jaxmix.vae": """ACTIVATIONS DECODERS Dense FitHistory PRIOR_COVARIANCES VAE VAEFitResult VAEParams
        cluster decode elbo encode fit gaussian_kl init iwae_bound log_likelihood log_prior mlp_apply
        mlp_init sample""",
    "jaxmix.persistence": "load save",
    "jaxmix.sklearn": "ExponentialMixture FuzzyCMeans GaussianMixture KMeans SpectralClustering",
}.items()}
BEING_SPLIT = {"jaxmix.spectral", "jaxmix.vae"}  # pinned names must stay; __all__ is checked where it exists


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_api_is_pinned(name):
    module, pinned = importlib.import_module(name), PUBLIC[name]
    missing = [n for n in pinned if not hasattr(module, n)]
    assert not missing, f"{name} no longer provides {missing} (re-export them from {name})"
    if name in BEING_SPLIT and not hasattr(module, "__all__"):
        return
    assert hasattr(module, "__all__"), f"{name} defines no __all__; write it as {sorted(pinned)}"
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates: {exported}"
    assert exported == sorted(exported), f"{name}.__all__ is not sorted; write it as {sorted(exported)}"
    assert sorted(exported) == sorted(pinned), (
        f"{name}.__all__ differs from the pin: added {sorted(set(exported) - set(pinned))}, "
        f"removed {sorted(set(pinned) - set(exported))} (an intended API change updates PUBLIC in this test)")


def test_import_jaxmix_does_not_import_sklearn():
    """scikit-learn is optional (``jaxmix[sklearn]``): only ``import jaxmix.sklearn`` imports it."""
    code = "import sys, jaxmix; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == "[]", f"import jaxmix imported scikit-learn modules: {run.stdout.strip()}"
