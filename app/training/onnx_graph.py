"""The hybrid as an ONNX graph, built node by node with ``onnx.helper`` (no deep-learning
framework needed).

Inputs are index arrays with padding at the *front* (``artifacts`` module docstring): history
``[H]`` and user tokens ``[T]``. The graph computes the recency weights itself, so serving
only maps ids to indices. Each term gathers the rows it needs, then takes one weighted sum,
so a call costs O((H + T) · n_items), never a dense one-hot product over every item.

Blend weights are folded into the initializers (``w_ease · (B + βC) + w_seq · S``, which share
the history's recency weights, ``w_trans · T``, ...), each with an extra all-zero row for the
padding index.

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
    initializers = [
        padded(
            "history_terms",
            (matrices.item_item, params.w_ease),
            (matrices.sequential, params.w_seq),
        ),
        padded("transitions", (matrices.transitions, params.w_trans)),
        padded("demographic", (matrices.demographic, params.w_demo)),
        numpy_helper.from_array(
            (params.w_pop * matrices.popularity).astype(np.float32), "popularity"
        ),
        scalar("pad_item", model.n_items, np.int64),
        scalar("pad_token", model.n_tokens, np.int64),
        *weight_scalars(params.history_decay),
        scalar("trans_decay", params.trans_decay, np.float32),
        numpy_helper.from_array(np.array([-params.history_items], dtype=np.int64), "read_start"),
        numpy_helper.from_array(np.array([-params.trans_items], dtype=np.int64), "recent_start"),
        numpy_helper.from_array(np.array([np.iinfo(np.int64).max], dtype=np.int64), "to_end"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Slice", [INPUT_HISTORY, "read_start", "to_end", "axis0"], ["read"]),
        helper.make_node("Slice", [INPUT_HISTORY, "recent_start", "to_end", "axis0"], ["recent"]),
        *weighted_rows("ease", "read", "pad_item", "history_decay", "history_terms"),
        *weighted_rows("trans", "recent", "pad_item", "trans_decay", "transitions"),
        # decay 1 makes the normalised weights 1/|tokens|: the mean of the token rows.
        *weighted_rows("demo", INPUT_USER_TOKENS, "pad_token", "no_decay", "demographic"),
        helper.make_node("Add", ["ease_sum", "trans_sum"], ["item_terms"]),
        helper.make_node("Add", ["item_terms", "demo_sum"], ["user_terms"]),
        helper.make_node("Reshape", ["user_terms", "flat"], ["user_terms_flat"]),
        helper.make_node("Add", ["user_terms_flat", "popularity"], [OUTPUT_SCORES]),
        helper.make_node("Identity", ["popularity"], [OUTPUT_POPULARITY]),
    ]
    n_items = model.n_items
    float_output = TensorProto.FLOAT
    explain_outputs = [helper.make_tensor_value_info(OUTPUT_POPULARITY, float_output, [n_items])]
    slot_dims = ("H", "R", "T")  # history, recent, tokens
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
    name: str, indices: str, pad: str, decay: str, matrix: str
) -> list[onnx.NodeProto]:
    """Nodes computing ``Σ_j w_j · matrix[indices[j]]`` into ``{name}_sum`` ([1, n_items]),
    with ``w_j = decay ** age_j`` (age 0 = last element), padding masked, normalised to 1."""

    def n(suffix: str) -> str:
        return f"{name}_{suffix}"

    return [
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
        helper.make_node("Div", [n("weights"), n("safe_total")], [n("normalised")]),
        helper.make_node("Unsqueeze", [n("normalised"), "axis0"], [n("row_weights")]),
        helper.make_node("Gather", [matrix, indices], [n("rows")], axis=0),
        helper.make_node("MatMul", [n("row_weights"), n("rows")], [n("sum")]),
    ]


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


def scalar(name: str, value: float, dtype: type[np.generic]) -> TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)
