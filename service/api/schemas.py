"""Request and response schemas; the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

_INSTANCE_SCHEMA = {
    "description": "iris: an object with sepal_length, sepal_width, petal_length, "
                   "petal_width (cm) or a list of those four numbers; "
                   "sentiment: {\"text\": \"...\"} or a plain string",
    "anyOf": [
        {"type": "object", "properties": {
            "sepal_length": {"type": "number"}, "sepal_width": {"type": "number"},
            "petal_length": {"type": "number"}, "petal_width": {"type": "number"}},
         "required": ["sepal_length", "sepal_width", "petal_length", "petal_width"]},
        {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        {"type": "string"},
    ],
}


class ModelPath(BaseModel):
    name: str = Field(description="model name, e.g. iris or sentiment")


class VersionPath(ModelPath):
    version: str = Field(description="model version (a content hash)")


class PredictRequest(BaseModel):
    """A batch of instances for one model, answered in the same order."""

    model_config = ConfigDict(extra="forbid")

    instances: list[Annotated[Any, WithJsonSchema(_INSTANCE_SCHEMA)]] = Field(
        min_length=1, description="at least one and at most INFER_MAX_INSTANCES instances")


class PredictionOut(BaseModel):
    label: str
    scores: dict[str, float] = Field(description="probability per label; they sum to 1")


class PredictResponse(BaseModel):
    model: str
    version: str
    predictions: list[PredictionOut]


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable error code")
    message: str
    details: Any = Field(None, description="field-level problems where input failed validation")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ModelSummary(BaseModel):
    name: str
    versions: list[str]
    default_version: str | None


class ModelList(BaseModel):
    models: list[ModelSummary]


class ModelInfo(BaseModel):
    name: str
    version: str
    default: bool
    labels: list[str]
    scorer: str = Field(description="lean (numpy, checked against the estimator at load) "
                                    "or estimator (scikit-learn's predict_proba)")
    input_schema: dict[str, Any]
    metadata: dict[str, Any] = Field(description="training metadata: params, metrics, data")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    models: dict[str, str | None] = Field(description="default version per model")


# Errors any route may answer: documented on every operation.
COMMON_ERRORS = {status: ErrorResponse for status in (400, 401, 405, 413, 415, 429, 500)}
