"""Export of the dense zoo models (`convlens.models.dense`: UNetSmall, CenterNetSmall), whose ``forward``
is Python code rather than a Sequential or a graph: their structure written out once here as ONNX nodes
over the same sub-modules (ConvBlock = conv-BN-ReLU-conv-BN-ReLU; the encoder's max pools; the decoder's
nearest ×2 upsampling and skip concatenation; the input padded to a multiple of 2^(levels−1) and the
output cropped back). Sizes are the example input's (the batch axis stays free)."""

from __future__ import annotations

__all__ = ["DENSE_CONVERTERS"]


def _block(b, emit, block, x, shape, name):
    for part in ("conv1", "bn1"):
        x, shape = emit(b, getattr(block, part), [x], [shape], f"{name}.{part}")
    x = b.node("Relu", [x], f"{name}.relu1")
    for part in ("conv2", "bn2"):
        x, shape = emit(b, getattr(block, part), [x], [shape], f"{name}.{part}")
    return b.node("Relu", [x], f"{name}.relu2"), shape


def _up2(b, x, shape, name):
    """Nearest ×2 (what dense.upsample2 computes): Resize with asymmetric coordinates and floor."""
    lead = b.node("Shape", [x], name, start=0, end=2)
    sizes = b.node("Concat", [lead, b.ints(f"{name}_size", [2 * shape[1], 2 * shape[2]])], name, axis=0)
    out = b.node("Resize", [x, "", "", sizes], name, mode="nearest", coordinate_transformation_mode="asymmetric",
                 nearest_mode="floor")
    return out, (shape[0], 2 * shape[1], 2 * shape[2])


def _backbone(b, emit, m, x, shape, stop):
    """Pad, encoder, decoder to level `stop`: (output, shape, (H, W) before padding)."""
    from convlens.onnx.export import _pad

    h, w = shape[1:]
    multiple = 2 ** (len(m.widths) - 1)
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = _pad(b, x, [(0, ph), (0, pw)], "constant", "pad")
        shape = (shape[0], h + ph, w + pw)
    feats = []
    for k, block in enumerate(m.encoder.blocks):
        if k:
            x = b.node("MaxPool", [x], f"encoder.pool{k}", kernel_shape=[2, 2], strides=[2, 2])
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
        x, shape = _block(b, emit, block, x, shape, f"encoder.blocks.{k}")
        feats.append((x, shape))
    deepest = feats[-1]
    x, shape = deepest
    for j, (block, (skip, skip_shape)) in enumerate(zip(m.decoder.blocks, reversed(feats[stop:-1]))):
        x, shape = _up2(b, x, shape, f"decoder.up{j}")
        x = b.node("Concat", [x, skip], f"decoder.cat{j}", axis=1)
        shape = (shape[0] + skip_shape[0], *shape[1:])
        x, shape = _block(b, emit, block, x, shape, f"decoder.blocks.{j}")
    return x, shape, deepest, (h, w)


def _crop(b, x, shape, h, w, name):
    if shape[1:] == (h, w):
        return x, shape
    out = b.node("Slice", [x, b.ints(f"{name}_starts", [0, 0]), b.ints(f"{name}_ends", [h, w]),
                           b.ints(f"{name}_axes", [2, 3])], name)
    return out, (shape[0], h, w)


def _unet(b, m, xs, shapes, name, emit):
    x, shape, (deep, deep_shape), (h, w) = _backbone(b, emit, m, xs[0], shapes[0], 0)
    out, out_shape = emit(b, m.head, [x], [shape], "head")
    coarse, cshape = emit(b, m.coarse_head, [deep], [deep_shape], "coarse_head")
    for k in range(len(m.widths) - 1):
        coarse, cshape = _up2(b, coarse, cshape, f"coarse_up{k}")
    out = b.node("Add", [out, coarse], "add_coarse")
    return _crop(b, out, out_shape, h, w, "crop")[0]


def _centernet(b, m, xs, shapes, name, emit):
    x, shape, _, (h, w) = _backbone(b, emit, m, xs[0], shapes[0], 2)
    heat, hs = emit(b, m.heat, [x], [shape], "heat")
    box, bs = emit(b, m.box, [x], [shape], "box")
    out = b.node("Concat", [heat, box], "heads", axis=1)
    oh, ow = -(-h // m.stride), -(-w // m.stride)
    return _crop(b, out, (hs[0] + bs[0], *hs[1:]), oh, ow, "crop")[0]


DENSE_CONVERTERS = {"UNetSmall": _unet, "CenterNetSmall": _centernet}
