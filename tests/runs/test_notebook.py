"""`mer_bench.notebook` from Python: `run` returns the runs it was asked for and no other run
of the store; `runs` is the whole store."""

from __future__ import annotations

from mer_bench import notebook


def test_run_returns_the_runs_it_was_asked_for_and_runs_the_whole_store(results):
    first = notebook.run(methods=["majority"], tasks=["synthetic-5"], seeds=(0, 1),
                         results=results)
    assert list(zip(first.method, first.seeds)) == [("majority", "0 1")]
    second = notebook.run(methods=["stratified"], tasks=["synthetic-5"], seeds=(0,),
                          results=results)
    assert list(zip(second.method, second.task, second.seeds)) == [
        ("stratified", "synthetic-5", "0")]  # majority, stored before, is not asked for
    again = notebook.run(methods=["majority"], tasks=["synthetic-5"], seeds=(1,),
                         results=results)
    assert list(zip(again.method, again.seeds)) == [("majority", "1")]  # seed 0 not asked
    assert {"uf1_mean", "uar_mean", "uf1_ci95_low"} <= set(again.columns)
    whole = notebook.runs(results)
    assert sorted(zip(whole.method, whole.seeds)) == [("majority", "0 1"), ("stratified", "0")]
