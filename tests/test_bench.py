"""`structgen bench masks` end to end on three tiny MaskBench files (structgen
only, no timings checked), plus the pure helpers (sources, sampling,
histograms)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from structgen.bench.maskbench import source_of, stratified_sample
from structgen.bench.stats import Dist


def test_source_of_maskbench_names():
    assert source_of("Github_easy---o1008.json") == "Github_easy"
    assert source_of("JsonSchemaStore---cityjson.min.schema.json") == "JsonSchemaStore"
    assert source_of("BFCL_parallel_multiple_12.json") == "BFCL"
    assert source_of("JME_40.json") == "JME"


def test_stratified_sample_is_proportional_and_deterministic():
    files = [Path(f"A---{i}.json") for i in range(60)] + [Path(f"B---{i}.json") for i in range(30)]
    files += [Path(f"C---{i}.json") for i in range(10)]
    s1 = stratified_sample(files, 10, seed=3)
    assert s1 == stratified_sample(files, 10, seed=3)
    assert len(s1) == 10
    by = {src: sum(source_of(f.name) == src for f in s1) for src in "ABC"}
    assert by == {"A": 6, "B": 3, "C": 1}
    assert stratified_sample(files, 10, seed=4) != s1
    assert stratified_sample(files, 1000, seed=0) == files


def test_dist_percentiles_are_close_and_mergeable():
    a, b = Dist(), Dist()
    for us in range(1, 501):
        a.add_us(us)
    for us in range(501, 1001):
        b.add_us(us)
    a.merge(Dist.from_json(json.loads(json.dumps(b.to_json()))))
    assert a.n == 1000 and a.max == pytest.approx(1000)
    assert a.avg == pytest.approx(500.5)
    for p, exact in ((50, 500), (90, 900), (99, 990)):
        assert a.percentile(p) == pytest.approx(exact, rel=0.015)


def _write(dirpath: Path, name: str, schema, tests) -> None:
    (dirpath / name).write_text(json.dumps({"description": name, "schema": schema, "tests": tests}))


@pytest.fixture(scope="module")
def masks_run(tmp_path_factory):
    from structgen.bench.maskbench import run_masks

    data = tmp_path_factory.mktemp("maskbench")
    obj = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    _write(
        data,
        "Tiny_ok_1.json",
        obj,
        [
            {"description": "ok", "valid": True, "data": {"name": "Zoë", "age": 3}},
            {"description": "missing name", "valid": False, "data": {"age": 3}},
            {"description": "extra", "valid": False, "data": {"name": "a", "x": 1}},
        ],
    )
    _write(data, "Tiny_bad_2.json", {"type": "no-such-type"}, [{"description": "x", "valid": True, "data": 1}])
    _write(
        data,
        "Tiny_mislabelled_3.json",
        {"type": "integer"},
        [{"description": "a string labelled valid", "valid": True, "data": "seven"}],
    )
    out = tmp_path_factory.mktemp("out")
    run_masks([str(data)], engines="structgen", tokenizer="llama3", timeout=60, out=out, progress=False, plot=True)
    return data, out


def test_masks_classifies_each_schema(masks_run):
    _, out = masks_run
    records = {json.loads(l)["key"]: json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()}
    assert set(records) == {"Tiny_ok_1.json", "Tiny_bad_2.json", "Tiny_mislabelled_3.json"}
    ok = records["Tiny_ok_1.json"]
    assert ok["status"] == "passing", ok
    assert ok["tests"] == {"valid": 1, "invalid": 2, "valid_rejected": 0, "invalid_accepted": 0, "untokenizable": 0}
    assert ok["ttfm_us"] > 0 and ok["tbm"]["n"] > 0 and ok["source"] == "Tiny_ok"
    assert records["Tiny_bad_2.json"]["status"] == "compile_error"
    assert records["Tiny_bad_2.json"]["error"]
    bad = records["Tiny_mislabelled_3.json"]
    assert bad["status"] == "validation_error"
    assert bad["failures"][0]["reason"] == "token not in mask" and bad["failures"][0]["token_pos"] == 0


def test_masks_writes_report_files(masks_run):
    _, out = masks_run
    for name in ("results.jsonl", "results.json", "results.csv", "summary.md", "config.json", "machine.json"):
        assert (out / name).is_file(), name
    summary = (out / "summary.md").read_text()
    assert "| passing | 1 |" in summary and "| compile error | 1 |" in summary and "| validation error | 1 |" in summary
    assert "Passing rate per source" in summary
    per = json.loads((out / "results.json").read_text())
    assert per["Tiny_ok_1.json"]["structgen"]["status"] == "passing"
    assert (out / "tbm_ttfm.png").stat().st_size > 1000


def test_masks_resume_skips_done_schemas(masks_run):
    from structgen.bench.maskbench import run_masks

    data, out = masks_run
    before = (out / "results.jsonl").read_text()
    with pytest.raises(SystemExit):
        run_masks([str(data)], engines="structgen", out=out, progress=False)
    run_masks([str(data)], engines="structgen", out=out, progress=False, resume=True, plot=False)
    assert (out / "results.jsonl").read_text() == before
