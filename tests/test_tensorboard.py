"""TensorBoard output of a run: scalars per iteration, hyperparameters, the adaptation chart, a live server."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from tensorboard.plugins.custom_scalar import layout_pb2

ITERATION_TAGS = [
    "returns/step_0",
    "returns/step_1",
    "meta/surrogate_before",
    "meta/surrogate_after",
    "meta/kl",
    "meta/line_search_steps",
    "time/sampling_s",
    "time/meta_update_s",
    "perf/env_steps_per_s",
]


def test_one_value_per_iteration_for_each_tag(tiny_run, run_scalars):
    """Every documented scalar tag holds exactly one finite value per iteration, at steps 0..N−1."""
    logged = run_scalars(tiny_run[0])
    for tag in ITERATION_TAGS:
        assert tag in logged, tag
        assert [step for step, _ in logged[tag]] == [0, 1, 2], tag
        assert all(abs(value) < float("inf") for _, value in logged[tag]), tag
    assert all(value < 0 for _, value in logged["returns/step_0"])  # navigation rewards are negative distances
    assert all(0 <= value <= 0.01 * 1.0001 for _, value in logged["meta/kl"])  # within the default max_kl


def test_hyperparameters_text(tiny_run, event_files):
    """The resolved config is written once as a markdown table of keys and values."""
    events = event_files(tiny_run[0]).Tensors("hyperparameters/text_summary")
    assert len(events) == 1
    text = events[0].tensor_proto.string_val[0].decode()
    for row in ["| fast_lr | 0.5 |", "| meta_batch_size | 2 |", "| hidden_sizes | [8] |", "| horizon | 20 |",
                "| sampler.backend | vectorized |"]:
        assert row in text, row


def test_adaptation_custom_scalars_chart(tiny_run, event_files):
    """The custom-scalars layout has an "adaptation" multiline chart of the returns after 0 and 1 inner steps."""
    events = event_files(tiny_run[0]).Tensors("custom_scalars__config__")
    assert len(events) == 1
    layout = layout_pb2.Layout.FromString(events[0].tensor_proto.string_val[0])
    charts = {chart.title: chart for category in layout.category for chart in category.chart}
    assert "adaptation" in charts
    assert list(charts["adaptation"].multiline.tag) == ["returns/step_0", "returns/step_1"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_live_tensorboard_serves_the_returns(tiny_run, run_scalars, tmp_path):
    """A real `tensorboard --logdir RUN` server on loopback serves returns/step_1 with the logged values."""
    run_dir, _ = tiny_run
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "tensorboard.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(run_dir), "--host", "127.0.0.1",
         "--port", str(port), "--reload_interval", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        logged = run_scalars(run_dir)["returns/step_1"]
        served, deadline = [], time.monotonic() + 60
        while len(served) < len(logged):  # the server loads event files in the background
            if server.poll() is not None:
                pytest.fail(f"tensorboard exited: {(tmp_path / 'tensorboard.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"tensorboard did not serve returns/step_1 within 60 s (got {served})")
            try:
                runs = get_json(f"{base}/data/runs")
                if runs:
                    assert runs == ["."]  # the logdir itself holds the event files
                    served = get_json(f"{base}/data/plugin/scalars/scalars?run=.&tag=returns%2Fstep_1")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or the tag is not loaded yet (HTTP 400)
            if len(served) < len(logged):
                time.sleep(0.5)
        assert [step for _, step, _ in served] == [step for step, _ in logged]
        assert [value for _, _, value in served] == pytest.approx([value for _, value in logged], rel=1e-6)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
