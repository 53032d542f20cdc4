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
from tensorboard.plugins.hparams import metadata as hparams_metadata

from metarl.trainer import ADAPTATION_TAG

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


def test_events_are_in_a_named_run_not_the_run_directory(tiny_run):
    """``tensorboard --logdir RUN`` shows the run as "train" (and the returns per step as "train/step_k"), not "."."""
    run_dir = tiny_run[0]
    assert not list(run_dir.glob("events.out.tfevents.*"))
    for events in ["train", "train/step_0", "train/step_1"]:
        assert len(list((run_dir / events).glob("events.out.tfevents.*"))) == 1, events


def test_one_value_per_iteration_for_each_tag(tiny_run, run_scalars):
    """Every documented scalar tag holds exactly one finite value per iteration, at steps 1..N."""
    logged = run_scalars(tiny_run[0])
    for tag in ITERATION_TAGS:
        assert tag in logged, tag
        assert [step for step, _ in logged[tag]] == [1, 2, 3], tag
        assert all(abs(value) < float("inf") for _, value in logged[tag]), tag
    assert all(value < 0 for _, value in logged["returns/step_0"])  # navigation rewards are negative distances
    assert all(0 <= value <= 0.01 * 1.0001 for _, value in logged["meta/kl"])  # within the default max_kl


def test_hyperparameters_text(tiny_run, event_files):
    """The resolved config is written once as a markdown table of keys and values."""
    events = event_files(tiny_run[0]).Tensors("hyperparameters/text_summary")
    assert len(events) == 1
    text = events[0].tensor_proto.string_val[0].decode()
    for row in [
        "| inner_lr | 0.5 |",
        "| meta_batch_size | 2 |",
        "| hidden_sizes | [8] |",
        "| horizon | 20 |",
        "| sampler.backend | vectorized |",
    ]:
        assert row in text, row


def test_returns_per_step_in_one_run_each(tiny_run, run_scalars):
    """TensorBoard colours lines by run: run train/step_k holds returns/step_k as the tag they share."""
    logged = run_scalars(tiny_run[0])
    for k in [0, 1]:
        assert run_scalars(tiny_run[0] / "train" / f"step_{k}") == {ADAPTATION_TAG: logged[f"returns/step_{k}"]}


def test_the_returns_group_sorts_first(tiny_run, run_scalars):
    """TensorBoard's Scalars and Time Series tabs list tag groups alphabetically and open on the first."""
    groups = {tag.split("/")[0] for tag in run_scalars(tiny_run[0])} | {ADAPTATION_TAG.split("/")[0]}
    assert min(groups) == "adaptation"


def test_adaptation_custom_scalars_chart(tiny_run, event_files):
    """The custom-scalars layout has an "adaptation" multiline chart of the returns' shared tag in every run."""
    events = event_files(tiny_run[0]).Tensors("custom_scalars__config__")
    assert len(events) == 1
    layout = layout_pb2.Layout.FromString(events[0].tensor_proto.string_val[0])
    charts = {chart.title: chart for category in layout.category for chart in category.chart}
    assert list(charts["adaptation"].multiline.tag) == [f"^{ADAPTATION_TAG}$"]


def test_hparams_session_in_the_run_itself(tiny_run, event_files):
    """The HParams tab's experiment (every config key; the returns per step as metrics) and the session start
    (the run's values, named by its directory) are written once, in the run itself."""
    run_dir = tiny_run[0]
    accumulator = event_files(run_dir)
    for tag in [hparams_metadata.EXPERIMENT_TAG, hparams_metadata.SESSION_START_INFO_TAG]:
        assert len(accumulator.Tensors(tag)) == 1, tag
    content = accumulator.SummaryMetadata(hparams_metadata.EXPERIMENT_TAG).plugin_data.content
    experiment = hparams_metadata.parse_experiment_plugin_data(content)
    assert [metric.name.tag for metric in experiment.metric_infos] == ["returns/step_0", "returns/step_1"]
    content = accumulator.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG).plugin_data.content
    session = hparams_metadata.parse_session_start_info_plugin_data(content)
    assert {info.name for info in experiment.hparam_infos} == set(session.hparams)
    assert session.group_name == run_dir.name
    assert session.hparams["inner_lr"].number_value == 0.5
    assert session.hparams["hidden_sizes"].string_value == "[8]"
    assert session.hparams["sampler.backend"].string_value == "vectorized"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url, body=None):
    """GET ``url``, or POST ``body`` as JSON to it; the answer decoded."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_live_tensorboard_serves_the_returns(tiny_run, run_scalars, tmp_path):
    """A real `tensorboard --logdir RUN` server on loopback names the runs, serves returns/step_1 with the logged
    values at steps 1..N, and shows the HParams tab with the run's last returns as its metrics."""
    run_dir, _ = tiny_run
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "tensorboard.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(run_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        logged = run_scalars(run_dir)["returns/step_1"]
        expected_runs = ["train", "train/step_0", "train/step_1"]
        runs, served, deadline = [], [], time.monotonic() + 60
        while runs != expected_runs or len(served) < len(logged):  # the server loads event files in the background
            if server.poll() is not None:
                pytest.fail(f"tensorboard exited: {(tmp_path / 'tensorboard.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"tensorboard did not serve returns/step_1 within 60 s (runs {runs}, got {served})")
            try:
                runs = sorted(get_json(f"{base}/data/runs"))
                if "train" in runs:
                    served = get_json(f"{base}/data/plugin/scalars/scalars?run=train&tag=returns%2Fstep_1")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or the tag is not loaded yet (HTTP 400)
            if runs != expected_runs or len(served) < len(logged):
                time.sleep(0.5)
        assert [step for _, step, _ in served] == [step for step, _ in logged]
        assert [value for _, _, value in served] == pytest.approx([value for _, value in logged], rel=1e-6)

        listing = get_json(f"{base}/data/plugins_listing")
        assert listing["hparams"]["enabled"] and listing["custom_scalars"]["enabled"]
        groups = get_json(
            f"{base}/data/plugin/hparams/session_groups",
            {
                "experimentName": "",
                "startIndex": 0,
                "sliceSize": 10,
                "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            },
        )["sessionGroups"]
        assert [group["name"] for group in groups] == [run_dir.name]
        metrics = {value["name"]["tag"]: value["value"] for value in groups[0]["metricValues"]}
        assert metrics["returns/step_1"] == pytest.approx(logged[-1][1], rel=1e-6)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
