"""bench/report.py turns a results dict into aims, markdown, PNG plots and the README table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def load_report() -> ModuleType:
    # Loaded from its file under its own name: bench/ is scripts, not a package, and the name
    # "bench" is this test package's once pytest imports it.
    path = Path(__file__).resolve().parents[2] / "bench" / "report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


report = load_report()

LABELS = {
    "quorumkv-1": "quorumkv, 3 nodes, 1 shard",
    "quorumkv-12": "quorumkv, 3 nodes, 12 shards",
    "etcd": "etcd, 3 members",
    "pysyncobj": "PySyncObj, 3 nodes",
}
WRITE_64_OPS = {"quorumkv-1": 3000.0, "quorumkv-12": 5000.0, "etcd": 2000.0, "pysyncobj": 600.0}
WRITE_16_P99_MS = {"quorumkv-1": 30.0, "quorumkv-12": 20.0, "etcd": 25.0, "pysyncobj": 300.0}


def run(system: str, clients: int, ops_per_second: float, p99_ms: float) -> dict[str, object]:
    return {"system": system, "workload": "write", "clients": clients, "pipeline": 1,
            "ops": int(ops_per_second * 10), "errors": 0, "ops_per_second": ops_per_second,
            "p50_ms": p99_ms / 3, "p99_ms": p99_ms, "server_cpu_s_per_1k_ops": 0.2,
            "loadgen_cpu_s": 1.0, "loadgen_cpu_share": 0.2,
            "histogram": [[1.0, 10], [p99_ms / 3, 80], [p99_ms, 10]]}


def tiny_results() -> dict[str, object]:
    runs = [run(system, 64, ops, 50.0) for system, ops in WRITE_64_OPS.items()]
    runs += [run(system, 16, 1000.0, p99) for system, p99 in WRITE_16_P99_MS.items()]
    return {
        "date": "2026-01-02", "mode": "quick",
        "machine": {"cpus": 2, "python": "3.11.2"},
        "loadgen": {"processes": 1, "warmup_s": 1, "duration_s": 2, "value_bytes": 100,
                    "keys": 1000},
        "systems": [{"name": name, "label": label, "durability": "fsync", "routing": "leader"}
                    for name, label in LABELS.items()],
        "runs": runs,
        "growth": [dict(run("quorumkv-1", 64, ops, 50.0), keys_loaded=keys, load_seconds=1.0)
                   for keys, ops in ((1000, 3000.0), (10000, 2800.0))],
    }


def find_aim(start: str, theirs: str) -> dict[str, object]:
    return next(entry for entry in report.compute_ratios(tiny_results())
                if entry["aim"].startswith(start) and f" {theirs} " in entry["aim"])


def test_ratios_take_our_better_configuration_and_judge_met_and_not_met() -> None:
    """Each aim compares the better of quorumkv-1/-12 with the other system, as 'times better'."""
    write_etcd = find_aim("write ops/s, 64 clients", "etcd")
    assert (write_etcd["ours"], write_etcd["theirs"]) == (5000.0, 2000.0)
    assert write_etcd["ratio"] == pytest.approx(2.5)
    assert write_etcd["met"] and "quorumkv-12" in write_etcd["aim"]

    write_pysyncobj = find_aim("write ops/s, 64 clients", "pysyncobj")
    assert write_pysyncobj["ratio"] == pytest.approx(5000 / 600)
    assert write_pysyncobj["target"] == 10 and not write_pysyncobj["met"]

    # Lower is better: ours is the smaller p99, and the ratio is theirs / ours.
    p99 = find_aim("p99 write latency", "etcd")
    assert (p99["ours"], p99["theirs"]) == (20.0, 25.0)
    assert p99["ratio"] == pytest.approx(1.25) and p99["met"]


def test_aims_without_figures_are_skipped() -> None:
    """No read runs, no failover and no redis-always: those aims are left out, not guessed."""
    aims = [entry["aim"] for entry in report.compute_ratios(tiny_results())]
    assert not any("read" in aim or "failover" in aim or "redis" in aim for aim in aims)


def test_markdown_names_every_system_and_has_the_aims_table() -> None:
    """The report lists every system label and the aims table with its ✓/✗ column."""
    results = tiny_results()
    markdown = report.render_markdown(results, report.compute_ratios(results), ["x-growth.png"])
    for label in LABELS.values():
        assert label in markdown
    assert "| aim " in markdown and "| met |" in markdown
    assert "✓" in markdown and "✗" in markdown
    assert "](x-growth.png)" in markdown
    assert "## Failover" not in markdown  # absent from the results, so absent from the report


def test_plots_are_png_files(tmp_path: Path) -> None:
    """Every plot with data is written as a PNG; the throughput plot is there for write runs."""
    names = report.write_plots(tiny_results(), tmp_path, "t")
    assert set(names) == {"t-throughput.png", "t-latency-cdf.png", "t-growth.png"}
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_update_readme_replaces_only_between_the_markers(tmp_path: Path) -> None:
    """Text outside the markers is kept byte for byte; a README without them is an error."""
    readme = tmp_path / "README.md"
    readme.write_text("head\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\ntail\n")
    report.update_readme(readme, "| new | table |\n")
    assert readme.read_text() == (
        "head\n<!-- bench:begin -->\n| new | table |\n<!-- bench:end -->\ntail\n")

    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="bench:begin"):
        report.update_readme(readme, "| new |")
    assert readme.read_text() == "no markers here\n"


def test_write_report_writes_json_markdown_plots_and_readme(tmp_path: Path) -> None:
    """write_report leaves <date>.json and <date>.md beside the plots and links them from the README."""
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:begin -->\n<!-- bench:end -->\n")
    markdown_path = report.write_report(tiny_results(), tmp_path / "results", readme)
    assert markdown_path == tmp_path / "results" / "2026-01-02.md"
    assert (tmp_path / "results" / "2026-01-02.json").exists()
    assert "[results/2026-01-02.md](results/2026-01-02.md)" in readme.read_text()
    assert LABELS["quorumkv-12"] in readme.read_text()
