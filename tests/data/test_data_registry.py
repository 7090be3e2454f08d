import pytest

import graphkit.data as gd
from graphkit.cli import main
from graphkit.data import registry
from graphkit.data.download import DEFAULT_ROOT, resolve_root

STATIC = [
    "Cora", "CiteSeer", "PubMed", "gnn-benchmark-cora", "gnn-benchmark-citeseer", "prognn-*",
    "cocitation-cora", "cocitation-citeseer", "cocitation-pubmed", "coauthorship-cora",
    "coauthorship-dblp", "blogcatalog", "ppi", "airports-europe", "airports-usa",
    "airports-brazil", "ogbn-*", "ogbl-*", "karate", "csbm", "hsbm",
]


def test_every_static_dataset_is_registered_with_its_facts():
    entries = {e.name: e for e in registry.list_datasets()}
    for name in STATIC:
        e = entries[name]
        for field in ("task", "size", "source", "citation", "license"):
            assert getattr(e, field), (name, field)


def test_get_exact_case_insensitive_and_pattern():
    assert registry.get("Cora").name == "Cora"
    assert registry.get("cora").name == "Cora"
    e = registry.get("prognn-citeseer")
    assert e.name == "prognn-citeseer" and e.manifest == "prognn-citeseer"
    assert registry.get("ogbn-arxiv").name == "ogbn-arxiv"
    assert registry.get("ogbl-collab").task.startswith("link")


def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match="unknown dataset 'Coraa'.*Cora"):
        registry.get("Coraa")
    with pytest.raises(ValueError) as err:  # nothing alike: no suggestion (it said "enron")
        registry.get("nothing")
    assert "did you mean" not in str(err.value)


def test_a_name_that_is_not_a_string_is_named():
    # used to fail with "'NoneType' object has no attribute 'lower'"
    for name in (None, 3):
        with pytest.raises(ValueError, match="dataset name must be a string"):
            gd.load(name)


def test_pattern_entry_itself_cannot_be_loaded():
    entry = next(e for e in registry.list_datasets() if e.name == "prognn-*")
    with pytest.raises(ValueError, match="family of datasets"):
        entry.load()


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("Cora", task="t", size="s", source="s", citation="c", license="l")(
            lambda root: None
        )


def test_describe_includes_manifest_facts():
    info = registry.get("PubMed").describe()
    assert info["manifest"] == "datasets/PubMed.json"
    assert "ind.pubmed.allx" in info["files"] and "allx" in info["missing"]
    assert set(registry.get("prognn-cora").describe()) >= {"name", "task", "source", "format"}


def test_resolve_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHKIT_DATA", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "x") == tmp_path / "x"
    assert resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv("GRAPHKIT_DATA")
    assert resolve_root(None) == DEFAULT_ROOT.expanduser()


def test_load_uses_environment_root(monkeypatch, data_root):
    monkeypatch.setenv("GRAPHKIT_DATA", data_root)
    assert gd.load("airports-brazil").num_nodes == 131


def test_cli_list_and_info(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("Cora", "prognn-*", "blogcatalog", "csbm", "ogbn-*"):
        assert name in out
    assert main(["datasets", "info", "Cora"]) == 0
    out = capsys.readouterr().out
    assert "node classification" in out and "datasets/Cora.json" in out


@pytest.mark.parametrize(
    "name,kwargs,options",
    [("Cora", {"attack": "meta"}, "none"), ("csbm", {"homophly": 0.5}, "homophily"),
     ("prognn-cora", {"ratio": 0.1}, "attack, rate, features")],
)
def test_unknown_option_is_a_value_error_listing_the_options(name, kwargs, options, data_root):
    with pytest.raises(ValueError, match=f"does not take the option.*{options}"):
        gd.load(name, root=data_root, **kwargs)
