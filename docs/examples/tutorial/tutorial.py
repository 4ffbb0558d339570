# ruff: noqa: E402 - a notebook: each cell imports what it uses
# %% A method written in a notebook cell: the Semantic AutoEncoder (Kodirov et al., 2017)
import numpy as np
import torch

import zsbench


class SemanticAutoEncoder:
    """Project features onto class embeddings with an encoder W whose transpose decodes them
    back; scores are cosine similarities between projected features and class embeddings."""

    def __init__(self, lam: float = 1.0):
        self.lam = lam

    def fit(self, data: zsbench.FitData, context: zsbench.RunContext):
        x = data.features.T.astype(np.float64)  # d x N
        s = data.classes.embeddings[data.labels].T.astype(np.float64)  # k x N
        # min ||X - W'S||^2 + lam ||WX - S||^2 is the Sylvester equation A W + W B = C with
        # A = S S', B = lam X X', C = (1 + lam) S X'; A and B are symmetric, so in their
        # eigenbases it is solved element by element.
        a, u = np.linalg.eigh(s @ s.T)
        b, v = np.linalg.eigh(self.lam * x @ x.T)
        w = u @ ((u.T @ ((1 + self.lam) * s @ x.T) @ v) / (a[:, None] + b[None, :])) @ v.T
        classes = torch.nn.functional.normalize(torch.as_tensor(data.classes.embeddings, dtype=torch.float64), dim=1)
        return Scorer(torch.as_tensor(w), classes)


class Scorer:
    def __init__(self, w: torch.Tensor, classes: torch.Tensor):
        self.w, self.classes = w, classes

    def scores(self, inputs: zsbench.EvalInputs) -> zsbench.Scores:
        z = torch.as_tensor(inputs.features, dtype=torch.float64) @ self.w.T
        return zsbench.Scores(torch.nn.functional.normalize(z, dim=1) @ self.classes.T)


# %% Evaluate it on the demo data: lam is chosen on validation, 3 seeds, with and without calibration
sae = zsbench.evaluate(SemanticAutoEncoder, datasets=["synthetic"], seeds=3,
                       calibrators=["none", "calibrated-stacking"], grid={"lam": [0.01, 0.1, 1.0, 10.0]},
                       results="tutorial.sqlite")
sae.summary()[["dataset", "method", "calibrator", "seeds", "u", "s", "H", "H_ci"]]

# %% Compare with ESZSL on the same data, in one data frame
import pandas as pd

eszsl = zsbench.evaluate("eszsl", datasets=["synthetic"], seeds=3, calibrators=["none", "calibrated-stacking"],
                         results="tutorial.sqlite")
table = pd.concat([sae.summary(), eszsl.summary()], ignore_index=True)
table[["method", "calibrator", "u", "s", "H", "H_ci"]]

# %% A plot of H with its 95% confidence interval
import matplotlib.pyplot as plt
import pandas as pd


def plot_h(table: pd.DataFrame, title: str):
    labels = table.method + " + " + table.calibrator
    figure, axes = plt.subplots(figsize=(6, 2.5))
    axes.barh(labels, table.H, xerr=table.H_ci.fillna(0), color="teal")
    axes.set_xlabel("H (%), mean and 95% CI over seeds")
    axes.set_title(title)
    figure.tight_layout()
    return figure


# %% H on the demo data
plot_h(table, "demo data").savefig("tutorial-demo.png")

# %% On real FLO (EfficientNet-Lite0 features), when the data is there: calibrated stacking
flo = {"name": "flo", "features": "efficientnet_lite0.mat", "images": False}
real = pd.concat([
    zsbench.evaluate(SemanticAutoEncoder, datasets=[flo], seeds=3, calibrators=["calibrated-stacking"],
                     grid={"lam": [0.01, 0.1, 1.0, 10.0]}, results="tutorial.sqlite").summary(),
    zsbench.evaluate("eszsl", datasets=[flo], seeds=3, calibrators=["calibrated-stacking"],
                     results="tutorial.sqlite").summary(),
], ignore_index=True)
plot_h(real, "FLO, EfficientNet-Lite0 features").savefig("tutorial-flo.png")
real[["method", "calibrator", "u", "s", "H", "H_ci"]]
