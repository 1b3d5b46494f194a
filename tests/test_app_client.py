"""The app as a client sees it: `python app.py` in a subprocess, driven by gradio_client.

One server for the module, on 127.0.0.1 and a free port, with a temporary
runs folder holding a pretrained run made with the CLI (as the app ships).
A run is started, watched while it trains, sampled mid-run, stopped and
sampled again, all through the named API endpoints.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from helpers_app import ROOT, app_env, free_port, make_shipped_run, wait_until

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_shipped_run(root)  # what the Generate tab offers the moment the app opens
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=app_env(root, port),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"app.py exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    wait_until(up, timeout=120, every=0.2, what="app.py to answer HTTP 200")
    print(f"\napp.py answered HTTP 200 after {time.monotonic() - t0:.1f} s")
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server, verbose=False)


def test_named_endpoints(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/start_run", "/run_status", "/stop_run", "/resume_run", "/delete_run", "/list_runs", "/generate"} <= names


def test_the_shipped_run_can_be_sampled_at_once(client):
    runs = {r["name"]: r for r in client.predict(api_name="/list_runs")}
    assert runs["shakespeare-char"]["whose"] == "shipped" and runs["shakespeare-char"]["state"] == "finished"
    assert all("owner" not in r for r in runs.values())  # no client ever sees an owner id
    text = client.predict(run="shakespeare-char", prompt="\n", max_new_tokens=40, seed=1, api_name="/generate")
    assert len(text) >= 30


def test_train_watch_sample_stop_sample(client, server):
    st = client.predict(corpus="addition", preset="tiny", max_iters=20_000, api_name="/start_run")
    run, token = st["name"], st["token"]  # the token is who this client is from now on
    assert st["state"] in ("queued", "preparing", "running") and st["mine"]

    def evaluated_twice():
        s = client.predict(token=token, run=run, api_name="/run_status")
        assert s["state"] != "failed", s["message"]
        return s if s["state"] == "running" and len(s["metrics"]) >= 2 else None

    s = wait_until(evaluated_twice, timeout=120, every=0.5, what="two evaluations")
    assert s["step"] > 0 and s["tokens_per_sec"] > 0 and s["val_loss"] < s["metrics"][0]["val_loss"]
    with pytest.raises(Exception, match="already have a run"):
        client.predict(token=token, corpus="addition", preset="tiny", api_name="/start_run")

    mid = client.predict(token=token, run=run, prompt="1", max_new_tokens=20, api_name="/generate")  # from the live weights
    assert mid.startswith("1") and len(mid) == 21

    job = client.submit(token=token, run=run, prompt="2", max_new_tokens=60, api_name="/generate")
    job.result()
    outputs = job.outputs()
    assert outputs[0] == "2" and outputs[-1].startswith("2") and len(outputs[-1]) == 61  # streamed, growing

    st = client.predict(token=token, run=run, api_name="/stop_run")
    s = wait_until(lambda: (lambda s: s if s["state"] == "stopped" else None)(
        client.predict(token=token, run=run, api_name="/run_status")), timeout=60, every=0.3, what="the run to stop")
    assert s["step"] >= s["metrics"][-1]["step"]
    a = client.predict(token=token, run=run, prompt="3", max_new_tokens=30, seed=5, api_name="/generate")
    b = client.predict(token=token, run=run, prompt="3", max_new_tokens=30, seed=5, api_name="/generate")
    assert a == b and a.startswith("3")
    with pytest.raises(Exception, match="never saw"):
        client.predict(token=token, run=run, prompt="hello", api_name="/generate")

    other = gradio_client.Client(server, verbose=False)  # another person
    assert run not in {r["name"] for r in other.predict(api_name="/list_runs")}
    with pytest.raises(Exception, match="no run named"):
        other.predict(run=run, api_name="/run_status")
    with pytest.raises(Exception, match="only its owner"):
        other.predict(run="shakespeare-char", api_name="/delete_run")
    with pytest.raises(Exception, match="not one this server issued"):
        other.predict(run=run, token=token[:-1] + ("0" if token[-1] != "0" else "1"), api_name="/run_status")
    assert client.predict(run=run, token=token, api_name="/delete_run") == {"deleted": run}
