"""Eight-lane vectors for numba kernels: the register tiles of the direct convolution (direct.py).

A convolution kernel is fast when a tile of outputs stays in CPU registers while the whole sum of
products over channels and taps is added into it; LLVM does not find such a tile in plain numba loops
over arrays (it keeps the sums in memory, a load and a store per product). Here a vector of
`LANES` floats is a numba type of its own (an LLVM ``<8 x float>``, or ``<8 x double>`` for float64
arrays), and a tile is a tuple of them: a numba local of that type lives in registers, and
`outer_fma` adds the outer product of two tuples into a tile in one call:

    tile[i·len(b) + j] += a[i] · b[j]        (a, b: tuples of vectors)

Products are emitted as ``fmul`` + ``fadd`` with the ``contract`` flag, which LLVM fuses into FMA
instructions where the CPU has them (and leaves as two where it does not). No ``nnan``/``ninf``
flags: NaN and Inf propagate as in NumPy. Tuple lengths are compile-time constants: a literal int,
or a tuple whose length is the count.

All loads and stores are unaligned and read or write `LANES` consecutive elements of a 1-d
C-contiguous array: the caller keeps every such run inside the array.
"""

from __future__ import annotations

import operator

from llvmlite import ir
from numba import types
from numba.extending import intrinsic, models, overload, register_model

LANES = 8

_I32 = ir.IntType(32)
_FLAGS = ("contract",)


class Vector(types.Type):
    """`LANES` values of a float dtype, held as one LLVM vector."""

    def __init__(self, dtype):
        self.dtype = dtype
        super().__init__(name=f"Vector{LANES}({dtype})")


_vectors: dict = {}


def vector_of(dtype) -> Vector:
    if dtype not in _vectors:
        _vectors[dtype] = Vector(dtype)
    return _vectors[dtype]


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), LANES))


def _is_vector_array(arr) -> bool:
    return (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and isinstance(arr.dtype, types.Float))


def _literal(n) -> int | None:
    """A count known when compiling: a literal int, or the length of a tuple (a kernel can take its
    tile shape as tuples, e.g. ``(0,) * 4``, so that each shape is a distinct, cacheable signature)."""
    if isinstance(n, types.IntegerLiteral):
        return n.literal_value
    if isinstance(n, types.BaseTuple):
        return len(n)
    return None


def _intp(context, builder, value, ty):
    """An index argument as a machine-size integer (literal and narrower ints arrive as other types)."""
    return context.cast(builder, value, ty, types.intp)


def _element_pointer(context, builder, aryty, ary, index):
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.gep(data, [index], inbounds=True)


def _load_vector(context, builder, aryty, ary, index):
    ptr = _element_pointer(context, builder, aryty, ary, index)
    vty = context.get_value_type(vector_of(aryty.dtype))
    return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=aryty.dtype.bitwidth // 8)


def _broadcast(builder, scalar, vty):
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


@intrinsic
def load(typingctx, arr, i):
    """The vector arr[i : i + LANES]."""
    if not _is_vector_array(arr):
        return None

    def codegen(context, builder, sig, args):
        return _load_vector(context, builder, sig.args[0], args[0], _intp(context, builder, args[1], sig.args[1]))

    return vector_of(arr.dtype)(arr, i), codegen


def _indexed(name, broadcast: bool, doc):
    """An intrinsic (arr, index, first, base, count) → a tuple of `count` vectors built from
    arr[base + index[first + j]] for j < count: the LANES values from there, or that one value in every
    lane (`broadcast`)."""

    def typer(typingctx, arr, index, first, base, count):
        n = _literal(count)
        if n is None or not _is_vector_array(arr):
            return None
        vt = vector_of(arr.dtype)
        tup = types.UniTuple(vt, n)

        def codegen(context, builder, sig, args):
            a, idx = args[:2]
            f, b = (_intp(context, builder, args[i], sig.args[i]) for i in (2, 3))
            idx_ty, vty = sig.args[1], context.get_value_type(vt)
            out = ir.Constant(context.get_value_type(tup), ir.Undefined)
            for j in range(n):
                offset = builder.load(_element_pointer(context, builder, idx_ty, idx, builder.add(f, ir.Constant(f.type, j))))
                pos = builder.add(b, context.cast(builder, offset, idx_ty.dtype, types.intp))
                if broadcast:
                    v = _broadcast(builder, builder.load(_element_pointer(context, builder, sig.args[0], a, pos)), vty)
                else:
                    v = _load_vector(context, builder, sig.args[0], a, pos)
                out = builder.insert_value(out, v, j)
            return out

        return tup(arr, index, first, base, count), codegen

    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


load_many = _indexed("load_many", False, "A tuple of `count` vectors: vector j is arr[base + index[first + j] :][:LANES].")
splat_many = _indexed("splat_many", True,
                      "A tuple of `count` vectors: vector j has arr[base + index[first + j]] in every lane.")


@intrinsic
def load_strided(typingctx, arr, i, step, count):
    """A tuple of `count` vectors: vector j is arr[i + j·step :][:LANES] (one run from each of
    `count` rows of a matrix whose rows are `step` apart)."""
    n = _literal(count)
    if n is None or not _is_vector_array(arr):
        return None
    tup = types.UniTuple(vector_of(arr.dtype), n)

    def codegen(context, builder, sig, args):
        a = args[0]
        start, st = (_intp(context, builder, args[i], sig.args[i]) for i in (1, 2))
        out = ir.Constant(context.get_value_type(tup), ir.Undefined)
        for j in range(n):
            pos = builder.add(start, builder.mul(st, ir.Constant(st.type, j)))
            out = builder.insert_value(out, _load_vector(context, builder, sig.args[0], a, pos), j)
        return out

    return tup(arr, i, step, count), codegen


@intrinsic
def splat(typingctx, arr, i, count, repeat):
    """A tuple of `count`·`repeat` vectors: vector k·repeat + r has arr[i + k] in every lane."""
    n, r = _literal(count), _literal(repeat)
    if n is None or r is None or not _is_vector_array(arr):
        return None
    vt = vector_of(arr.dtype)
    tup = types.UniTuple(vt, n * r)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        start = _intp(context, builder, args[1], sig.args[1])
        out = ir.Constant(context.get_value_type(tup), ir.Undefined)
        for k in range(n):
            ptr = _element_pointer(context, builder, sig.args[0], args[0], builder.add(start, ir.Constant(start.type, k)))
            v = _broadcast(builder, builder.load(ptr), vty)
            for j in range(r):
                out = builder.insert_value(out, v, k * r + j)
        return out

    return tup(arr, i, count, repeat), codegen


@intrinsic
def outer_fma(typingctx, tile, a, b):
    """tile + a ⊗ b: element i·len(b) + j of the result is tile[i·len(b) + j] + a[i]·b[j]."""
    if not all(isinstance(t, types.UniTuple) and isinstance(t.dtype, Vector) for t in (tile, a, b)):
        return None
    if len(tile) != len(a) * len(b):
        return None
    na, nb = len(a), len(b)

    def codegen(context, builder, sig, args):
        acc, va, vb = args
        xs = [builder.extract_value(va, i) for i in range(na)]
        ys = [builder.extract_value(vb, j) for j in range(nb)]
        for i in range(na):
            for j in range(nb):
                k = i * nb + j
                s = builder.fadd(builder.extract_value(acc, k), builder.fmul(xs[i], ys[j], flags=_FLAGS), flags=_FLAGS)
                acc = builder.insert_value(acc, s, k)
        return acc

    return tile(tile, a, b), codegen


@intrinsic
def relu(typingctx, v):
    """max(v, 0) per lane, with NaN kept (v·0 where not v > 0, as the engine's other ReLUs)."""
    if not isinstance(v, Vector):
        return None

    def codegen(context, builder, sig, args):
        x = args[0]
        zero = ir.Constant(x.type, None)
        return builder.select(builder.fcmp_ordered(">", x, zero), x, builder.fmul(x, zero))

    return v(v), codegen


@intrinsic
def store(typingctx, arr, i, v):
    """arr[i : i + LANES] = v."""
    if not _is_vector_array(arr) or not isinstance(v, Vector):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], _intp(context, builder, args[1], sig.args[1]))
        builder.store(args[2], builder.bitcast(ptr, args[2].type.as_pointer()), align=sig.args[0].dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, i, v), codegen


@intrinsic
def lane(typingctx, v, i):
    """Element i of vector v."""
    if not isinstance(v, Vector):
        return None

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], builder.trunc(_intp(context, builder, args[1], sig.args[1]), _I32))

    return v.dtype(v, i), codegen


@intrinsic
def add_into(typingctx, arr, i, v):
    """arr[i : i + LANES] += v."""
    if not _is_vector_array(arr) or not isinstance(v, Vector):
        return None

    def codegen(context, builder, sig, args):
        at = _intp(context, builder, args[1], sig.args[1])
        ptr = builder.bitcast(_element_pointer(context, builder, sig.args[0], args[0], at), args[2].type.as_pointer())
        align = sig.args[0].dtype.bitwidth // 8
        builder.store(builder.fadd(builder.load(ptr, align=align), args[2]), ptr, align=align)
        return context.get_dummy_value()

    return types.none(arr, i, v), codegen


# ---- element-wise operations and lane shuffles (the compiled 2×2 pooling, fastpool.py) ------------


def _is_vector(*ts) -> bool:
    return all(isinstance(t, Vector) for t in ts)


def _shuffle(builder, a, b, order):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, LANES), order))


def _two_shuffles(name, first, second, doc):
    """An intrinsic (a, b) → (shuffle(a, b, first), shuffle(a, b, second)) over the 2·LANES values of a, b."""

    def typer(typingctx, a, b):
        if not _is_vector(a, b):
            return None

        def codegen(context, builder, sig, args):
            parts = [_shuffle(builder, args[0], args[1], order) for order in (first, second)]
            return context.make_tuple(builder, sig.return_type, parts)

        return types.UniTuple(a, 2)(a, b), codegen

    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


deinterleave = _two_shuffles("deinterleave", list(range(0, 2 * LANES, 2)), list(range(1, 2 * LANES, 2)),
                             "(even, odd): the even- and the odd-indexed elements of the 2·LANES values a, b.")
interleave = _two_shuffles("interleave", [i // 2 + (i % 2) * LANES for i in range(LANES)],
                           [LANES // 2 + i // 2 + (i % 2) * LANES for i in range(LANES)],
                           "(lo, hi): a[0] b[0] a[1] b[1] … as two vectors (the inverse of `deinterleave`).")


def _lanewise(name: str, op: str, doc: str):
    """An intrinsic (a, b) → a `op` b per lane, for two vectors of one type."""
    def fn(typingctx, a, b):
        if not _is_vector(a, b):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1])

        return a(a, b), codegen

    fn.__name__, fn.__doc__ = name, doc
    return intrinsic(fn)


add = _lanewise("add", "fadd", "a + b per lane.")
sub = _lanewise("sub", "fsub", "a − b per lane.")


# `+` and `−` between vectors, so that one jitted formula serves vectors and scalars alike
# (winograd_kernels.py runs its transforms on vectors of channels and on the scalar tail)
@overload(operator.add)
def _vector_add(a, b):
    if _is_vector(a, b):
        return lambda a, b: add(a, b)


@overload(operator.sub)
def _vector_sub(a, b):
    if _is_vector(a, b):
        return lambda a, b: sub(a, b)


@overload(operator.neg)
def _vector_neg(a):
    if _is_vector(a):
        return lambda a: scale(a, -1.0)


@intrinsic
def scale(typingctx, v, s):
    """v · s per lane, s a scalar."""
    if not _is_vector(v):
        return None

    def codegen(context, builder, sig, args):
        return builder.fmul(args[0], _broadcast(builder, context.cast(builder, args[1], sig.args[1], v.dtype), args[0].type))

    return v(v, s), codegen


@intrinsic
def take_max(typingctx, best, at, v, code):
    """Running maximum with its position, per lane: where v > best, or v is NaN and best is not (NaN
    wins, as PyTorch's max pooling), (best, at) becomes (v, code); ties keep the earlier value."""
    if not _is_vector(best, at, v):
        return None
    tup = types.UniTuple(best, 2)

    def codegen(context, builder, sig, args):
        b, a, x = args[:3]
        c = _broadcast(builder, context.cast(builder, args[3], sig.args[3], best.dtype), x.type)
        newer = builder.or_(builder.fcmp_ordered(">", x, b),
                            builder.and_(builder.fcmp_unordered("uno", x, x), builder.fcmp_ordered("ord", b, b)))
        return context.make_tuple(builder, sig.return_type, [builder.select(newer, x, b), builder.select(newer, c, a)])

    return tup(best, at, v, code), codegen


@intrinsic
def where_equal(typingctx, at, code, v):
    """v where at == code, else v·0, per lane."""
    if not _is_vector(at, v):
        return None

    def codegen(context, builder, sig, args):
        a, x = args[0], args[2]
        c = _broadcast(builder, context.cast(builder, args[1], sig.args[1], at.dtype), a.type)
        return builder.select(builder.fcmp_ordered("==", a, c), x, builder.fmul(x, ir.Constant(x.type, None)))

    return v(at, code, v), codegen


@intrinsic
def fill(typingctx, like, s):
    """A vector of `like`'s type with s in every lane."""
    if not _is_vector(like):
        return None

    def codegen(context, builder, sig, args):
        return _broadcast(builder, context.cast(builder, args[1], sig.args[1], like.dtype), args[0].type)

    return like(like, s), codegen


# ---- a LANES × LANES transpose (the channels-last copy of dY, direct_kernels.py) --------------------


@intrinsic
def load_rows(typingctx, arr, i, step, valid, count):
    """A tuple of `count` vectors: vector j is arr[i + j·step :][:LANES] for j < `valid`, zeros for the
    rest (their loads read row `valid` − 1 instead, so nothing past the array is touched; valid ≥ 1)."""
    n = _literal(count)
    if n is None or not _is_vector_array(arr):
        return None
    tup = types.UniTuple(vector_of(arr.dtype), n)

    def codegen(context, builder, sig, args):
        start, st, ok = (_intp(context, builder, args[k], sig.args[k]) for k in (1, 2, 3))
        out = ir.Constant(context.get_value_type(tup), ir.Undefined)
        last = builder.sub(ok, ir.Constant(ok.type, 1))
        for j in range(n):
            jj = ir.Constant(ok.type, j)
            inside = builder.icmp_signed("<", jj, ok)
            row = builder.select(inside, jj, last)
            v = _load_vector(context, builder, sig.args[0], args[0], builder.add(start, builder.mul(row, st)))
            out = builder.insert_value(out, builder.select(inside, v, ir.Constant(v.type, None)), j)
        return out

    return tup(arr, i, step, valid, count), codegen


@intrinsic
def times_positive(typingctx, vectors, masks):
    """vectors[j] · [masks[j] > 0] per lane (the ReLU's gradient mask; NaN · 0 stays NaN)."""
    if not (isinstance(vectors, types.UniTuple) and isinstance(vectors.dtype, Vector) and vectors == masks):
        return None

    def codegen(context, builder, sig, args):
        tup = args[0]
        for j in range(len(sig.args[0])):
            v, m = builder.extract_value(args[0], j), builder.extract_value(args[1], j)
            positive = builder.uitofp(builder.fcmp_ordered(">", m, ir.Constant(m.type, None)), v.type)
            tup = builder.insert_value(tup, builder.fmul(v, positive), j)
        return tup

    return vectors(vectors, masks), codegen


@intrinsic
def transpose(typingctx, rows):
    """The LANES × LANES transpose of a tuple of LANES vectors: element i of result j is element j of
    rows[i] (three stages of two-vector shuffles, as AVX's unpack / shuffle / permute)."""
    if not (isinstance(rows, types.UniTuple) and isinstance(rows.dtype, Vector) and len(rows) == LANES == 8):
        return None

    def codegen(context, builder, sig, args):
        r = [builder.extract_value(args[0], i) for i in range(8)]
        lo, hi = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
        t = [_shuffle(builder, r[i & ~1], r[i | 1], lo if i % 2 == 0 else hi) for i in range(8)]
        pair_lo, pair_hi = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
        u = [None] * 8
        for b in (0, 4):  # u[b + 0..3] from t[b + 0..3]
            u[b + 0] = _shuffle(builder, t[b + 0], t[b + 2], pair_lo)
            u[b + 1] = _shuffle(builder, t[b + 0], t[b + 2], pair_hi)
            u[b + 2] = _shuffle(builder, t[b + 1], t[b + 3], pair_lo)
            u[b + 3] = _shuffle(builder, t[b + 1], t[b + 3], pair_hi)
        half_lo, half_hi = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
        cols = [_shuffle(builder, u[j % 4], u[4 + j % 4], half_lo if j < 4 else half_hi) for j in range(8)]
        return context.make_tuple(builder, sig.return_type, cols)

    return rows(rows), codegen
