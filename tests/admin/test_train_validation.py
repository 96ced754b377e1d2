"""``POST /v1/admin/train`` rejects what cannot run with 422 before anything is queued:
names that are paths, unknown data sets, unknown or bad hyper-parameters."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import TEST_DATA, MakeSettings
from fastapi.testclient import TestClient
from pydantic.fields import FieldInfo

from app.main import create_app
from app.operating.schemas import Hyperparameters
from training.config import SentimentTrainConfig, SlotTrainConfig

GOOD: dict[str, Any] = {"task": "slots", "model": "demo", "dataset": "demo"}
BAD_NAMES = [
    "../demo",
    "..",
    ".",
    "/etc/passwd",
    "/tmp",
    "demo/../demo",
    "demo/",
    "~root",
    "Demo",
    "de mo",
    "demo\x00",
    "",
    "-demo",
    "a" * 65,
    "%2e%2e",
]


@pytest.fixture
def client(make_settings: MakeSettings) -> Iterator[TestClient]:
    # The job runner polls once an hour: queued jobs stay queued.
    with TestClient(create_app(make_settings(admin_token="t", job_poll_seconds=3600))) as c:
        c.headers.update({"Authorization": "Bearer t"})
        yield c


def _jobs(client: TestClient) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = client.get("/v1/admin/jobs").json()["jobs"]
    return jobs


@pytest.mark.parametrize("field", ["dataset", "model"])
@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
def test_names_that_are_not_plain_names_are_422(client: TestClient, field: str, name: str) -> None:
    response = client.post("/v1/admin/train", json=GOOD | {field: name})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert f"at '{field}'" in response.json()["error"]["message"]
    assert _jobs(client) == []


@pytest.mark.parametrize(
    "path", ["/v1/admin/models/%2E%2E/activate", "/v1/admin/models/Demo/rollback"]
)
def test_model_names_in_paths_are_checked(client: TestClient, path: str) -> None:
    body = {"version": "20260101T000000000001Z"} if path.endswith("activate") else {}
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text


def test_versions_are_checked(client: TestClient) -> None:
    for version in ("../../etc", "latest", "20260101T000000000001Z/.."):
        response = client.post("/v1/admin/models/demo/activate", json={"version": version})
        assert response.status_code == 422, response.text


def test_unknown_dataset_lists_the_available_ones(client: TestClient) -> None:
    response = client.post("/v1/admin/train", json=GOOD | {"dataset": "nope"})
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "unknown_dataset",
            "message": "no slots data set named 'nope' in the data directory; "
            "available: corrupt, demo, tiny",
        }
    }
    response = client.post("/v1/admin/train", json=GOOD | {"task": "sentiment", "dataset": "tiny"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].endswith("available: demo")
    assert _jobs(client) == []


def test_a_symlink_out_of_the_data_dir_is_not_a_dataset(
    client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(TEST_DATA / "tiny_slots", outside)
    (data_dir / "escape").symlink_to(outside, target_is_directory=True)
    response = client.post("/v1/admin/train", json=GOOD | {"dataset": "escape"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_dataset"
    assert "escapes" in response.json()["error"]["message"]
    assert _jobs(client) == []


@pytest.mark.parametrize(
    "hyperparameters,fragment",
    [
        ({"epochs": 0}, "greater than or equal to 1"),
        ({"epochs": "2"}, "valid integer"),
        ({"epochs": 2.5}, "valid integer"),
        ({"lr": -1}, "greater than 0"),
        ({"dropout": 1.0}, "less than 1"),
        ({"cell": "transformer"}, "'lstm', 'gru' or 'irnn'"),
        ({"hidden_size": True}, "valid integer"),
        ({"nope": 1}, "unknown field 'hyperparameters.nope'"),
        ({"threads": 8}, "unknown field 'hyperparameters.threads'"),
        ({"device": "cuda"}, "unknown field 'hyperparameters.device'"),
    ],
)
def test_bad_hyperparameters_are_422(
    client: TestClient, hyperparameters: dict[str, Any], fragment: str
) -> None:
    response = client.post("/v1/admin/train", json=GOOD | {"hyperparameters": hyperparameters})
    assert response.status_code == 422, response.text
    assert fragment in response.json()["error"]["message"]
    assert _jobs(client) == []


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"task": "sentiment", "hyperparameters": {"intent_weight": 2.0}},
            "'intent_weight' applies to slot taggers only",
        ),
        ({"model": "demo-sentiment"}, "model 'demo-sentiment' is served as a sentiment model"),
        ({"task": "sentiment"}, "model 'demo' is served as a slots model"),
    ],
)
def test_jobs_that_cannot_fit_the_model_are_422(
    client: TestClient, overrides: dict[str, Any], message: str
) -> None:
    response = client.post("/v1/admin/train", json=GOOD | overrides)
    assert response.status_code == 422, response.text
    assert response.json() == {"error": {"code": "invalid_job", "message": message}}
    assert _jobs(client) == []


@pytest.mark.parametrize(
    "body", [GOOD | {"activate": "sometimes"}, GOOD | {"task": "ner"}, {"task": "slots"}]
)
def test_bad_fields_are_422(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/v1/admin/train", json=body).status_code == 422
    assert _jobs(client) == []


def test_a_valid_request_is_queued(client: TestClient) -> None:
    response = client.post("/v1/admin/train", json=GOOD | {"hyperparameters": {"epochs": 1}})
    assert response.status_code == 202
    [job] = _jobs(client)
    assert job["id"] == response.json()["job_id"]
    assert job["status"] == "queued"
    assert job["hyperparameters"] == {"epochs": 1}


# Folders and files on the training machine: the operator's, not the API's.
PATHS = [
    "pretrained_encoder",
    "intent_encoder",
    "distill_from",
    "distill_encoder",
    "distill_texts",
    "distill_cache",
]


def test_every_trainer_setting_but_threads_device_and_paths_is_exposed() -> None:
    trainer = set(SlotTrainConfig.model_fields) | set(SentimentTrainConfig.model_fields)
    # The machine's, not the API's.
    operators = {"threads", "device", *PATHS}
    assert set(Hyperparameters.model_fields) == trainer - operators


@pytest.mark.parametrize("name", PATHS)
def test_a_path_is_not_a_hyperparameter(client: TestClient, name: str) -> None:
    body = GOOD | {"hyperparameters": {name: "/etc"}}
    assert client.post("/v1/admin/train", json=body).status_code == 422
    assert _jobs(client) == []


@pytest.mark.parametrize("name", sorted(Hyperparameters.model_fields))
def test_hyperparameter_bounds_match_the_trainer(name: str) -> None:
    """The API checks what ``TrainConfig`` checks, so a job it accepts does not fail on it."""
    config_fields = SlotTrainConfig.model_fields | SentimentTrainConfig.model_fields
    assert name in config_fields
    api: FieldInfo = Hyperparameters.model_fields[name]
    trainer_fields = [
        f.model_fields[name]
        for f in (SlotTrainConfig, SentimentTrainConfig)
        if name in f.model_fields
    ]
    for trainer in trainer_fields:
        assert api.metadata == trainer.metadata
