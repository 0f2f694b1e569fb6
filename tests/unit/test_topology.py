"""Unit tests of surf_dist.topology: generators, graph files, validation, shift operators, placement,
halo plans, traffic counts and describe(). Small graphs (4 to 16 agents, one of 100), fixed seeds."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from surf_dist.errors import InputError
from surf_dist.graph import (
    NORMALISATIONS,
    PLACEMENTS,
    HaloPlan,
    build_graph,
    describe,
    format_description,
    halo_plan,
    load_graph_file,
    place,
    shift_operator,
    spectral_gap,
    traffic_per_round,
    validate_graph,
)
from surf_dist.plugins import TOPOLOGIES as GENERATORS

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def build_nx(*args, **kwargs) -> nx.Graph:
    """``build_graph`` as an ``nx.Graph``, for checks that networkx makes short."""
    return build_graph(*args, **kwargs).to_networkx()


def load_nx(*args, **kwargs) -> nx.Graph:
    return load_graph_file(*args, **kwargs).to_networkx()


def edge_set(graph: nx.Graph) -> set[tuple[int, int, float]]:
    return {(min(u, v), max(u, v), w) for u, v, w in graph.edges(data="weight")}


def degree_counts(graph: nx.Graph) -> dict[int, int]:
    return dict(Counter(d for _, d in graph.degree()))


def raise_problems(func, *args, **kwargs) -> list[str]:
    with pytest.raises(InputError) as info:
        func(*args, **kwargs)
    return info.value.problems


def relabelled(graph: nx.Graph, seed: int) -> nx.Graph:
    labels = np.random.default_rng(seed).permutation(graph.number_of_nodes())
    out = nx.Graph()
    out.add_nodes_from(range(graph.number_of_nodes()))
    out.add_edges_from((int(labels[u]), int(labels[v]), {"weight": 1.0}) for u, v in graph.edges())
    return out


def cut_size(graph: nx.Graph, placement: list[np.ndarray]) -> int:
    return halo_plan(graph, placement).cut_edges


def two_cliques() -> nx.Graph:
    return load_nx(TOPOLOGIES / "two_cliques.json")


# ----------------------------------------------------------------------------------------------
# Generators
# ----------------------------------------------------------------------------------------------
def test_kregular_paper_mode_matches_paper_degrees():
    """Catches a paper-mode construction that drifts from the paper's 98 agents of degree 3, 2 of degree 2."""
    graph = build_nx("kregular:n=100,degree=3", seed=0)
    assert sorted(graph.nodes) == list(range(100))
    assert degree_counts(graph) == {3: 98, 2: 2}
    assert graph.number_of_edges() == 100 + 49
    assert nx.is_connected(graph)


def test_kregular_paper_mode_without_relabelling_is_ring_plus_chords():
    """Catches wrong chords: before relabelling the edges are the ring plus i <-> i+51 for i < 49."""
    graph = build_nx("kregular:n=100,degree=3,relabel=false", seed=0)
    ring = {(min(i, (i + 1) % 100), max(i, (i + 1) % 100)) for i in range(100)}
    chords = {(i, i + 51) for i in range(49)}
    assert {(u, v) for u, v, _ in edge_set(graph)} == ring | chords


def test_kregular_is_a_pure_function_of_seed_and_index():
    """Catches nondeterminism, and an index that fails to draw a different relabelling of the same graph."""
    spec = "kregular:n=16,degree=3"
    first, again = build_nx(spec, seed=3, index=1), build_nx(spec, seed=3, index=1)
    other_index, other_seed = build_nx(spec, seed=3, index=2), build_nx(spec, seed=4, index=1)
    assert edge_set(first) == edge_set(again)
    assert edge_set(first) != edge_set(other_index)
    assert edge_set(first) != edge_set(other_seed)
    assert nx.is_isomorphic(first, other_index)


def test_spec_hash_is_stable_across_python_hash_seeds():
    """Catches a seed derived from Python's hash(), which changes with PYTHONHASHSEED between processes."""
    code = (
        "from surf_dist.graph import build_graph;"
        "print(sorted(build_graph('kregular:n=12', seed=5, index=2).to_networkx().edges()))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=TOPOLOGIES.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str(sorted(build_nx("kregular:n=12", seed=5, index=2).edges()))


def test_spec_key_order_and_defaults_do_not_change_the_graph():
    """Catches a hash of the raw spec text, so that equal specs written differently give different graphs."""
    assert edge_set(build_nx("random:n=12,p=0.4", seed=1)) == edge_set(build_nx("random:p=0.4, n=12", seed=1))
    assert edge_set(build_nx("kregular:n=12", seed=1)) == edge_set(build_nx("kregular:degree=3,n=12", seed=1))


@pytest.mark.parametrize(
    ("spec", "num_agents", "degrees"),
    [
        ("kregular:n=12,degree=4", 12, {4: 12}),
        ("kregular:n=12,degree=5", 12, {5: 10, 4: 2}),
        ("kregular:n=12,degree=3,mode=random", 12, {3: 12}),
        ("ring:n=16", 16, {2: 16}),
        ("star:n=10", 10, {9: 1, 1: 9}),
        ("torus:rows=4,cols=5", 20, {4: 20}),
        ("complete:n=6", 6, {5: 6}),
        ("small_world:n=16,k=4,p=0.0", 16, {4: 16}),
    ],
)
def test_generator_sizes_and_degrees(spec, num_agents, degrees):
    """Catches a generator with the wrong number of agents or wrong degrees."""
    graph = build_nx(spec, seed=0)
    assert sorted(graph.nodes) == list(range(num_agents))
    assert degree_counts(graph) == degrees
    assert all(w == 1.0 for _, _, w in graph.edges(data="weight"))
    assert nx.number_of_selfloops(graph) == 0


def test_every_generator_is_covered_and_deterministic():
    """Catches a generator name with no implementation, or draws that depend on more than the spec."""
    specs = {
        "kregular": "kregular:n=10",
        "random": "random:n=10,p=0.5",
        "star": "star:n=5",
        "ring": "ring:n=5",
        "torus": "torus:rows=3,cols=3",
        "small_world": "small_world:n=10,k=4,p=0.3",
        "complete": "complete:n=4",
        "directed_ring": "directed_ring:n=5",
        "exponential": "exponential:n=8",
    }
    assert set(specs) == {n for n in GENERATORS.names() if GENERATORS.origin(n).startswith("surf_dist.")}
    for spec in specs.values():
        assert edge_set(build_nx(spec, seed=2, index=7)) == edge_set(build_nx(spec, seed=2, index=7))


def test_star_hub_and_torus_numbering():
    """Catches a star whose hub is not agent 0, and a torus not numbered r*cols + c with periodic wrap."""
    star = build_nx("star:n=6", seed=0)
    assert set(star[0]) == {1, 2, 3, 4, 5}
    torus = build_nx("torus:rows=4,cols=5", seed=0)
    assert set(torus[0]) == {1, 4, 5, 15}
    assert set(torus[19]) == {18, 15, 14, 4}


def test_random_symmetrise_or_doubles_the_edge_probability():
    """Catches symmetrise=or behaving like G(n, p): the paper's 1[A + A^T > 0] has p_eff = 1 - (1-p)^2."""
    num_edges = {mode: 0 for mode in ("upper", "or")}
    for index in range(20):
        for mode in num_edges:
            graph = build_nx(f"random:n=16,p=0.25,symmetrise={mode}", seed=0, index=index)
            assert nx.is_connected(graph)
            num_edges[mode] += graph.number_of_edges()
    num_pairs = 20 * 16 * 15 / 2
    assert abs(num_edges["upper"] / num_pairs - 0.25) < 0.04
    assert abs(num_edges["or"] / num_pairs - (1 - 0.75**2)) < 0.04


def test_random_graph_that_cannot_connect_says_raise_p():
    """Catches an endless retry or a silent disconnected graph when p is far too small."""
    problems = raise_problems(build_graph, "random:n=16,p=0.0", seed=0)
    assert len(problems) == 1 and "raise p" in problems[0]
    assert build_nx("random:n=16,p=0.0", seed=0, allow_disconnected=True).number_of_edges() == 0


def test_bad_spec_lists_every_problem_and_the_valid_keys():
    """Catches a spec parser that stops at the first problem or hides the valid keys."""
    problems = raise_problems(build_graph, "kregular:n=1,degree=x,foo=1,mode=bad,oops", seed=0)
    text = "\n".join(problems)
    for fragment in ("n='1'", "degree='x'", "unknown key 'foo'", "mode='bad'", "'oops' is not key=value"):
        assert fragment in text
    assert problems[-1].startswith("kregular:n=1") and "valid keys for kregular" in problems[-1]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("kregulr:n=5", "unknown generator 'kregulr'"),
        ("ring", "missing key 'n'"),
        ("random:n=10", "missing key 'p'"),
        ("random:n=10,p=1.5", "out of range"),
        ("ring:n=5,n=6", "given twice"),
        ("small_world:n=10,k=3,p=0.1", "must be even"),
        ("kregular:n=4,degree=3", "needs n >= 5"),
        ("kregular:n=7,degree=3,mode=random", "n*degree even"),
    ],
)
def test_bad_generator_specs(spec, fragment):
    """Catches a bad generator spec that is accepted or explained without naming the problem."""
    assert any(fragment in p for p in raise_problems(build_graph, spec, seed=0))


def test_bad_seed_and_index_are_both_reported():
    """Catches a negative seed or index reaching numpy's SeedSequence (which raises a bare ValueError)."""
    assert len(raise_problems(build_graph, "ring:n=5", seed=-1, index=-2)) == 2


# ----------------------------------------------------------------------------------------------
# Graph files
# ----------------------------------------------------------------------------------------------
def weighted_graph() -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(6))
    graph.add_weighted_edges_from([(0, 1, 0.5), (1, 2, 2.0), (2, 3, 1.0), (3, 4, 1.25), (4, 5, 3.0), (5, 0, 1.0)])
    graph.add_edge(1, 4, weight=0.75)
    return graph


def write_graph(graph: nx.Graph, path: Path) -> None:
    suffix = path.suffix
    if suffix == ".edgelist":
        path.write_text("# u v weight\n" + "".join(f"{u} {v} {w}\n" for u, v, w in graph.edges(data="weight")))
    elif suffix == ".adjlist":
        nx.write_adjlist(graph, path)
    elif suffix == ".graphml":
        nx.write_graphml(graph, path)
    else:
        path.write_text(json.dumps(nx.node_link_data(graph, edges="links")))


@pytest.mark.parametrize("suffix", [".edgelist", ".adjlist", ".graphml", ".json"])
def test_file_round_trip(tmp_path, suffix):
    """Catches a reader that loses edges, nodes or weights (adjacency lists carry no weights: 1.0)."""
    graph = weighted_graph()
    path = tmp_path / f"g{suffix}"
    write_graph(graph, path)
    loaded = load_nx(path)
    expected = edge_set(graph) if suffix != ".adjlist" else {(u, v, 1.0) for u, v, _ in edge_set(graph)}
    assert list(loaded.nodes) == list(range(6))
    assert edge_set(loaded) == expected


def test_shipped_topology_files():
    """Catches a broken example file under topologies/ (counts, weights, and the two-cliques cut)."""
    ring = load_nx(TOPOLOGIES / "ring8.edgelist")
    assert ring.number_of_nodes() == 8 and degree_counts(ring) == {2: 8} and ring[5][6]["weight"] == 0.25
    petersen = load_nx(TOPOLOGIES / "petersen.adjlist")
    assert nx.is_isomorphic(petersen, nx.petersen_graph())
    grid = load_nx(TOPOLOGIES / "grid3x3.graphml")
    assert nx.is_isomorphic(grid, nx.grid_2d_graph(3, 3)) and set(grid[4]) == {1, 3, 5, 7}
    cliques = two_cliques()
    assert cliques.number_of_edges() == 13
    assert cut_size(cliques, place(cliques, 2)) == 1
    assert edge_set(build_nx(str(TOPOLOGIES / "ring8.edgelist"), seed=0)) == edge_set(ring)


def node_link(edges: list[tuple], *, num_agents: int = 3, directed: bool = False) -> str:
    links = [dict(zip(("source", "target", "weight"), e, strict=False)) for e in edges]
    return json.dumps({"directed": directed, "nodes": [{"id": i} for i in range(num_agents)], "links": links})


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("g.edgelist", "a 1\n1 0\n", "'a' (line 1) is not a non-negative integer"),
        ("g.edgelist", "0 1\n1 3\n", "missing 1: 2"),
        ("g.edgelist", "0 1\n1 2\n0 1\n", "duplicate edge 0-1 (line 1 and line 3)"),
        ("g.edgelist", "0 1\n1 2\n1 0\n", "duplicate edge 1-0"),
        ("g.edgelist", "0 1 1.0\n1 2\n1 0 2.0\n", "asymmetric edge 1-0"),
        ("g.edgelist", "0 1 -1\n1 2\n", "weight '-1' must be a positive finite number"),
        ("g.edgelist", "0 1 nan\n1 2\n", "weight 'nan' must be a positive finite number"),
        ("g.edgelist", "0 1 inf\n1 2\n", "weight 'inf' must be a positive finite number"),
        ("g.edgelist", "0 0\n0 1\n", "self-loop 0-0 (line 1)"),
        ("g.edgelist", "# nothing\n", "empty"),
        ("g.edgelist", "0 1 2 3\n", "line 1: expected 'u v' or 'u v weight'"),
        ("g.adjlist", "0 1 1\n1\n", "duplicate edge 0-1"),
        ("g.json", node_link([(0, 1, 1.0), (1, 0, 2.0), (1, 2)]), "asymmetric edge 1-0"),
        ("g.json", node_link([(0, 1), (1, 5)]), "names node 5, which is not in the node list"),
        ("g.json", node_link([(0, "x"), (1, 2)]), "'x' (edges[0]) is not a non-negative integer"),
        ("g.json", "{", "cannot parse as json"),
        ("g.json", "[]", "needs lists 'nodes' and 'edges'"),
        ("g.graphml", "<graphml", "cannot parse as graphml"),
        ("g.gml", "0 1\n", "unknown graph file type '.gml'"),
    ],
)
def test_file_validation_problem(tmp_path, name, text, fragment):
    """Catches a bad graph file that loads, or whose error does not name the file and the problem."""
    path = tmp_path / name
    path.write_text(text)
    problems = raise_problems(load_graph_file, path)
    assert any(fragment in p for p in problems), problems
    assert all(p.startswith(str(path)) for p in problems)


def test_self_loop_message_says_normalisation_adds_it(tmp_path):
    """Catches a self-loop error that leaves the user guessing how S treats self-weights."""
    path = tmp_path / "g.txt"
    path.write_text("0 0\n0 1\n")
    assert "normalisation" in raise_problems(load_graph_file, path)[0]


def test_missing_file_is_input_error(tmp_path):
    """Catches a missing file surfacing as FileNotFoundError instead of an InputError naming it."""
    problems = raise_problems(load_graph_file, tmp_path / "nope.edgelist")
    assert problems == [
        f"{tmp_path / 'nope.edgelist'}: file not found (a generator spec looks like NAME:key=value, e.g. ring:n=16)"
    ]
    assert raise_problems(build_graph, str(tmp_path / "nope.json"), seed=0)[0].endswith("e.g. ring:n=16)")


def test_many_file_problems_in_one_error(tmp_path):
    """Catches a loader that raises at the first problem instead of listing every problem at once."""
    path = tmp_path / "bad.edges"
    path.write_text("0 1\n1 1\n1 2 -3\nx 2\n0 1\n2 9\n")
    problems = raise_problems(load_graph_file, path)
    text = "\n".join(problems)
    for fragment in ("self-loop 1-1", "weight '-3'", "'x' (line 4)", "duplicate edge 0-1", "missing 6: 3, 4"):
        assert fragment in text
    assert len(problems) >= 5


def test_adjacency_list_may_list_an_edge_on_both_lines(tmp_path):
    """Catches a symmetric adjacency list (each edge on both endpoints' lines) refused as duplicates."""
    path = tmp_path / "g.adjlist"
    path.write_text("0 1 2\n1 0\n2 0\n")
    assert {(u, v) for u, v, _ in edge_set(load_nx(path))} == {(0, 1), (0, 2)}


def test_directed_ok_merges_mirrored_arcs(tmp_path):
    """Catches directed_ok that refuses u->v plus v->u with one weight, or accepts them with two weights."""
    path = tmp_path / "g.json"
    path.write_text(node_link([(0, 1, 2.0), (1, 0, 2.0), (1, 2)], directed=True))
    assert edge_set(load_nx(path, directed_ok=True)) == {(0, 1, 2.0), (1, 2, 1.0)}
    path.write_text(node_link([(0, 1, 2.0), (1, 0, 3.0), (1, 2)], directed=True))
    assert any("asymmetric" in p for p in raise_problems(load_graph_file, path, directed_ok=True))


# ----------------------------------------------------------------------------------------------
# validate_graph
# ----------------------------------------------------------------------------------------------
def test_validate_graph_reports_disconnection_and_too_many_workers_together():
    """Catches validation that stops at the first problem, or lets a worker go without agents."""
    graph = nx.Graph([(0, 1), (2, 3)])
    problems = raise_problems(validate_graph, graph, num_workers=5, source="g")
    assert len(problems) == 2
    assert any("disconnected (2 components" in p for p in problems)
    assert any("4 agents cannot fill 5 workers" in p for p in problems)
    validate_graph(graph, num_workers=4, allow_disconnected=True)


def test_build_graph_refuses_a_disconnected_file_unless_allowed(tmp_path):
    """Catches a disconnected graph file reaching a run, where some agents never hear from others."""
    path = tmp_path / "g.edgelist"
    path.write_text("0 1\n2 3\n")
    assert "disconnected" in raise_problems(build_graph, str(path), seed=0)[0]
    assert build_nx(str(path), seed=0, allow_disconnected=True).number_of_edges() == 2


# ----------------------------------------------------------------------------------------------
# Shift operator
# ----------------------------------------------------------------------------------------------
def test_row_normalisation_is_row_stochastic_and_uses_weights():
    """Catches S without self-weights, with ignored edge weights, or with rows not summing to 1."""
    ring = load_nx(TOPOLOGIES / "ring8.edgelist")
    s = shift_operator(ring, "row")
    assert torch.allclose(s.sum(dim=1), torch.ones(8, dtype=torch.float64))
    assert s[0, 0] == pytest.approx(1 / 3) and s[0, 1] == pytest.approx(1 / 3)
    assert s[1, 2] == pytest.approx(0.5 / 2.5) and s[1, 1] == pytest.approx(1 / 2.5)
    assert s[0, 4] == 0


def test_spectral_normalisation_has_spectral_radius_one():
    """Catches a spectral normalisation that divides by the wrong eigenvalue or forgets the self-loops."""
    graph = build_nx("random:n=12,p=0.4", seed=0)
    s = shift_operator(graph, "spectral")
    assert torch.allclose(s, s.T)
    assert torch.linalg.eigvalsh(s).abs().max().item() == pytest.approx(1.0)
    assert torch.all(torch.diagonal(s) > 0)


def test_metropolis_is_symmetric_and_doubly_stochastic():
    """Catches Metropolis weights that are not symmetric, not doubly stochastic, or use the wrong degrees."""
    star = build_nx("star:n=5", seed=0)
    s = shift_operator(star, "metropolis")
    ones = torch.ones(5, dtype=torch.float64)
    assert torch.allclose(s, s.T) and torch.allclose(s.sum(0), ones) and torch.allclose(s.sum(1), ones)
    assert torch.all(s >= 0)
    assert s[0, 1] == pytest.approx(1 / 5) and s[1, 1] == pytest.approx(4 / 5) and s[0, 0] == pytest.approx(1 / 5)


@pytest.mark.parametrize("normalisation", NORMALISATIONS)
def test_shift_operator_dtype_and_unknown_normalisation(normalisation):
    """Catches a dtype argument that is ignored, and an unknown normalisation that is not an InputError."""
    s = shift_operator(build_nx("ring:n=6", seed=0), normalisation, dtype=torch.float32)
    assert s.dtype == torch.float32 and s.shape == (6, 6)
    assert "valid: row, spectral, metropolis" in raise_problems(shift_operator, nx.path_graph(3), "nope")[0]


def test_spectral_gap_against_closed_forms():
    """Catches a spectral gap from the wrong eigenvalue (largest instead of second largest modulus)."""
    ring = shift_operator(build_nx("ring:n=8", seed=0), "row")  # eigenvalues (1 + 2 cos(2 pi k / 8)) / 3
    assert spectral_gap(ring) == pytest.approx(1 - (1 + math.sqrt(2)) / 3)
    assert spectral_gap(shift_operator(build_nx("complete:n=6", seed=0))) == pytest.approx(1.0)
    weighted = shift_operator(load_nx(TOPOLOGIES / "ring8.edgelist"), "row")  # not symmetric
    moduli = np.sort(np.abs(np.linalg.eigvals(weighted.numpy())))[::-1]
    assert spectral_gap(weighted) == pytest.approx(1 - moduli[1], abs=1e-12)
    lazy_walk = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.5, 0.5]], dtype=torch.float64)
    assert spectral_gap(lazy_walk) == pytest.approx(0.5)  # eigenvalues 1, 0.5, 0
    paper = shift_operator(build_nx("kregular:n=100,degree=3", seed=0), "row")
    assert 1 - spectral_gap(paper) == pytest.approx(0.996, abs=5e-4)


# ----------------------------------------------------------------------------------------------
# Placement
# ----------------------------------------------------------------------------------------------
def placement_graphs() -> dict[str, nx.Graph]:
    return {
        "ring16": build_nx("ring:n=16", seed=0),
        "torus4x4": build_nx("torus:rows=4,cols=4", seed=0),
        "kregular16": build_nx("kregular:n=16", seed=0),
        "two_cliques_permuted": relabelled(two_cliques(), seed=1),
        "star7": build_nx("star:n=7", seed=0),
    }


@pytest.mark.parametrize("method", PLACEMENTS)
@pytest.mark.parametrize("name", ["ring16", "torus4x4", "kregular16", "two_cliques_permuted", "star7"])
def test_placement_is_a_balanced_disjoint_cover(method, name):
    """Catches a placement that loses, repeats or unsorts agents, leaves a worker empty, or is unbalanced."""
    graph = placement_graphs()[name]
    n = graph.number_of_nodes()
    for num_workers in sorted({1, 2, 3, 5, 7, n}):
        parts = place(graph, num_workers, method, seed=0)
        assert len(parts) == num_workers
        assert all(p.dtype == np.int64 and len(p) > 0 and np.all(np.diff(p) > 0) for p in parts)
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1


def test_contiguous_is_array_split():
    """Catches a contiguous placement that differs from np.array_split, which other modules assume."""
    parts = place(build_nx("ring:n=10", seed=0), 3)
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_mincut_finds_the_bridge_of_permuted_cliques_and_the_arcs_of_a_relabelled_ring():
    """Catches a min-cut placement that cuts more edges than contiguous or misses an obvious optimum."""
    cliques = relabelled(two_cliques(), seed=1)
    contiguous, mincut = place(cliques, 2), place(cliques, 2, "mincut")
    assert cut_size(cliques, mincut) == 1 < cut_size(cliques, contiguous)
    ring = relabelled(build_nx("ring:n=16", seed=0), seed=2)
    for num_workers in (2, 4):
        mincut = place(ring, num_workers, "mincut", seed=0)
        assert cut_size(ring, mincut) == num_workers <= cut_size(ring, place(ring, num_workers))
    graph = build_nx("kregular:n=16", seed=0)
    for num_workers in (2, 3, 5):
        assert cut_size(graph, place(graph, num_workers, "mincut")) <= cut_size(graph, place(graph, num_workers))


def test_mincut_is_deterministic_for_a_seed():
    """Catches a min-cut placement that differs between calls, so workers would disagree on who hosts whom."""
    graph = build_nx("random:n=16,p=0.3", seed=0)
    first, second = place(graph, 3, "mincut", seed=4), place(graph, 3, "mincut", seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_bad_placement_arguments_are_listed_together():
    """Catches a placement call that accepts too many workers or an unknown method, or reports only one."""
    problems = raise_problems(place, build_nx("ring:n=4", seed=0), 5, "metis")
    assert len(problems) == 2 and "unknown placement 'metis'" in problems[0] and "1..4" in problems[1]
    assert raise_problems(place, build_nx("ring:n=4", seed=0), 0)


# ----------------------------------------------------------------------------------------------
# Halo plans and traffic
# ----------------------------------------------------------------------------------------------
def check_plan(graph: nx.Graph, plan: HaloPlan) -> None:
    owner = plan.owner
    for (src, dst), rows in plan.send.items():
        assert src != dst and len(rows) > 0 and np.all(np.diff(rows) > 0)  # sorted, each row once
        for agent in rows:  # every row sent is needed by dst
            assert owner[agent] == src and any(owner[v] == dst for v in graph[agent])
    num_cut = 0
    for u, v in graph.edges():
        if owner[u] != owner[v]:
            num_cut += 1
            assert u in plan.send[(owner[u], owner[v])] and v in plan.send[(owner[v], owner[u])]
    assert plan.cut_edges == num_cut


@pytest.mark.parametrize("method", PLACEMENTS)
@pytest.mark.parametrize("name", ["ring16", "torus4x4", "kregular16", "two_cliques_permuted", "star7"])
def test_halo_plan_covers_every_cross_worker_edge_and_nothing_else(method, name):
    """Catches a halo plan that misses a cross-worker edge, sends a row twice, or sends rows nobody needs."""
    graph = placement_graphs()[name]
    for num_workers in (1, 2, 3, 5):
        plan = halo_plan(graph, place(graph, num_workers, method))
        check_plan(graph, plan)
        for worker in range(num_workers):
            assert plan.neighbours_of(worker) == sorted(d for s, d in plan.send if s == worker)
            assert plan.neighbours_of(worker) == sorted(s for s, d in plan.send if d == worker)


def test_worker_without_cross_worker_edges_sends_nothing():
    """Catches empty send entries, or halo rows for a worker whose agents have no outside neighbour."""
    graph = nx.complete_graph(4)
    graph.add_edges_from([(4, 5), (5, 6), (6, 7)])
    placement = [np.arange(4), np.array([4, 5]), np.array([6, 7])]
    plan = halo_plan(graph, placement)
    assert set(plan.send) == {(1, 2), (2, 1)}
    assert plan.neighbours_of(0) == [] and plan.halo_of(0).size == 0
    assert plan.send[(1, 2)].tolist() == [5] and plan.halo_of(1).tolist() == [6]
    check_plan(graph, plan)


def test_traffic_against_hand_counts():
    """Catches traffic numbers that count a hub row once per neighbour, or count self-loops as messages."""
    star = build_nx("star:n=5", seed=0)
    plan = halo_plan(star, [np.array([0]), np.array([1, 2, 3, 4])])
    assert plan.send[(0, 1)].tolist() == [0] and plan.send[(1, 0)].tolist() == [1, 2, 3, 4]
    assert plan.cut_edges == 4
    traffic = traffic_per_round(star, plan, dim=10)
    assert traffic["logical"] == {"messages": 8, "bytes": 8 * 10 * 4}
    assert traffic["physical"] == {"rows": 5, "bytes": 5 * 10 * 4, "worker_pairs": 2}
    cliques = two_cliques()
    traffic = traffic_per_round(cliques, halo_plan(cliques, place(cliques, 2)), dim=3, bytes_per_float=8)
    assert traffic["logical"] == {"messages": 26, "bytes": 26 * 24}
    assert traffic["physical"] == {"rows": 2, "bytes": 2 * 24, "worker_pairs": 2}
    alone = traffic_per_round(cliques, halo_plan(cliques, place(cliques, 1)), dim=3)
    assert alone["physical"] == {"rows": 0, "bytes": 0, "worker_pairs": 0}


def test_invalid_placement_for_a_halo_plan_lists_every_problem():
    """Catches a halo plan built on overlapping, empty, out-of-range or incomplete placements."""
    problems = raise_problems(
        halo_plan, nx.path_graph(6), [np.array([0, 1, 2]), np.array([], dtype=np.int64), np.array([2, 9])]
    )
    text = "\n".join(problems)
    assert "worker 1 hosts no agents" in text and "outside 0..5: [9]" in text
    assert "placed more than once: [2]" in text and "on no worker: [3, 4, 5]" in text


# ----------------------------------------------------------------------------------------------
# describe
# ----------------------------------------------------------------------------------------------
def test_describe_two_cliques():
    """Catches describe() facts that are missing, wrong, or not JSON-serialisable."""
    d = describe(str(TOPOLOGIES / "two_cliques.json"), num_workers=2, dim=10)
    json.dumps(d)
    assert {
        "num_agents",
        "num_edges",
        "degree",
        "connected",
        "normalisation",
        "spectral_gap",
        "second_eigenvalue_modulus",
        "placement",
        "cut_edges",
        "traffic_per_round",
    } <= set(d)
    assert (d["num_agents"], d["num_edges"], d["cut_edges"], d["connected"]) == (8, 13, 1, True)
    assert d["degree"] == {"min": 3, "max": 4, "mean": pytest.approx(26 / 8)}
    assert d["placement"] == {
        "method": "contiguous",
        "num_workers": 2,
        "agents_per_worker": [4, 4],
        "agents": ["0-3", "4-7"],
    }
    assert d["traffic_per_round"]["logical"]["messages"] == 26
    assert d["spectral_gap"] == pytest.approx(1 - d["second_eigenvalue_modulus"])
    text = format_description(d)
    assert "agents     8" in text and "cut edges 1" in text and "0-3" in text and len(text.splitlines()) > 5


def test_describe_disconnected_graph_and_mincut(tmp_path):
    """Catches describe() refusing a disconnected graph (it should report it) or ignoring the method."""
    path = tmp_path / "g.edgelist"
    path.write_text("0 1\n1 2\n3 4\n4 5\n")
    d = describe(str(path), num_workers=2, placement="mincut", normalisation="metropolis")
    assert d["connected"] is False and d["num_components"] == 2 and d["cut_edges"] == 0
    assert d["second_eigenvalue_modulus"] == pytest.approx(1.0)
    assert "NO (2 components)" in format_description(d)
    assert "cannot fill 7 workers" in raise_problems(describe, str(path), num_workers=7)[0]
