"""The hybrid as an ONNX graph, built node by node with ``onnx.helper`` (no deep-learning
framework needed).

Inputs are index arrays with padding at the *front* (``artifacts`` module docstring): history
``[H]`` and user tokens ``[T]``. The graph computes the recency weights itself, so serving
only maps ids to indices. Each term gathers the rows it needs, then takes one weighted sum,
so a call costs O((H + T) · n_items), never a dense one-hot product over every item.

Blend weights are folded into the initializers (``w_trans · T``, ...), each with an extra
all-zero row for the padding index. The next-items regression shares the EASE term's rows
(``w_ease · (B + βC) + w_seq · S``) when both read the same weights
(``HybridParams.folds_next_items``); otherwise it is a term of its own. A max-normalised EASE
term keeps its weight out of the matrix and applies it after dividing by the peak.

Besides ``scores`` the graph outputs each term's slot weights and gathered rows
(``EXPLAIN_TERM_OUTPUTS``) and the popularity term: tensors it computes anyway, fetched by
serving only to explain a score.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.artifacts import (
    EXPLAIN_TERM_OUTPUTS,
    INPUT_HISTORY,
    INPUT_USER_TOKENS,
    OUTPUT_POPULARITY,
    OUTPUT_SCORES,
)
from app.training.hybrid import HybridRecommender

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; older runtimes refuse newer ones
# Guards the weight normalisation when every index is padding: the weights are then all
# zero and the term contributes nothing, as in the numpy reference.
EPSILON = 1e-12
PADDED_BLOCK_ROWS = 1024


def build_graph(model: HybridRecommender) -> onnx.ModelProto:
    """The scoring graph of a fitted ``HybridRecommender``."""
    matrices = model.matrices()
    params = model.params
    folded = params.folds_next_items
    ease_weight = params.w_ease if params.ease_norm == "sum" else 1.0
    history_terms = [(matrices.item_item, ease_weight)]
    if folded and params.w_seq:
        history_terms.append((matrices.sequential, params.w_seq))
    initializers = [
        padded("history_terms", *history_terms),
        padded("transitions", (matrices.transitions, params.w_trans)),
        padded("demographic", (matrices.demographic, params.w_demo)),
        numpy_helper.from_array(
            (params.w_pop * matrices.popularity).astype(np.float32), "popularity"
        ),
        scalar("pad_item", model.n_items, np.int64),
        scalar("pad_token", model.n_tokens, np.int64),
        *weight_scalars(params.ease_decay),
        scalar("trans_decay", params.trans_decay, np.float32),
        scalar("seq_decay", params.seq_decay, np.float32),
        start("read_start", -params.ease_items),
        start("recent_start", -params.trans_items),
        # Folded (or weighted 0), the regression's own term reads no item at all.
        start("seq_start", np.iinfo(np.int64).max if folded else -params.seq_items),
        start("to_end", np.iinfo(np.int64).max),
        start("axis0", 0),
        start("flat", -1),
    ]
    if not folded:
        initializers.append(padded("next_items", (matrices.sequential, params.w_seq)))
    peak = None
    if params.ease_norm == "max":  # only read then: an unused initializer is a runtime warning
        peak = "ease_weight"
        initializers.append(scalar("ease_weight", params.w_ease, np.float32))
    nodes = [
        helper.make_node("Slice", [INPUT_HISTORY, "read_start", "to_end", "axis0"], ["read"]),
        helper.make_node("Slice", [INPUT_HISTORY, "recent_start", "to_end", "axis0"], ["recent"]),
        helper.make_node("Slice", [INPUT_HISTORY, "seq_start", "to_end", "axis0"], ["seq_read"]),
        *weighted_rows("ease", "read", "pad_item", "history_decay", "history_terms", peak),
        *weighted_rows("trans", "recent", "pad_item", "trans_decay", "transitions"),
        *weighted_rows(
            "seq", "seq_read", "pad_item", "seq_decay", "history_terms" if folded else "next_items"
        ),
        # decay 1 makes the normalised weights 1/|tokens|: the mean of the token rows.
        *weighted_rows("demo", INPUT_USER_TOKENS, "pad_token", "no_decay", "demographic"),
        helper.make_node("Add", ["ease_sum", "trans_sum"], ["item_terms"]),
        helper.make_node("Add", ["item_terms", "seq_sum"], ["sequence_terms"]),
        helper.make_node("Add", ["sequence_terms", "demo_sum"], ["user_terms"]),
        helper.make_node("Reshape", ["user_terms", "flat"], ["user_terms_flat"]),
        helper.make_node("Add", ["user_terms_flat", "popularity"], [OUTPUT_SCORES]),
        helper.make_node("Identity", ["popularity"], [OUTPUT_POPULARITY]),
    ]
    n_items = model.n_items
    float_output = TensorProto.FLOAT
    explain_outputs = [helper.make_tensor_value_info(OUTPUT_POPULARITY, float_output, [n_items])]
    slot_dims = ("H", "R", "S", "T")  # history, recent, next-items, tokens
    for slots, (_, weights, rows) in zip(slot_dims, EXPLAIN_TERM_OUTPUTS.values(), strict=True):
        explain_outputs += [
            helper.make_tensor_value_info(weights, float_output, [slots]),
            helper.make_tensor_value_info(rows, float_output, [slots, n_items]),
        ]
    graph = helper.make_graph(
        nodes,
        "recserve_hybrid",
        inputs=[
            helper.make_tensor_value_info(INPUT_HISTORY, TensorProto.INT64, ["H"]),
            helper.make_tensor_value_info(INPUT_USER_TOKENS, TensorProto.INT64, ["T"]),
        ],
        outputs=[
            helper.make_tensor_value_info(OUTPUT_SCORES, float_output, [n_items]),
            *explain_outputs,
        ],
        initializer=initializers,
    )
    onnx_model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="recserve"
    )
    onnx_model.ir_version = IR_VERSION
    return onnx_model


def weighted_rows(
    name: str, indices: str, pad: str, decay: str, matrix: str, peak_weight: str | None = None
) -> list[onnx.NodeProto]:
    """Nodes computing ``Σ_j w_j · matrix[indices[j]]`` into ``{name}_sum`` ([1, n_items]),
    with ``w_j = decay ** age_j`` (age 0 = last element), padding masked, normalised to 1.

    With ``peak_weight`` (a scalar's name) the sum is then scaled to ``peak_weight`` over its
    largest absolute value, and ``{name}_normalised`` carries that factor too, so the slot
    weights times the rows still add up to the term."""

    def n(suffix: str) -> str:
        return f"{name}_{suffix}"

    unit = n("unit") if peak_weight else n("normalised")
    unit_sum = n("unit_sum") if peak_weight else n("sum")
    nodes = [
        helper.make_node("Shape", [indices], [n("shape")]),
        helper.make_node("Cast", [n("shape")], [n("length_1d")], to=TensorProto.FLOAT),
        helper.make_node("Squeeze", [n("length_1d")], [n("length")]),
        helper.make_node("Sub", [n("length"), "one"], [n("oldest_age")]),
        helper.make_node("Range", [n("oldest_age"), "minus_one", "minus_one"], [n("ages")]),
        helper.make_node("Pow", [decay, n("ages")], [n("raw_weights")]),
        helper.make_node("Equal", [indices, pad], [n("is_pad")]),
        helper.make_node("Not", [n("is_pad")], [n("is_real")]),
        helper.make_node("Cast", [n("is_real")], [n("mask")], to=TensorProto.FLOAT),
        helper.make_node("Mul", [n("raw_weights"), n("mask")], [n("weights")]),
        helper.make_node("ReduceSum", [n("weights")], [n("total")], keepdims=0),
        helper.make_node("Max", [n("total"), "epsilon"], [n("safe_total")]),
        helper.make_node("Div", [n("weights"), n("safe_total")], [unit]),
        helper.make_node("Unsqueeze", [unit, "axis0"], [n("row_weights")]),
        helper.make_node("Gather", [matrix, indices], [n("rows")], axis=0),
        helper.make_node("MatMul", [n("row_weights"), n("rows")], [unit_sum]),
    ]
    if peak_weight:
        nodes += [
            helper.make_node("Abs", [unit_sum], [n("magnitudes")]),
            helper.make_node("ReduceMax", [n("magnitudes")], [n("peak")], keepdims=0),
            helper.make_node("Max", [n("peak"), "epsilon"], [n("safe_peak")]),
            helper.make_node("Div", [peak_weight, n("safe_peak")], [n("scale")]),
            helper.make_node("Mul", [unit, n("scale")], [n("normalised")]),
            helper.make_node("Mul", [unit_sum, n("scale")], [n("sum")]),
        ]
    return nodes


def weight_scalars(history_decay: float) -> list[TensorProto]:
    """The constants every recency-weighting node set reads (``weighted_rows`` and the
    two-stage ranker's history mean)."""
    return [
        scalar("history_decay", history_decay, np.float32),
        scalar("no_decay", 1.0, np.float32),
        scalar("one", 1.0, np.float32),
        scalar("minus_one", -1.0, np.float32),
        scalar("epsilon", EPSILON, np.float32),
    ]


def padded(name: str, *weighted: tuple[np.ndarray, float]) -> TensorProto:
    """``Σ weight · matrix`` over ``weighted`` (same shapes) as float32, with one zero row
    appended for the padding index."""
    rows, columns = weighted[0][0].shape
    padded = np.zeros((rows + 1, columns), dtype=np.float32)
    for matrix, weight in weighted:
        # In row blocks: no float64 or full-size temporary of an items x items matrix.
        for start in range(0, rows, PADDED_BLOCK_ROWS):
            stop = min(start + PADDED_BLOCK_ROWS, rows)
            padded[start:stop] += np.float32(weight) * matrix[start:stop].astype(np.float32)
    return numpy_helper.from_array(padded, name)


def start(name: str, value: int) -> TensorProto:
    """A one-element int64 tensor: a Slice bound or axis."""
    return numpy_helper.from_array(np.array([value], dtype=np.int64), name)


def scalar(name: str, value: float, dtype: type[np.generic]) -> TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)
