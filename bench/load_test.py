"""Load test: N concurrent gradio_client users sample while one run trains.

Talks only to 127.0.0.1, with a bounded number of requests and a time limit.
It starts the app on a free port with a temporary checkpoints folder, starts
one training run, then N users each ask for R samples at once. It reports
latency percentiles, errors, how far training advanced meanwhile, and the
machine's load average (other work on the machine slows every figure).

    python bench/load_test.py                 # 20 users x 3 samples of 100 tokens
    python bench/load_test.py --users 30 --requests 1 --tokens 200   # a class pressing Generate at once
    python bench/load_test.py --users 20 --requests 1 --tokens 40 --json out.json
    python bench/load_test.py --users 30 --requests 1 --tokens 200 --client http   # plain HTTP, as browsers cost

The users are gradio_client Clients (one per user), or with `--client http`
plain requests to the API's documented POST and event stream: gradio_client
costs ~70 ms of CPU a request in this process, which on a 2-core machine is
taken from the app (a class's browsers run on their own machines). The CPU
seconds the app and the clients used during the burst are printed.

Latency is from a request's submit to its whole text (its last character);
the users connect first and send their first requests together, after one
warm-up request has loaded the model (`--cold`: none). Each user's page is
open first: one 1-token request in the user's own session before the clock,
as a browser's session exists from the page's load event on
(`--cold-sessions`: each request a new session, built inside the burst).

The training run asks for 20,000 iterations, the app's default GPT_MAX_ITERS
(a larger request is refused), and stops when the test ends.
tests/test_load.py runs a bounded version (20 users x 1 sample of 30 tokens).

Exit status 0 only if every request succeeded and training kept advancing.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN_ITERS = 20_000  # the app's default GPT_MAX_ITERS: the most a run may ask for
SAMPLE_RUN = "sample-model"  # the run the users sample from


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> float:
    import urllib.request

    start = time.time()
    while time.time() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.time() - start
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def process_cpu_s(pid: int) -> float:
    """CPU seconds a process has used, every thread counted (Linux's /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


COMPILED_LINE = "decode step compiled"  # what the decode process writes to the app's log (gpt.decode_process)


def wait_for_log(log: Path, text: str, timeout: float) -> float | None:
    """Seconds until `text` appears in the app's log, or None after `timeout`."""
    start = time.time()
    while time.time() - start < timeout:
        if log.exists() and text in log.read_text(errors="replace"):
            return time.time() - start
        time.sleep(0.5)
    return None


def start_app(ckpt_dir: Path, port: int, env_extra: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GPT_CHECKPOINT_DIR=str(ckpt_dir),
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), **(env_extra or {}))
    shared = ROOT.parent / "shared" / "data"
    if "GPT_DATA_DIR" not in env and (shared / "tinyshakespeare.txt").exists():
        env["GPT_DATA_DIR"] = str(shared)
    with open(ckpt_dir / "app.log", "wb") as log:  # the app's stderr: the decode process says when it compiled
        return subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=log)


def stop_app(proc: subprocess.Popen, folder: Path) -> None:
    """End the app (a kill if it does not stop within 10 s) and remove its checkpoints folder."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(folder, ignore_errors=True)


def connect(url: str, attempts: int = 5):
    """A gradio_client Client, retried: on a loaded machine fetching the page's config can time out."""
    from gradio_client import Client

    for attempt in range(attempts):
        try:  # httpx's default 5 s fails a config fetch or a join that a browser would simply wait for
            return Client(url, verbose=False, httpx_kwargs={"timeout": 60})
        except Exception:  # noqa: BLE001 - httpx timeouts; the last one is raised
            if attempt == attempts - 1:
                raise
            time.sleep(1 + attempt)


def make_sample_run(folder: Path) -> str:
    """The model the users sample from: the shipped Shakespeare run, else a tiny one trained here in a second."""
    shipped = ROOT / "checkpoints" / "shakespeare-char"
    if (shipped / "model.safetensors").exists():
        shutil.copytree(shipped, folder / SAMPLE_RUN)
        return "shipped shakespeare-char"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from gpt.data import data_dir
    from gpt.train import Trainer
    from gpt.train import configs_from
    from gpt import corpus as corpora

    if "GPT_DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "data" / "tinyshakespeare.txt").exists():
        os.environ["GPT_DATA_DIR"] = str(ROOT.parent / "shared" / "data")
    corpus = "shakespeare" if (data_dir() / "tinyshakespeare.txt").exists() else "addition"
    ds = corpora.dataset(corpora.load(corpus), "char")
    model_cfg, train_cfg = configs_from("tiny", ds.tokenizer.vocab_size, {}, dict(
        max_iters=50, eval_interval=50, eval_iters=2, sample_tokens=0, device="cpu"))
    Trainer(model_cfg, train_cfg, ds, folder / SAMPLE_RUN, meta={"corpus": corpus, "data_source": corpus}).run()
    return f"tiny {corpus} model trained here (50 steps)"


def http_generate(url: str, data: list, timeout: float = 120, session: str | None = None) -> str:
    """One /generate over plain HTTP (the API's documented POST, then its event stream): the last text.
    A browser's cost, not gradio_client's (~70 ms of CPU a request in this process, beside the app).
    `session`: the user's session (a page's), else a new one for this request."""
    return http_call(url, "generate", data, timeout, session)[0]


def http_call(url: str, api_name: str, data: list, timeout: float = 120, session: str | None = None) -> list:
    """One call of an API endpoint over plain HTTP: its outputs (the last ones, for a stream)."""
    body = json.dumps({"data": data, **({"session_hash": session} if session else {})}).encode()
    req = urllib.request.Request(f"{url}gradio_api/call/{api_name}", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        event_id = json.loads(resp.read())["event_id"]
    event, last = "", None
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("generating", "complete"):
                last = json.loads(line[5:])
            elif line.startswith("data:") and event == "error":
                raise RuntimeError(f"the app refused: {line[5:].strip()}")
    if event != "complete" or not last:
        raise RuntimeError(f"the stream ended with {event!r}, not a complete answer")
    return last


def run(users: int, requests: int, tokens: int, train_corpus: str, time_limit: float, train_preset: str = "small",
        startup_timeout: float = 120, warm: bool = True, client: str = "gradio_client",
        cold_sessions: bool = False) -> dict:
    from gradio_client import Client

    tmp = Path(tempfile.mkdtemp(prefix="gpt-load-"))
    result: dict = {"users": users, "requests_per_user": requests, "tokens": tokens, "train_corpus": train_corpus,
                    "train_preset": train_preset, "warm": warm, "client": client, "cold_sessions": cold_sessions, "cpu_count": os.cpu_count(),
                    "loadavg_before": os.getloadavg()}
    result["sample_model"] = make_sample_run(tmp)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_app(tmp, port, {"GPT_MAX_ITERS": str(TRAIN_ITERS)})  # the run below asks for exactly the limit
    try:
        result["startup_s"] = wait_http(url, startup_timeout)
        trainer = Client(url, verbose=False)
        started = trainer.predict(corpus=train_corpus, preset=train_preset, max_iters=TRAIN_ITERS,
                                  max_seconds=time_limit + 60, api_name="/start_run")
        run_name, token = started["name"], started["token"]
        deadline = time.time() + 30
        while trainer.predict(run=run_name, token=token, api_name="/run_status").get("step", 0) < 1 and time.time() < deadline:
            time.sleep(0.5)
        step_before = trainer.predict(run=run_name, token=token, api_name="/run_status").get("step", 0)

        # one client per user, all connected before the clock starts, so the first requests leave together,
        # as a class's clicks do
        pool = cf.ThreadPoolExecutor(users)
        clients = list(pool.map(lambda _: connect(url), range(users))) if client == "gradio_client" else []
        if warm:  # the model's first load (~1 s quiet, ~10 s at load 10) is the server's start, not sampling
            http_generate(url, [SAMPLE_RUN, "", 1, 0.8, 0, 1.0, -1, ""])
            # ...and so is compiling its decode step, which the decode process does in the background
            # (gpt.compiled_step) while the eager step serves: the burst is timed after it, as a class after
            # the server's first minute
            if all(os.environ.get(v, "1") != "0" for v in ("GPT_DECODE_PROCESS", "GPT_COMPILE_DECODE")):
                result["compile_wait_s"] = wait_for_log(tmp / "app.log", COMPILED_LINE, 300)
        # each user's page is open: its session exists, made by the page's load event, before anyone presses
        # Generate (a session's first event builds its state for every component of the page, ~30 ms of the
        # server's CPU here: thirty of them inside the burst measured the page's opening, not Generate)
        sessions = [f"load-user-{i}-{time.time_ns()}" for i in range(users)]
        if client == "gradio_client":
            sessions = [c.session_hash for c in clients]
        if not cold_sessions:
            list(pool.map(lambda i: http_generate(url, [SAMPLE_RUN, "", 1, 0.8, 0, 1.0, -1, ""], session=sessions[i]),
                          range(users)))

        def user(i: int) -> list[tuple[float, str | None]]:
            out = []
            for r in range(requests):
                t0 = time.time()
                try:
                    if client == "http":
                        text = http_generate(url, [SAMPLE_RUN, "", tokens, 0.8, 0, 1.0, i * 100 + r, ""],
                                             session=sessions[i])
                    else:
                        text = clients[i].predict(run=SAMPLE_RUN, prompt="", max_new_tokens=tokens, temperature=0.8,
                                                  top_k=0, top_p=1.0, seed=i * 100 + r, api_name="/generate")
                    err = None if isinstance(text, str) and len(text) > 0 else f"empty answer {text!r}"
                except Exception as e:  # noqa: BLE001 - count it
                    err = f"{type(e).__name__}: {e}"
                out.append((time.time() - t0, err))
            return out

        probes: list[float] = []  # the rest of the page meanwhile: a status poll's round trip, every 0.1 s
        burst_over = threading.Event()

        def probe() -> None:
            while not burst_over.is_set():
                t0 = time.time()
                http_call(url, "run_status", [run_name, token], session="load-probe")
                probes.append(time.time() - t0)
                burst_over.wait(0.1)

        http_call(url, "run_status", [run_name, token], session="load-probe")  # its page is open too
        step_before = trainer.predict(run=run_name, token=token, api_name="/run_status").get("step", 0)
        t_start, app_cpu, client_cpu = time.time(), process_cpu_s(proc.pid), time.process_time()
        futures = [pool.submit(user, i) for i in range(users)]
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        done, pending = cf.wait(futures, timeout=time_limit)
        burst_over.set()
        prober.join(30)
        pool.shutdown(wait=False, cancel_futures=True)  # bounded: stragglers end when the app is stopped below
        wall = time.time() - t_start
        result["app_cpu_s"] = process_cpu_s(proc.pid) - app_cpu
        result["client_cpu_s"] = time.process_time() - client_cpu
        result["loadavg_after"] = os.getloadavg()
        samples = [s for f in done for s in f.result()]
        errors = [e for _, e in samples if e] + [f"{len(pending)} users did not finish in {time_limit} s"] * bool(pending)
        lat = [t for t, e in samples if not e]
        status = trainer.predict(run=run_name, token=token, api_name="/run_status")
        trainer.predict(run=run_name, token=token, api_name="/stop_run")
        result.update(
            completed=len(lat), errors=errors[:5], n_errors=len(errors), wall_s=wall,
            p50_s=percentile(lat, 50) if lat else None, p90_s=percentile(lat, 90) if lat else None,
            p95_s=percentile(lat, 95) if lat else None,
            p99_s=percentile(lat, 99) if lat else None, max_s=max(lat) if lat else None,
            mean_s=statistics.mean(lat) if lat else None,
            train_steps_during=status.get("step", 0) - step_before, train_state=status.get("state"),
            probe_n=len(probes), probe_p50_s=percentile(probes, 50) if probes else None,
            probe_p95_s=percentile(probes, 95) if probes else None,
        )
    finally:
        stop_app(proc, tmp)
    result["ok"] = result.get("n_errors", 1) == 0 and result.get("train_steps_during", 0) > 0
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--corpus", default="shakespeare", help="what the training run trains on")
    ap.add_argument("--preset", default="small", help="the training run's preset")
    ap.add_argument("--time-limit", type=float, default=300)
    ap.add_argument("--json", default=None)
    ap.add_argument("--client", choices=("gradio_client", "http"), default="gradio_client",
                    help="how each user asks: gradio_client (a Client per user), or plain HTTP (the API's POST and event "
                         "stream, a browser's cost: the users' own CPU is not the app's on a class's 30 machines)")
    ap.add_argument("--cold", action="store_true", help="no warm-up request: the first ones also load the model")
    ap.add_argument("--cold-sessions", action="store_true",
                    help="every request a new visitor: its session's state is built inside the burst (~30 ms of the "
                         "server's CPU each), as if thirty pages opened and pressed Generate at the same instant")
    args = ap.parse_args()
    r = run(args.users, args.requests, args.tokens, args.corpus, args.time_limit, args.preset, warm=not args.cold,
            client=args.client, cold_sessions=args.cold_sessions)
    cmd = " ".join(["python bench/load_test.py"] + sys.argv[1:])
    print("| users x requests | tokens | completed | errors | p50 s | p90 s | p95 s | p99 s | max s | train steps meanwhile "
          "| command |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    ms = lambda v: "-" if v is None else f"{v * 1000:.0f} ms"  # noqa: E731
    print(f"| {r['users']} x {r['requests_per_user']} | {r['tokens']} | {r.get('completed')} | {r.get('n_errors')} | "
          f"{fmt(r.get('p50_s'))} | {fmt(r.get('p90_s'))} | {fmt(r.get('p95_s'))} | {fmt(r.get('p99_s'))} | "
          f"{fmt(r.get('max_s'))} | {r.get('train_steps_during')} | `{cmd}` |")
    load = lambda k: " / ".join(f"{x:.2f}" for x in r[k]) if r.get(k) else "-"  # noqa: E731
    print(f"\nload average (1/5/15 min) before {load('loadavg_before')}, after {load('loadavg_after')} on "
          f"{r['cpu_count']} CPUs; wall {fmt(r.get('wall_s'))} s; CPU meanwhile: app {fmt(r.get('app_cpu_s'))} s, "
          f"these clients {fmt(r.get('client_cpu_s'))} s; app start {fmt(r.get('startup_s'))} s; "
          f"sampled from: {r['sample_model']} ({'loaded by a warm-up request' if r['warm'] else 'cold'}; decode step "
          f"{'compiled after ' + fmt(r['compile_wait_s']) + ' s' if r.get('compile_wait_s') else 'not compiled'}); "
          f"sessions: {'new with each request' if r['cold_sessions'] else 'open before the burst'}; "
          f"training: {r['train_preset']} on {r['train_corpus']}, {r.get('train_state')}; "
          f"a /run_status poll meanwhile: p50 {ms(r.get('probe_p50_s'))}, p95 {ms(r.get('probe_p95_s'))} "
          f"({r.get('probe_n')} polls)")
    if r.get("errors"):
        print("errors:", r["errors"])
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
