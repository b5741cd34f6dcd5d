"""Quality floors, measured again on held-out data by the served models."""

from sklearn.model_selection import train_test_split

from service.models import sentiment
from service.models.evaluation import classification_metrics
from service.models.registry import Registry


def test_sentiment_beats_the_floor_and_vader_on_its_held_out_split(models_dir):
    model = Registry.load(models_dir).get("sentiment")
    params = model.metadata["params"]
    texts, labels, _ = sentiment.load_corpus()
    _, x_test, _, y_test = train_test_split(texts, labels, test_size=params["test_size"],
                                            stratify=labels, random_state=params["seed"])
    predicted = [p.label for p in model.predict(x_test)]
    measured = classification_metrics(y_test, predicted, sentiment.LABELS)
    recorded = model.metadata["metrics"]
    assert abs(measured["macro_f1"] - recorded["macro_f1"]) < 1e-9, "metadata must not lie"
    assert measured["macro_f1"] >= 0.70
    assert measured["macro_f1"] >= recorded["baselines"]["vader"]["macro_f1"] + 0.2
    assert measured["macro_f1"] > recorded["baselines"]["majority"]["macro_f1"]


def test_iris_cross_validated_accuracy_is_at_least_093(models_dir):
    model = Registry.load(models_dir).get("iris")
    metrics = model.metadata["metrics"]
    assert metrics["evaluation"].startswith("5-fold")
    assert metrics["accuracy"] >= 0.93
