"""The graph's explanation outputs account for the whole score: with every term of the hybrid
switched on, ``Σ_term weights · rows + popularity`` equals ``scores`` for every item, so a
term added to the graph without its explain outputs fails here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.artifacts import EXPLAIN_TERM_OUTPUTS
from app.serving.model.ranking import load_model
from app.training.export import export_model, make_probes
from app.training.hybrid import HybridParams, HybridRecommender
from app.training.types import TrainingData

pytestmark = pytest.mark.integration


# Folded: the regression shares the EASE term's weights; apart: its own decay and window,
# and a max-normalised EASE term.
LAYOUTS = (
    {},
    {"seq_decay": 0.7, "seq_window": 5, "ease_decay": 1.0, "ease_window": 30, "ease_norm": "max"},
)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["folded", "apart"])
def test_term_outputs_sum_to_the_scores_with_every_term_on(
    planted_data: TrainingData, tmp_path: Path, layout: dict[str, object]
) -> None:
    params = HybridParams(
        content_beta=0.1,
        w_trans=0.5,
        w_seq=0.4,
        w_demo=0.3,
        w_pop=0.2,
        history_max=30,
        trans_last=4,
        seq_last=8,
        **layout,  # type: ignore[arg-type]
    )
    assert params.folds_next_items == (not layout)
    fitted = HybridRecommender(params).fit(planted_data)
    export_model(fitted, tmp_path / "v1", version="v1", data_fingerprint="x", offline_metrics={})
    model = load_model(tmp_path / "v1")
    assert model.explainable
    token_of = {i: t for t, i in model.token_index.items()}
    for probe in make_probes(model.n_items, model.manifest.n_tokens, params.history_max, count=18):
        tokens = [token_of[i] for i in probe.tokens.tolist()]
        scores = model.score(probe.history, tokens)
        breakdown = model.score_breakdown(probe.history, tokens)
        assert set(breakdown.terms) == set(EXPLAIN_TERM_OUTPUTS)
        rebuilt = breakdown.popularity.astype(np.float64)
        for name, term in breakdown.terms.items():
            assert term.rows.shape == (len(term.weights), model.n_items), name
            real = term.slots[term.weights > 0]
            own = probe.history if name != "demographic" else probe.tokens
            assert set(real.tolist()) <= set(own.tolist()), name
            rebuilt += np.einsum("s,sn->n", term.weights, term.rows)
        np.testing.assert_allclose(rebuilt, scores, rtol=1e-5, atol=1e-6)
