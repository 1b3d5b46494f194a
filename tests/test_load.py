"""A bounded load test: 20 users sample at once while a run trains (gradio_client, then plain HTTP).

The small version of `python bench/load_test.py` (which docs/reliability.md
reports in full): `python app.py` on 127.0.0.1 and a free port, one training
run, then 20 users x 1 sample of 30 tokens. Every request must succeed and
the training run must keep taking steps meanwhile.
"""

from __future__ import annotations

import sys
import time

import pytest

from helpers_app import ROOT

pytest.importorskip("gradio_client")
pytestmark = pytest.mark.timeout(120)
sys.path.insert(0, str(ROOT / "bench"))
import load_test  # noqa: E402


@pytest.mark.parametrize("client", ["gradio_client", "http"])
def test_20_users_sample_while_a_run_trains(client):
    t0 = time.monotonic()
    r = load_test.run(users=20, requests=1, tokens=30, train_corpus="addition", time_limit=45, train_preset="tiny",
                      client=client)
    print(f"\n20 users x 1 x 30 tokens ({client}): p50 {r['p50_s']} s, p90 {r['p90_s']} s, max {r['max_s']} s; "
          f"{r['train_steps_during']} training steps meanwhile; load average {r['loadavg_after']}; "
          f"{time.monotonic() - t0:.0f} s in all")
    assert r["n_errors"] == 0, r["errors"]
    assert r["completed"] == 20 and r["client"] == client
    assert r["train_steps_during"] > 0 and r["train_state"] == "running"
