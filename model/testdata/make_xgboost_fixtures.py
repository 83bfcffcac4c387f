#!/usr/bin/env python3
"""Makes the XGBoost parity fixtures for model/xgboost_test.go.

Run from the repository root with Debian's python3-xgboost (1.7) and
python3-pandas:

    python3 model/testdata/make_xgboost_fixtures.py

It reads the committed 10% sample of the UCI Bank Marketing data
(cmd/tact/testdata/bank-additional.csv, CC BY 4.0, see its README), blanks
10% of the numeric values at random so that missing values take each
node's default direction, trains binary:logistic boosters and writes:

  xgb_bank.json         50 trees of depth 4 (the parity model)
  xgb_bank_rows.csv     500 rows: the inputs ("" = missing) and
                        predict_proba of XGBoost itself, column "want"
  xgb_bench.json        200 trees of depth 4 (for the benchmark)

Tact never runs Python: the outputs are committed and the tests read them.
"""
import numpy as np
import pandas as pd
import xgboost as xgb

FEATURES = ["age", "campaign", "pdays", "previous", "emp.var.rate",
            "cons.price.idx", "cons.conf.idx", "euribor3m", "nr.employed"]

df = pd.read_csv("cmd/tact/testdata/bank-additional.csv", sep=";")
X = df[FEATURES].astype("float64").to_numpy()
y = (df["y"] == "yes").astype(int).to_numpy()
rng = np.random.default_rng(20261123)
X[rng.random(X.shape) < 0.10] = np.nan

def train(trees):
    m = xgb.XGBClassifier(n_estimators=trees, max_depth=4, learning_rate=0.1,
                          base_score=0.2, tree_method="exact",
                          random_state=7, n_jobs=1)
    m.fit(X, y)
    m.get_booster().feature_names = FEATURES
    return m

m = train(50)
m.save_model("model/testdata/xgb_bank.json")
rows = X[:500]
want = m.predict_proba(rows)[:, 1]
out = pd.DataFrame(rows, columns=FEATURES)
out["want"] = want
out.to_csv("model/testdata/xgb_bank_rows.csv", index=False,
           float_format="%.17g", na_rep="")
train(200).save_model("model/testdata/xgb_bench.json")
print("xgboost", xgb.__version__, "wrote 3 files")
