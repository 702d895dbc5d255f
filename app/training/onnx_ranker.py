"""The two-stage model's ranking graph (``two_stage.py``), built node by node like
``onnx_graph.py``.

The graph holds only what is small: the token vectors and the blend weights. The item
embeddings (1M x 64 at the largest catalogue) stay in a memory-mapped ``.npy`` that every
worker shares, and serving feeds the rows a call needs: the history's and the candidates'.
One call computes the user vector (also an output: the ANN query) and the candidates' scores;
with no candidates (C = 0) it is the query step alone.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.artifacts import (
    INPUT_CANDIDATE_FEATURES,
    INPUT_CANDIDATE_VECTORS,
    INPUT_HISTORY_VECTORS,
    INPUT_USER_TOKENS,
    OUTPUT_SCORES,
    OUTPUT_USER_VECTOR,
)
from app.retrieval import FEATURE_COLUMNS
from app.training.onnx_graph import (
    IR_VERSION,
    OPSET,
    padded,
    scalar,
    weight_scalars,
    weighted_rows,
)
from app.training.two_stage import TwoStageRecommender


def build_ranker_graph(model: TwoStageRecommender) -> onnx.ModelProto:
    """The ranking graph of a fitted ``TwoStageRecommender``."""
    if model.token_vectors_ is None or model.item_vectors_ is None:
        raise RuntimeError("TwoStageRecommender is not fitted; call fit() first")
    params = model.params
    dimensions = model.item_vectors_.shape[1]
    warm, cold = (model.feature_weights(has_history=h) for h in (True, False))
    initializers = [
        padded("token_vectors", (model.token_vectors_, 1.0)),  # w_demo is folded in already
        numpy_helper.from_array(warm.astype(np.float32)[:, None], "warm_feature_weights"),
        numpy_helper.from_array(cold.astype(np.float32)[:, None], "cold_feature_weights"),
        scalar("pad_token", model.n_tokens, np.int64),
        *weight_scalars(params.history_decay),
        scalar("w_history", params.w_history, np.float32),
        scalar("zero_i", 0, np.int64),
        scalar("one_i", 1, np.int64),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "column"),
    ]
    nodes = [
        *_history_mean(),
        *weighted_rows("demo", INPUT_USER_TOKENS, "pad_token", "no_decay", "token_vectors"),
        helper.make_node("Mul", ["history_sum", "w_history"], ["history_part"]),
        helper.make_node("Add", ["history_part", "demo_sum"], ["user_row"]),  # [1, d]
        helper.make_node("Reshape", ["user_row", "flat"], [OUTPUT_USER_VECTOR]),
        helper.make_node("Reshape", [OUTPUT_USER_VECTOR, "column"], ["user_column"]),
        helper.make_node("MatMul", [INPUT_CANDIDATE_VECTORS, "user_column"], ["similarity"]),
        # More rows than the padding one: the user has a history (the warm weights apply).
        helper.make_node("Greater", ["history_rows", "one_i"], ["has_history"]),
        helper.make_node(
            "Where",
            ["has_history", "warm_feature_weights", "cold_feature_weights"],
            ["feature_weights"],
        ),
        helper.make_node("MatMul", [INPUT_CANDIDATE_FEATURES, "feature_weights"], ["prior"]),
        helper.make_node("Add", ["similarity", "prior"], ["score_column"]),
        helper.make_node("Reshape", ["score_column", "flat"], [OUTPUT_SCORES]),
    ]
    graph = helper.make_graph(
        nodes,
        "recserve_two_stage_ranker",
        inputs=[
            helper.make_tensor_value_info(
                INPUT_HISTORY_VECTORS, TensorProto.FLOAT, ["H", dimensions]
            ),
            helper.make_tensor_value_info(INPUT_USER_TOKENS, TensorProto.INT64, ["T"]),
            helper.make_tensor_value_info(
                INPUT_CANDIDATE_VECTORS, TensorProto.FLOAT, ["C", dimensions]
            ),
            helper.make_tensor_value_info(
                INPUT_CANDIDATE_FEATURES, TensorProto.FLOAT, ["C", len(FEATURE_COLUMNS)]
            ),
        ],
        outputs=[
            helper.make_tensor_value_info(OUTPUT_SCORES, TensorProto.FLOAT, ["C"]),
            helper.make_tensor_value_info(OUTPUT_USER_VECTOR, TensorProto.FLOAT, [dimensions]),
        ],
        initializer=initializers,
    )
    onnx_model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="recserve"
    )
    onnx_model.ir_version = IR_VERSION
    return onnx_model


def _history_mean() -> list[onnx.NodeProto]:
    """``Σ_j w_j · history_vectors[j]`` into ``history_sum`` ([1, d]): ``w_j = decay ** age``
    (age 0 = last row), the first row (the padding) weighted 0, normalised to sum 1."""
    vectors = INPUT_HISTORY_VECTORS
    return [
        helper.make_node("Shape", [vectors], ["history_shape"]),
        helper.make_node("Gather", ["history_shape", "zero_i"], ["history_rows"], axis=0),
        helper.make_node("Cast", ["history_rows"], ["history_length"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["history_length", "one"], ["history_oldest_age"]),
        helper.make_node(
            "Range", ["history_oldest_age", "minus_one", "minus_one"], ["history_ages"]
        ),
        helper.make_node("Pow", ["history_decay", "history_ages"], ["history_raw_weights"]),
        helper.make_node("Range", ["zero_i", "history_rows", "one_i"], ["history_positions"]),
        helper.make_node("Greater", ["history_positions", "zero_i"], ["history_is_real"]),
        helper.make_node("Cast", ["history_is_real"], ["history_mask"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["history_raw_weights", "history_mask"], ["history_weights"]),
        helper.make_node("ReduceSum", ["history_weights"], ["history_total"], keepdims=0),
        helper.make_node("Max", ["history_total", "epsilon"], ["history_safe_total"]),
        helper.make_node("Div", ["history_weights", "history_safe_total"], ["history_norm"]),
        helper.make_node("Unsqueeze", ["history_norm", "axis0"], ["history_row_weights"]),
        helper.make_node("MatMul", ["history_row_weights", vectors], ["history_sum"]),
    ]
