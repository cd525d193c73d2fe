"""Builds an ONNX graph of the sentence embedding model all-MiniLM-L6-v2.

    python minilm_onnx.py MODEL_DIR OUT.onnx

Reads MODEL_DIR/model.safetensors and MODEL_DIR/config.json (a BERT encoder)
and writes the sentence-transformers pipeline: BERT last hidden state, mean
pooling over attention_mask, L2 normalisation. Inputs `input_ids`,
`attention_mask`, `token_type_ids` (int64 [batch, seq]); output
`sentence_embedding` (float32 [batch, hidden]). Opset 17, no external data.

The script only reshapes the weights into a graph; the weights are
sentence-transformers/all-MiniLM-L6-v2, Apache-2.0. Needs onnx, numpy and
safetensors; the output is the same byte for byte on every run.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17
IR_VERSION = 8  # the lowest IR version that carries opset 17; old runtimes load it


def fail(message):
    sys.exit(f"minilm_onnx: {message}")


def load_config(path):
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(f"cannot read {path}: {e}")
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if not isinstance(cfg.get(key), int):
            fail(f"{path} has no integer {key!r}")
    if cfg.get("model_type", "bert") != "bert":
        fail(f"{path}: model_type {cfg['model_type']!r}, expected 'bert'")
    if cfg.get("hidden_act", "gelu") != "gelu":
        fail(f"{path}: hidden_act {cfg['hidden_act']!r}, only 'gelu' (erf) is supported")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        fail(f"{path}: only absolute position embeddings are supported")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        fail(f"{path}: hidden_size is not a multiple of num_attention_heads")
    return cfg


def load_weights(path, cfg):
    try:
        raw = load_file(str(path))
    except Exception as e:  # safetensors raises several types
        fail(f"cannot read {path}: {e}")
    # Checkpoints saved from BertModel have bare names; those from a task model
    # prefix them with "bert.".
    weights = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in raw.items()}

    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    expected = {
        "embeddings.word_embeddings.weight": (None, h),
        "embeddings.position_embeddings.weight": (None, h),
        "embeddings.token_type_embeddings.weight": (None, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            expected[f"{p}attention.self.{name}.weight"] = (h, h)
            expected[f"{p}attention.self.{name}.bias"] = (h,)
        expected[f"{p}attention.output.dense.weight"] = (h, h)
        expected[f"{p}attention.output.dense.bias"] = (h,)
        expected[f"{p}attention.output.LayerNorm.weight"] = (h,)
        expected[f"{p}attention.output.LayerNorm.bias"] = (h,)
        expected[f"{p}intermediate.dense.weight"] = (inter, h)
        expected[f"{p}intermediate.dense.bias"] = (inter,)
        expected[f"{p}output.dense.weight"] = (h, inter)
        expected[f"{p}output.dense.bias"] = (h,)
        expected[f"{p}output.LayerNorm.weight"] = (h,)
        expected[f"{p}output.LayerNorm.bias"] = (h,)

    missing = [name for name in expected if name not in weights]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        fail(f"{path} lacks {len(missing)} tensor(s) the graph needs: {shown}")
    for name, shape in expected.items():
        t = weights[name]
        if t.dtype != np.float32:
            fail(f"{path}: {name} is {t.dtype}, expected float32")
        if len(t.shape) != len(shape) or any(e is not None and e != d for e, d in zip(shape, t.shape)):
            fail(f"{path}: {name} has shape {list(t.shape)}, expected {[d if d else '*' for d in shape]}")
    return weights


class Graph:
    def __init__(self):
        self.nodes = []
        self.inits = []
        self.count = 0

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, name, values, dtype):
        return self.init(name, np.array(values, dtype=dtype))

    def op(self, op_type, inputs, name=None, **attrs):
        self.count += 1
        out = name or f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"n{self.count}_{op_type}", **attrs))
        return out


def build(cfg, w):
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    head_dim = h // heads
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    g = Graph()

    # Shared constants.
    one = g.const("one", 1.0, np.float32)
    half = g.const("half", 0.5, np.float32)
    sqrt2 = g.const("sqrt2", math.sqrt(2.0), np.float32)
    scale = g.const("sqrt_head_dim", math.sqrt(head_dim), np.float32)
    mask_min = g.const("mask_min", np.finfo(np.float32).min, np.float32)
    tiny_count = g.const("min_count", 1e-9, np.float32)
    tiny_norm = g.const("min_norm", 1e-12, np.float32)
    zero_1d = g.const("zero_1d", [0], np.int64)
    one_1d = g.const("one_1d", [1], np.int64)
    two_1d = g.const("two_1d", [2], np.int64)
    split_heads = g.const("split_heads_shape", [0, 0, heads, head_dim], np.int64)
    merge_heads = g.const("merge_heads_shape", [0, 0, h], np.int64)

    def linear(x, prefix):
        wt = g.init(f"{prefix}.weight_t", w[f"{prefix}.weight"].T)  # [in, out]
        b = g.init(f"{prefix}.bias", w[f"{prefix}.bias"])
        return g.op("Add", [g.op("MatMul", [x, wt]), b])

    def layer_norm(x, prefix):
        gamma = g.init(f"{prefix}.weight", w[f"{prefix}.weight"])
        beta = g.init(f"{prefix}.bias", w[f"{prefix}.bias"])
        return g.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=eps)

    # Embeddings: word + position + token type, then LayerNorm.
    word = g.op("Gather", [g.init("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"]), "input_ids"])
    seq_len = g.op("Slice", [g.op("Shape", ["input_ids"]), one_1d, two_1d])
    pos_table = g.init("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"])
    pos = g.op("Slice", [pos_table, zero_1d, seq_len, zero_1d])  # [seq, hidden]
    types = g.op("Gather", [g.init("embeddings.token_type_embeddings.weight", w["embeddings.token_type_embeddings.weight"]), "token_type_ids"])
    x = layer_norm(g.op("Add", [g.op("Add", [word, pos]), types]), "embeddings.LayerNorm")

    # Additive attention mask [batch, 1, 1, seq]: 0 where attended, float32 min where padded.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    bias = g.op("Mul", [g.op("Sub", [one, mask]), mask_min])
    bias = g.op("Unsqueeze", [bias, g.const("mask_axes", [1, 2], np.int64)])

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = g.op("Transpose", [g.op("Reshape", [linear(x, p + "attention.self.query"), split_heads])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [linear(x, p + "attention.self.key"), split_heads])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [linear(x, p + "attention.self.value"), split_heads])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k]), scale]), bias])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_heads])
        x = layer_norm(g.op("Add", [linear(ctx, p + "attention.output.dense"), x]), p + "attention.output.LayerNorm")

        inner = linear(x, p + "intermediate.dense")
        erf = g.op("Erf", [g.op("Div", [inner, sqrt2])])
        gelu = g.op("Mul", [g.op("Mul", [inner, g.op("Add", [erf, one])]), half])
        x = layer_norm(g.op("Add", [linear(gelu, p + "output.dense"), x]), p + "output.LayerNorm")

    # Mean pooling over the attention mask, then L2 normalisation.
    mask3 = g.op("Unsqueeze", [mask, two_1d])  # [batch, seq, 1]
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask3]), one_1d], keepdims=0)  # [batch, hidden]
    count = g.op("Max", [g.op("ReduceSum", [mask3, one_1d], keepdims=0), tiny_count])  # [batch, 1]
    mean = g.op("Div", [summed, count])
    norm = g.op("Max", [g.op("ReduceL2", [mean], axes=[1], keepdims=1), tiny_norm])
    g.op("Div", [mean, norm], name="sentence_embedding")

    dims = ["batch", "sequence"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in ("input_ids", "attention_mask", "token_type_ids")]
    outputs = [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", h])]
    graph = helper.make_graph(g.nodes, "all_minilm_l6_v2", inputs, outputs, g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="sluice scripts/minilm_onnx.py",
        doc_string="sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0): mean-pooled, L2-normalised BERT embeddings",
    )
    model.ir_version = IR_VERSION
    return model


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: python minilm_onnx.py MODEL_DIR OUT.onnx")
    model_dir, out = Path(argv[1]), Path(argv[2])
    cfg = load_config(model_dir / "config.json")
    weights = load_weights(model_dir / "model.safetensors", cfg)
    model = build(cfg, weights)
    onnx.checker.check_model(model, full_check=True)
    out.write_bytes(model.SerializeToString())
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(model.graph.node)} nodes, opset {OPSET})")


if __name__ == "__main__":
    main(sys.argv)
