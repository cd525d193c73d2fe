"""Writes the ONNX fixtures of crates/model/src/onnx.rs from real flights.

Run from anywhere with a Python that has lightgbm, scikit-learn, onnxmltools,
skl2onnx, onnxruntime, onnx, pyarrow and pandas (see README.md for versions):

    python testdata/onnx/make_fixture.py

The outputs are committed; the tests never run this script. It is
deterministic for given library versions.
"""

import sys
from pathlib import Path

import lightgbm
import numpy as np
import onnx
import onnxmltools
import onnxruntime
import pandas as pd
import pyarrow
import pyarrow.parquet as pq
import skl2onnx
import sklearn
from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat
from skl2onnx.common.data_types import FloatTensorType as SkFloat
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
FLIGHTS = HERE.parent.parent / "examples" / "flights" / "data" / "flights.parquet"
# Numeric inputs, in the models' input order.
FEATURES = ["month", "day", "hour", "minute", "distance", "dep_delay"]
TRAIN_ROWS = 3000
SCORE_ROWS = 200
# Of the scored rows, this many are cancelled flights (no dep_delay): missing values.
SCORE_MISSING = 10
SEED = 13
# Opsets every ONNX Runtime since 1.17 (the oldest ort 2.0.0-rc.15 loads) runs.
OPSET = 15
ML_OPSET = 3


def main() -> None:
    flights = pq.read_table(FLIGHTS, columns=FEATURES + ["arr_delay"]).to_pandas()
    rng = np.random.default_rng(SEED)
    flown = flights.index[flights["arr_delay"].notna()].to_numpy()
    cancelled = flights.index[flights["dep_delay"].isna()].to_numpy()
    picked = rng.choice(flown, TRAIN_ROWS + SCORE_ROWS - SCORE_MISSING, replace=False)
    train = flights.loc[picked[:TRAIN_ROWS]]
    score = pd.concat(
        [
            flights.loc[picked[TRAIN_ROWS:]],
            flights.loc[rng.choice(cancelled, SCORE_MISSING, replace=False)],
        ]
    )
    score = score.loc[rng.permutation(score.index)]

    x = train[FEATURES].to_numpy(dtype=np.float64)
    late = (train["arr_delay"] > 15).to_numpy().astype(np.int64)
    delay = train["arr_delay"].to_numpy(dtype=np.float64)
    xs = score[FEATURES].to_numpy(dtype=np.float64)
    complete = ~np.isnan(xs).any(axis=1)

    small = dict(n_estimators=20, num_leaves=8, learning_rate=0.1, random_state=SEED, verbose=-1)
    classifier = lightgbm.LGBMClassifier(**small).fit(x, late)
    regressor = lightgbm.LGBMRegressor(**small).fit(x, delay)
    logistic = Pipeline(
        [("scale", StandardScaler()), ("logistic", LogisticRegression(max_iter=1000))]
    ).fit(x, late)
    zipmap = LogisticRegression(max_iter=1000).fit(x, late)

    n = len(FEATURES)
    save(
        "lgbm_binary.onnx",
        onnxmltools.convert_lightgbm(
            classifier,
            initial_types=[("input", MlFloat([None, n]))],
            zipmap=False,
            target_opset=OPSET,
        ),
    )
    save(
        "lgbm_regression.onnx",
        onnxmltools.convert_lightgbm(
            regressor, initial_types=[("input", MlFloat([None, n]))], target_opset=OPSET
        ),
    )
    save(
        "logistic.onnx",
        skl2onnx.convert_sklearn(
            logistic,
            initial_types=[("input", SkFloat([None, n]))],
            options={id(logistic): {"zipmap": False}},
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        ),
    )
    # skl2onnx's default for a classifier: probabilities as a sequence of maps.
    save(
        "logistic_zipmap.onnx",
        skl2onnx.convert_sklearn(
            zipmap,
            initial_types=[("input", SkFloat([None, n]))],
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        ),
    )

    # Some exporters fix the number of rows at 1; sluice then runs rows one by one.
    save(
        "logistic_one_row.onnx",
        skl2onnx.convert_sklearn(
            logistic,
            initial_types=[("input", SkFloat([1, n]))],
            options={id(logistic): {"zipmap": False}},
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        ),
    )

    rows = pd.DataFrame(xs, columns=FEATURES).astype("Int64")
    rows.to_csv(HERE / "rows.csv", index=False, na_rep="")
    expected = pd.DataFrame(
        {
            "lgbm_binary": classifier.predict_proba(xs)[:, 1],
            "logistic": np.where(
                complete, logistic.predict_proba(np.nan_to_num(xs))[:, 1], np.nan
            ),
            "lgbm_regression": regressor.predict(xs),
        }
    )
    expected.to_csv(HERE / "expected.csv", index=False, na_rep="", float_format="%.17g")

    check(xs, expected)
    print(
        f"lightgbm {lightgbm.__version__}, scikit-learn {sklearn.__version__}, "
        f"onnxmltools {onnxmltools.__version__}, skl2onnx {skl2onnx.__version__}, "
        f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"pandas {pd.__version__}, pyarrow {pyarrow.__version__}, numpy {np.__version__}, "
        f"python {sys.version.split()[0]}"
    )


def save(name: str, model: onnx.ModelProto) -> None:
    # Converters name the graph with a random UUID and list opsets in set order;
    # fixing both makes the files byte-for-byte reproducible.
    model.graph.name = name.removesuffix(".onnx")
    opsets = {o.domain: o.version for o in model.opset_import}
    del model.opset_import[:]
    for domain in sorted(opsets):
        model.opset_import.add(domain=domain, version=opsets[domain])
    onnx.checker.check_model(model)
    (HERE / name).write_bytes(model.SerializeToString())
    print(f"{name}: {(HERE / name).stat().st_size} bytes")


def check(xs: np.ndarray, expected: pd.DataFrame) -> None:
    """ONNX Runtime (Python) must agree with the native models before the Rust test relies on it."""
    x32 = xs.astype(np.float32)
    for name, column, output in [
        ("lgbm_binary.onnx", "lgbm_binary", "probabilities"),
        ("logistic.onnx", "logistic", "probabilities"),
        ("lgbm_regression.onnx", "lgbm_regression", "variable"),
    ]:
        session = onnxruntime.InferenceSession(str(HERE / name), providers=["CPUExecutionProvider"])
        got = np.asarray(session.run([output], {"input": x32})[0], dtype=np.float64)
        got = got[:, 1] if got.ndim == 2 and got.shape[1] == 2 else got.reshape(-1)
        want = expected[column].to_numpy()
        known = ~np.isnan(want)
        error = np.abs(got[known] - want[known]) / np.maximum(1.0, np.abs(want[known]))
        print(f"{name}: {known.sum()} rows, largest relative difference {error.max():.3g}")
        if error.max() > 1e-5:
            raise SystemExit(f"{name}: ONNX Runtime disagrees with the native model")


if __name__ == "__main__":
    main()
