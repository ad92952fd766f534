#!/usr/bin/env python3
"""Train the `image-classify` sample's model: a small CNN on scikit-learn's 8x8 digits.

    pip install -r scripts/requirements-ml.txt
    python3 samples/image-classify/train.py

The network is written and trained in numpy (forward and backward by hand: convolution
via im2col, batch normalisation with running statistics, ReLU, 2x2 max-pool, dense,
softmax cross-entropy, Adam):

    image [N,1,8,8] -> Conv(1->8, 3x3, pad 1) -> BatchNormalization -> Relu -> MaxPool 2x2
                    -> Conv(8->16, 3x3, pad 1) -> BatchNormalization -> Relu -> MaxPool 2x2
                    -> Flatten [N,64] -> Gemm(64->10) -> Softmax -> probabilities [N,10]

and exported with onnx.helper (default-domain operators only, opset 13, IR version 8).
The script checks that onnxruntime's outputs equal the numpy forward pass (1e-5) and
that the held-out accuracy is at least 0.95. It writes:

  assets/cnn.onnx          the model (input `image`, dynamic batch N)
  assets/labels.txt        class names, one a line, line i for class i
  input/digit-KK-labelY.png  ten held-out digits (one per class), 8-bit grayscale, white
                           on black, pixel = round(v/16*255), upscaled 4x (32x32, nearest)
  input/expected.json      file name -> {"label": true class, "predicted": model's class}

The sample's guest decodes each PNG, converts it to grayscale, box-averages 4x4 blocks
back to 8x8 and divides by 255. On these PNGs that gives exactly round(v/16*255)/255
(within 1/510 of the training feature v/16); "predicted" is computed from those
round-tripped features, the same f32 values the guest feeds the model.
Everything is seeded: a rerun rewrites byte-identical files on the same machine.
"""
import json
import pathlib
import struct
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = pathlib.Path(__file__).resolve().parent
ASSETS, INPUT = HERE / "assets", HERE / "input"
SEED = 0
EPOCHS = 30
BATCH = 32
LR = 3e-3
BN_EPS = 1e-5
BN_MOMENTUM = 0.9      # ONNX convention: running = running * momentum + batch * (1 - momentum)
UPSCALE = 4
MIN_ACCURACY = 0.95
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


# ---------------------------------------------------------------- layers (numpy)

def im2col(x):
    """[N,C,H,W] -> [N*H*W, C*9] patches of a 3x3, pad 1, stride 1 convolution.
    Column order (c, ky, kx) matches an ONNX Conv weight [M,C,3,3] reshaped to [M, C*9]."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=2)
    return cols.transpose(0, 3, 4, 1, 2).reshape(n * h * w, c * 9)


def col2im(dcols, shape):
    """Adjoint of im2col: scatter-add patch gradients back onto the input."""
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 9).transpose(0, 3, 4, 1, 2)
    dxp = np.zeros((n, c, h + 2, w + 2), dtype=dcols.dtype)
    for k in range(9):
        i, j = divmod(k, 3)
        dxp[:, :, i:i + h, j:j + w] += d[:, :, k]
    return dxp[:, :, 1:-1, 1:-1]


def conv_forward(x, w):
    """3x3, pad 1 convolution without bias (the batch norm that follows has one)."""
    n, _, h, wd = x.shape
    cols = im2col(x)
    out = (cols @ w.reshape(w.shape[0], -1).T).reshape(n, h, wd, -1).transpose(0, 3, 1, 2)
    return out, cols


def conv_backward(dout, cols, w, x_shape):
    dflat = dout.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])
    dw = (dflat.T @ cols).reshape(w.shape)
    dx = col2im(dflat @ w.reshape(w.shape[0], -1), x_shape)
    return dx, dw


def bn_train(x, gamma, beta, state):
    """Batch norm over (N,H,W) with batch statistics; updates the running mean/var."""
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    m = x.size / x.shape[1]
    state["mean"] = BN_MOMENTUM * state["mean"] + (1 - BN_MOMENTUM) * mean
    state["var"] = BN_MOMENTUM * state["var"] + (1 - BN_MOMENTUM) * var * m / (m - 1)
    inv_std = 1 / np.sqrt(var + BN_EPS)
    xhat = (x - mean[:, None, None]) * inv_std[:, None, None]
    return gamma[:, None, None] * xhat + beta[:, None, None], (xhat, inv_std, gamma)


def bn_backward(dy, cache):
    xhat, inv_std, gamma = cache
    m = dy.size / dy.shape[1]
    dgamma, dbeta = (dy * xhat).sum(axis=(0, 2, 3)), dy.sum(axis=(0, 2, 3))
    dxhat = dy * gamma[:, None, None]
    dx = (inv_std[:, None, None] / m) * (
        m * dxhat - dxhat.sum(axis=(0, 2, 3))[:, None, None]
        - xhat * (dxhat * xhat).sum(axis=(0, 2, 3))[:, None, None])
    return dx, dgamma, dbeta


def bn_infer(x, gamma, beta, mean, var):
    """ONNX BatchNormalization in inference mode."""
    scale = gamma / np.sqrt(var + BN_EPS)
    return x * scale[:, None, None] + (beta - mean * scale)[:, None, None]


def maxpool_forward(x):
    n, c, h, w = x.shape
    out = x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    return out


def maxpool_backward(dout, x, out):
    # Route the gradient to the window's maximum (all of them on an exact tie; ties
    # only happen between ReLU zeros, whose gradient the ReLU mask discards anyway).
    up = out.repeat(2, axis=2).repeat(2, axis=3)
    return (x == up) * dout.repeat(2, axis=2).repeat(2, axis=3)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- model

def init_params(rng):
    he = lambda fan_in, shape: rng.normal(0, np.sqrt(2 / fan_in), shape)  # noqa: E731
    return {
        "conv1_w": he(9, (8, 1, 3, 3)), "bn1_scale": np.ones(8), "bn1_bias": np.zeros(8),
        "conv2_w": he(72, (16, 8, 3, 3)), "bn2_scale": np.ones(16), "bn2_bias": np.zeros(16),
        "fc_w": he(64, (64, 10)), "fc_b": np.zeros(10),
    }


def forward_train(p, bn, x):
    """Training forward pass (batch statistics); returns logits and a backward cache."""
    c1, cols1 = conv_forward(x, p["conv1_w"])
    b1, bc1 = bn_train(c1, p["bn1_scale"], p["bn1_bias"], bn[0])
    r1 = np.maximum(b1, 0)
    m1 = maxpool_forward(r1)
    c2, cols2 = conv_forward(m1, p["conv2_w"])
    b2, bc2 = bn_train(c2, p["bn2_scale"], p["bn2_bias"], bn[1])
    r2 = np.maximum(b2, 0)
    m2 = maxpool_forward(r2)
    flat = m2.reshape(len(x), -1)
    logits = flat @ p["fc_w"] + p["fc_b"]
    return logits, (x, cols1, bc1, b1, r1, m1, cols2, bc2, b2, r2, m2, flat)


def backward(p, cache, dlogits):
    x, cols1, bc1, b1, r1, m1, cols2, bc2, b2, r2, m2, flat = cache
    g = {"fc_w": flat.T @ dlogits, "fc_b": dlogits.sum(0)}
    d = (dlogits @ p["fc_w"].T).reshape(m2.shape)
    d = maxpool_backward(d, r2, m2) * (b2 > 0)
    d, g["bn2_scale"], g["bn2_bias"] = bn_backward(d, bc2)
    d, g["conv2_w"] = conv_backward(d, cols2, p["conv2_w"], m1.shape)
    d = maxpool_backward(d, r1, m1) * (b1 > 0)
    d, g["bn1_scale"], g["bn1_bias"] = bn_backward(d, bc1)
    _, g["conv1_w"] = conv_backward(d, cols1, p["conv1_w"], x.shape)
    return g


def forward_infer(w, x):
    """Inference forward pass with the exported float32 weights (what ONNX computes)."""
    h = maxpool_forward(np.maximum(bn_infer(conv_forward(x, w["conv1_w"])[0], w["bn1_scale"],
                                            w["bn1_bias"], w["bn1_mean"], w["bn1_var"]), 0))
    h = maxpool_forward(np.maximum(bn_infer(conv_forward(h, w["conv2_w"])[0], w["bn2_scale"],
                                            w["bn2_bias"], w["bn2_mean"], w["bn2_var"]), 0))
    return softmax(h.reshape(len(x), -1) @ w["fc_w"] + w["fc_b"])


def train(x, y):
    rng = np.random.default_rng(SEED)
    p = init_params(rng)
    bn = [{"mean": np.zeros(8), "var": np.ones(8)}, {"mean": np.zeros(16), "var": np.ones(16)}]
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    onehot, step = np.eye(10)[y], 0
    for epoch in range(EPOCHS):
        lr = LR * 0.5 * (1 + np.cos(np.pi * epoch / EPOCHS))   # cosine decay
        order = rng.permutation(len(x))
        for start in range(0, len(x) - BATCH + 1, BATCH):      # full batches only (BN)
            idx = order[start:start + BATCH]
            logits, cache = forward_train(p, bn, x[idx])
            grads = backward(p, cache, (softmax(logits) - onehot[idx]) / len(idx))
            step += 1
            for k, g in grads.items():                          # Adam
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                p[k] -= lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
    w = dict(p, bn1_mean=bn[0]["mean"], bn1_var=bn[0]["var"],
             bn2_mean=bn[1]["mean"], bn2_var=bn[1]["var"])
    return {k: np.ascontiguousarray(a, dtype=np.float32) for k, a in w.items()}


def export(w) -> onnx.ModelProto:
    names = ["conv1_w", "bn1_scale", "bn1_bias", "bn1_mean", "bn1_var",
             "conv2_w", "bn2_scale", "bn2_bias", "bn2_mean", "bn2_var", "fc_w", "fc_b"]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = []
    src = "image"
    for i in (1, 2):
        nodes += [
            helper.make_node("Conv", [src, f"conv{i}_w"], [f"conv{i}"], name=f"conv{i}", **conv),
            helper.make_node("BatchNormalization",
                             [f"conv{i}", f"bn{i}_scale", f"bn{i}_bias", f"bn{i}_mean", f"bn{i}_var"],
                             [f"bn{i}"], name=f"bn{i}", epsilon=BN_EPS, momentum=BN_MOMENTUM),
            helper.make_node("Relu", [f"bn{i}"], [f"relu{i}"], name=f"relu{i}"),
            helper.make_node("MaxPool", [f"relu{i}"], [f"pool{i}"], name=f"pool{i}", **pool),
        ]
        src = f"pool{i}"
    nodes += [
        helper.make_node("Flatten", ["pool2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        inputs=[helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        outputs=[helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(w[k], k) for k in names])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="netmind-samples-image-classify")
    model.ir_version = 8
    model.doc_string = "8x8 digits CNN; input [N,1,8,8] grayscale in [0,1] (pixel/255)"
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------- PNG (stdlib only)

def png_gray8(pixels: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit grayscale, non-interlaced PNG."""
    h, w = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 on every row
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def read_png_gray8(data: bytes) -> np.ndarray:
    """Decode what png_gray8 writes (a check of the writer, not a general decoder)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 0)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    assert not rows[:, 0].any()
    return rows[:, 1:]


def guest_features(png: bytes) -> np.ndarray:
    """The guest's preprocessing: decode, 4x4 box average to 8x8, divide by 255 (f32)."""
    img = read_png_gray8(png).astype(np.uint32)
    boxed = img.reshape(8, UPSCALE, 8, UPSCALE).sum(axis=(1, 3)) / UPSCALE ** 2
    return (boxed.astype(np.float32) / np.float32(255)).reshape(1, 1, 8, 8)


# ---------------------------------------------------------------- main

def main() -> int:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=SEED)

    w = train(x_train.astype(np.float64), y_train)
    model = export(w)
    ASSETS.mkdir(parents=True, exist_ok=True)
    model_path = ASSETS / "cnn.onnx"
    model_path.write_bytes(model.SerializeToString())
    (ASSETS / "labels.txt").write_text("".join(f"{name}\n" for name in LABELS))

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    (probs,) = sess.run(["probabilities"], {"image": x_test})
    reference = forward_infer({k: a.astype(np.float64) for k, a in w.items()},
                              x_test.astype(np.float64))
    max_err = float(np.abs(probs - reference).max())
    if max_err > 1e-5:
        print(f"error: onnxruntime and numpy differ by {max_err:.3g}", file=sys.stderr)
        return 1
    predicted = probs.argmax(axis=1)
    correct = int((predicted == y_test).sum())
    accuracy = correct / len(y_test)

    # One held-out digit per class, in held-out order, as viewable 32x32 PNGs.
    INPUT.mkdir(parents=True, exist_ok=True)
    for old in INPUT.glob("digit-*.png"):
        old.unlink()
    picks = sorted(int(np.flatnonzero(y_test == c)[0]) for c in range(10))
    expected, round_trip_changed = {}, 0
    for k, i in enumerate(picks):
        gray = np.round(x_test[i, 0].astype(np.float64) * 255).astype(np.uint8)  # v/16*255
        png = png_gray8(gray.repeat(UPSCALE, axis=0).repeat(UPSCALE, axis=1))
        name = f"digit-{k:02d}-label{y_test[i]}.png"
        (INPUT / name).write_bytes(png)
        feats = guest_features(png)
        assert np.array_equal(feats[0, 0], gray.astype(np.float32) / np.float32(255))
        assert np.abs(feats - x_test[i]).max() <= 1 / 510 + 1e-7
        guess = int(sess.run(["probabilities"], {"image": feats})[0].argmax())
        round_trip_changed += guess != predicted[i]
        expected[name] = {"label": int(y_test[i]), "predicted": guess}
    (INPUT / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")

    print(f"train {len(x_train)}, held out {len(x_test)}; onnxruntime vs numpy max |diff| "
          f"{max_err:.2g}; accuracy {correct}/{len(y_test)} = {accuracy:.4f}")
    print(f"wrote {len(expected)} PNGs; PNG round trip changed {round_trip_changed} predictions; "
          f"{sum(e['label'] == e['predicted'] for e in expected.values())}/{len(expected)} correct")
    if accuracy < MIN_ACCURACY:
        print(f"error: accuracy {accuracy:.4f} is below {MIN_ACCURACY}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
