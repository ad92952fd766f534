#!/usr/bin/env python3
"""Train the `digits` sample's model: a small MLP on scikit-learn's 8x8 digits.

    pip install -r scripts/requirements-ml.txt
    python3 samples/digits/train.py

Writes into samples/digits/assets/:
  digits.onnx               pixels f32 [N,64] -> probabilities f32 [N,10], label i64 [N]
  test-pixels.npy           held-out features, f32 [N,64], already scaled (pixel / 16)
  test-labels.npy           their true labels, i64 [N]
  expected-accuracy.txt     held-out accuracy of digits.onnx as onnxruntime computes it
                            (correct / N, 4 decimals)

The network (64 -> 64 ReLU -> 10) is trained with plain numpy (mini-batch Adam on the
softmax cross-entropy) and exported with onnx.helper using default-domain operators only
(Gemm, Relu, Softmax, ArgMax; opset 13, IR version 8), so tract-onnx can run it too.
Everything is seeded: a rerun rewrites byte-identical files on the same machine.
"""
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ASSETS = pathlib.Path(__file__).resolve().parent / "assets"
SEED = 0
HIDDEN = 64
EPOCHS = 60
BATCH = 32
LR = 1e-3
MIN_ACCURACY = 0.95


def load_data():
    """The 1797 digits, pixels scaled to [0, 1], split 75/25 with a fixed seed."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=None)


def train(x, y):
    """Mini-batch Adam on a 64 -> HIDDEN (ReLU) -> 10 network; returns float32 weights."""
    rng = np.random.default_rng(SEED)
    # He initialisation; weights are stored as [in, out] so that y = x @ W + b.
    params = {
        "w1": rng.normal(0, np.sqrt(2 / 64), (64, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(0, np.sqrt(2 / HIDDEN), (HIDDEN, 10)),
        "b2": np.zeros(10),
    }
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0
    onehot = np.eye(10)[y]
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            xb, tb = x[idx].astype(np.float64), onehot[idx]
            # forward
            h_pre = xb @ params["w1"] + params["b1"]
            h = np.maximum(h_pre, 0)
            logits = h @ params["w2"] + params["b2"]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            # backward of mean cross-entropy
            d_logits = (p - tb) / len(idx)
            d_h = (d_logits @ params["w2"].T) * (h_pre > 0)
            grads = {"w2": h.T @ d_logits, "b2": d_logits.sum(0),
                     "w1": xb.T @ d_h, "b1": d_h.sum(0)}
            # Adam update
            step += 1
            for k, g in grads.items():
                m[k] = beta1 * m[k] + (1 - beta1) * g
                v[k] = beta2 * v[k] + (1 - beta2) * g * g
                m_hat = m[k] / (1 - beta1 ** step)
                v_hat = v[k] / (1 - beta2 ** step)
                params[k] -= LR * m_hat / (np.sqrt(v_hat) + eps)
    return {k: v.astype(np.float32) for k, v in params.items()}


def export(params) -> onnx.ModelProto:
    """pixels -> Gemm -> Relu -> Gemm -> logits; probabilities = Softmax, label = ArgMax."""
    inits = [numpy_helper.from_array(params[k], k) for k in ("w1", "b1", "w2", "b2")]
    nodes = [
        helper.make_node("Gemm", ["pixels", "w1", "b1"], ["hidden_pre"], name="fc1"),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"], name="relu1"),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"], name="fc2"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], name="argmax", axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "digits_mlp",
        inputs=[helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 64])],
        outputs=[helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
                 helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="netmind-samples-digits")
    model.ir_version = 8
    model.doc_string = "8x8 digits MLP (64-64-10); input pixel/16 in [0,1]"
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> int:
    x_train, x_test, y_train, y_test = load_data()
    params = train(x_train, y_train)
    model = export(params)

    ASSETS.mkdir(parents=True, exist_ok=True)
    model_path = ASSETS / "digits.onnx"
    model_path.write_bytes(model.SerializeToString())
    np.save(ASSETS / "test-pixels.npy", np.ascontiguousarray(x_test, dtype=np.float32))
    np.save(ASSETS / "test-labels.npy", np.ascontiguousarray(y_test, dtype=np.int64))

    # The accuracy that counts is the exported model's, as onnxruntime computes it.
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    probs, labels = sess.run(["probabilities", "label"], {"pixels": x_test})
    assert labels.dtype == np.int64 and labels.shape == y_test.shape
    assert np.array_equal(labels, probs.argmax(axis=1))
    correct = int((labels == y_test).sum())
    accuracy = correct / len(y_test)
    (ASSETS / "expected-accuracy.txt").write_text(f"{accuracy:.4f}\n")
    print(f"train {len(x_train)}, held out {len(x_test)}; "
          f"onnxruntime accuracy {correct}/{len(y_test)} = {accuracy:.4f}")
    if accuracy < MIN_ACCURACY:
        print(f"error: accuracy {accuracy:.4f} is below {MIN_ACCURACY}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
